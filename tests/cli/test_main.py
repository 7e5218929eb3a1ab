"""The command table (command_table.py): each module registers what it declares, and is
imported only for its own commands; what start-up imports (issue 14), read from sys.modules
of a real run, never from a clock."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import click
import pytest

from filerestore.cli.app import app
from filerestore.cli.command_table import COMMANDS
from filerestore.cli.main import COMMAND_MODULES, main
from tests.imagebuild import gpt_ext4 as images


def registered_by_module() -> dict[str, set[str]]:
    for module in COMMAND_MODULES:
        importlib.import_module(module)
    found: dict[str, set[str]] = {}
    for name, command in app.commands.items():
        if isinstance(command, click.Group):  # a group belongs to its commands' module
            modules = {c.callback.__module__ for c in command.commands.values() if c.callback}
            assert len(modules) == 1, (name, modules)
            found.setdefault(modules.pop(), set()).add(name)
        else:
            assert command.callback is not None
            found.setdefault(command.callback.__module__, set()).add(name)
    return found


def test_every_module_registers_what_it_declares() -> None:
    assert registered_by_module() == {m: set(c) for m, c in COMMAND_MODULES.items()}


def test_each_summary_is_the_first_paragraph_of_its_commands_help() -> None:
    registered_by_module()
    for name, (_module, summary) in COMMANDS.items():
        command = app.commands[name]
        assert command.help is not None, name
        first = command.help.split("\n\n", 1)[0]
        assert summary == " ".join(first.split()), name
        # what Click would list from the real command: nothing but the help
        assert (command.short_help, command.hidden, command.deprecated) == (None, False, False)


def test_help_from_the_table_is_the_help_of_the_loaded_commands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--help` in a fresh process (no command module imported) prints what the group prints
    with every command loaded, which Click lists from the commands themselves."""
    registered_by_module()
    for columns in ("40", "80", "200"):
        monkeypatch.setenv("COLUMNS", columns)
        assert main(["--help"]) == 0
        loaded = capsys.readouterr().out
        fresh = subprocess.run(
            [sys.executable, "-m", "filerestore.cli.main", "--help"],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ | {"COLUMNS": columns},
        )
        assert fresh.stdout == loaded
        assert set(COMMANDS) <= {
            line.split()[0] for line in loaded.splitlines() if line[:2] == "  "
        }


def test_a_mistyped_command_is_matched_against_every_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "filerestore.cli.main", "seve"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr == "filerestore: error: No such command 'seve'. Did you mean 'serve'?\n"


#: what the image commands and --help must not import (start-up time, issue 14): the API,
#: database and settings stacks, and the CLI frameworks they would drag in
HEAVY = {
    "sqlalchemy",
    "alembic",
    "fastapi",
    "uvicorn",
    "pydantic",
    "pydantic_settings",
    "typer",
    "rich",
    "tqdm",
    "filerestore.db",
    "filerestore.settings",
    "filerestore.api",
    "filerestore.service",
}


#: runs one command and prints every module loaded by then: sys.modules, not -X importtime,
#: which does not see the modules importlib.import_module loads (the lazy ones)
_LOADED = (
    "import sys\n"
    "from filerestore.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "sys.stderr.write('\\nLOADED ' + ' '.join(sorted(sys.modules)) + '\\n')\n"
    "sys.exit(code)\n"
)


def imported_by(*args: str, code: int = 0) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", _LOADED, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == code, proc.stderr[-2000:]
    return set(proc.stderr.rsplit("\nLOADED ", 1)[1].split())


def test_image_commands_and_help_do_not_import_the_service_stacks() -> None:
    image = str(images.single_ext4().image)
    for args in (["cat", image, "/empty"], ["ls", image, "/"], ["--help"], ["ls", "--help"]):
        imported = imported_by(*args)
        assert "filerestore.cli.app" in imported  # a positive control: the CLI ran
        assert not HEAVY & imported, (args, HEAVY & imported)
    # a positive control for the read path: the core was imported by `cat`
    assert "filerestore.restore.file_data" in imported_by("cat", image, "/empty")


#: the reading core, which `--help` lists no command of
READING_CORE = {"filerestore.restore", "filerestore.fs", "filerestore.image", "filerestore.volume"}


def test_help_imports_no_command_module_and_ls_only_its_own() -> None:
    every = set(COMMAND_MODULES)
    for args, code in ((["--help"], 0), ([], 2), (["-V"], 0)):  # bare: the help, and 2
        imported = imported_by(*args, code=code)
        assert "filerestore.cli.command_table" in imported  # a positive control
        assert not every & imported, (args, every & imported)
        assert not READING_CORE & imported, (args, READING_CORE & imported)
    image = str(images.single_ext4().image)
    for args in (["ls", "--help"], ["ls", image, "/"]):
        imported = imported_by(*args)
        assert every & imported == {"filerestore.cli.core_commands"}, args
    # `ls` sorts without the paged listings, their cursors and digests, and opens the backup
    # without the records of `inspect`
    ls_only = {
        "filerestore.restore.browse",
        "filerestore.restore.cursor",
        "filerestore.restore.describe",
        "hashlib",
        "base64",
    }
    imported = imported_by("ls", image, "/")
    assert "filerestore.restore.listing_order" in imported  # a positive control
    assert not ls_only & imported, ls_only & imported


#: runs one command and prints each filerestore module that compiled a regular expression
#: while it was being imported (a module-level ``re.compile``; ``re`` compiles a pattern
#: given to ``re.search`` and the like on that call, and only the first time)
_COMPILED_ON_IMPORT = (
    "import re, sys\n"
    "found = set()\n"
    "real = re._compile\n"
    "def spy(*args, **kwargs):\n"
    "    frame = sys._getframe(1)\n"
    "    while frame is not None and frame.f_globals.get('__name__') == 're':\n"
    "        frame = frame.f_back\n"
    "    name = '' if frame is None else frame.f_globals.get('__name__', '')\n"
    "    if name.startswith('filerestore') and frame.f_code.co_name == '<module>':\n"
    "        found.add(name)\n"
    "    return real(*args, **kwargs)\n"
    "re._compile = spy\n"
    "from filerestore.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "sys.stderr.write('\\nCOMPILED ' + ' '.join(sorted(found)) + '\\n')\n"
    "sys.exit(code)\n"
)


def test_ls_and_help_compile_no_regular_expression_on_import() -> None:
    image = str(images.single_ext4().image)
    for args in (["ls", image, "/"], ["--help"]):
        proc = subprocess.run(
            [sys.executable, "-c", _COMPILED_ON_IMPORT, *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stderr.rsplit("\nCOMPILED ", 1)[1].split() == [], args


#: runs one command and prints each dataclass created meanwhile (creating one compiles its
#: methods: the records built on every start-up are NamedTuples where nothing needs a dataclass)
_DATACLASSES_MADE = (
    "import dataclasses, sys\n"
    "made = []\n"
    "real = dataclasses._process_class\n"
    "def spy(cls, *args, **kwargs):\n"
    "    made.append(cls.__module__ + '.' + cls.__qualname__)\n"
    "    return real(cls, *args, **kwargs)\n"
    "dataclasses._process_class = spy\n"
    "from filerestore.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "sys.stderr.write('\\nMADE ' + ' '.join(sorted(made)) + '\\n')\n"
    "sys.exit(code)\n"
)

#: the dataclasses `ls` of a QCOW2 + GPT + ext4 backup still creates, each at a cost to every
#: start-up: Entry goes through dataclasses.asdict, ChainLink through replace, Volume compares
#: without its reader; the chain's and the local store's other records, and the mapped
#: formats' Table (which QCOW2 reads through since image.mapped became shared), are not
#: converted yet
LS_DATACLASSES = {
    "filerestore.fs.entry.Entry",
    "filerestore.image.chain.ChainLink",
    "filerestore.image.chain.OpenedLink",
    "filerestore.image.mapped.Table",
    "filerestore.source.local.FileIdentity",
    "filerestore.source.local.FileSignature",
    "filerestore.source.local.StoreStat",
    "filerestore.volume.Volume",
}


def test_ls_creates_only_the_dataclasses_other_layers_need() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _DATACLASSES_MADE, "ls", str(images.single_ext4().image), "/"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    made = set(proc.stderr.rsplit("\nMADE ", 1)[1].split())
    assert "filerestore.fs.entry.Entry" in made  # a positive control: the spy saw the import
    assert made <= LS_DATACLASSES, made - LS_DATACLASSES


#: what opening a QCOW2 + GPT + ext4 backup must not import: the readers of the other image
#: formats, MBR, LVM2, the other filesystems, the S3 client and zstd (each loads when a file of
#: its kind is met; issue 14), and what this image has no use for: an external data file, a
#: compressed cluster, extended attributes (a listing reads none)
NOT_FOR_QCOW2_EXT4 = {
    "filerestore.image.qcow2_data_file",
    "filerestore.image.compression",
    "filerestore.fs.ext_xattr",
    "filerestore.image.vmdk",
    "filerestore.image.vhd",
    "filerestore.image.vhdx",
    "filerestore.volume.lvm",
    "filerestore.volume.lv_reader",
    "filerestore.volume.mbr",
    "filerestore.fs.ntfs",
    "filerestore.fs.fat",
    "filerestore.fs.exfat",
    "filerestore.fs.xfs",
    "filerestore.fs.btrfs",
    "filerestore.source.s3",
    "filerestore.source.s3client",
    "zstandard",
    "json",
}


def test_ls_of_a_qcow2_ext4_backup_loads_only_its_own_readers() -> None:
    imported = imported_by("ls", str(images.single_ext4().image), "/")
    assert "filerestore.fs.ext" in imported  # positive control: the ext reader was loaded
    assert not NOT_FOR_QCOW2_EXT4 & imported, NOT_FOR_QCOW2_EXT4 & imported


def test_signatures_kept_for_lazy_imports_are_the_readers_own() -> None:
    from filerestore.image import formats, vhd, vhdx_headers, vmdk_descriptor
    from filerestore.volume import LVM_LABEL_ID, LVM_LABEL_SECTORS, lvm

    assert set(formats.VMDK_MAGICS) == {vmdk_descriptor.SPARSE_MAGIC, vmdk_descriptor.COWD_MAGIC}
    assert formats.VMDK_DESCRIPTOR == vmdk_descriptor.DESCRIPTOR_MAGIC
    assert formats.VHDX_SIGNATURE == vhdx_headers.SIGNATURE
    assert formats.VHD_COOKIE == vhd.COOKIE
    assert (LVM_LABEL_ID, LVM_LABEL_SECTORS) == (lvm.LABEL_ID, lvm.LABEL_SCAN_SECTORS)


#: runs the console script's entry with one command added that reports the collector's state
_GC_PROBE = (
    "import gc, sys\n"
    "from filerestore.cli.app import app\n"
    "@app.command('gc-probe')\n"
    "def probe() -> None:\n"
    "    print(gc.isenabled(), gc.get_freeze_count() > 0)\n"
    "sys.argv = ['filerestore', 'gc-probe']\n"
    "from filerestore.cli import console\n"
    "console.run()\n"
)


def test_the_console_script_runs_its_command_with_the_garbage_collector_on() -> None:
    """Start-up pauses the collector (console.py); the command itself runs with it on, and
    what start-up made is frozen out of its collections."""
    proc = subprocess.run(
        [sys.executable, "-c", _GC_PROBE], capture_output=True, text=True, check=False
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "True True\n", "")

"""The Click group every command module registers its commands on, and the shared options.

Command modules import ``app`` from here and decorate their functions. The group finds a
command's module in :data:`filerestore.cli.command_table.COMMANDS` and imports it when the
command is looked up, so ``filerestore ls`` imports only the read-only core commands and
``filerestore --help`` lists every command from the table without importing any. Click
rather than Typer: Typer builds a pydantic TypeAdapter per parameter, which alone costs more
than the 100 ms ``filerestore ls`` may take from start to exit (issue 14;
``bench/startup.py`` measures it). A command module imports what its commands need inside
them, so ``COMMAND --help`` stays light too: no database, web or settings stack is imported
to print help.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from gettext import gettext
from pathlib import Path
from typing import Any, TypeVar

import click

import filerestore
from filerestore.cli.command_table import COMMANDS

F = TypeVar("F", bound=Callable[..., Any])

HELP = "Read files out of VM disk backups (QCOW2, VMDK, VHD, VHDX, raw), read-only."
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class OrderedGroup(click.Group):
    """A group that lists its commands in the order they were added, not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


class LazyGroup(click.Group):
    """The root group: its commands are the rows of ``COMMANDS``, in the table's order.

    A command's module is imported when the command is looked up (it registers itself on
    this group); listing the commands in ``--help`` takes their summaries from the table and
    imports nothing. An unknown name imports every module, so Click's "Did you mean" sees
    every command.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            if cmd_name in COMMANDS:
                importlib.import_module(COMMANDS[cmd_name][0])
            else:
                self.load_all()
        return self.commands.get(cmd_name)

    def load_all(self) -> None:
        """Import every command module (shell completion, the CLI reference)."""
        for module, _summary in COMMANDS.values():
            importlib.import_module(module)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's own listing, with the table's summary for each command not imported."""
        # a command not imported stands in as a bare command with the table's summary as help
        listed = [
            self.commands.get(name) or click.Command(name, help=COMMANDS[name][1])
            for name in self.list_commands(ctx)
        ]
        shown = [cmd for cmd in listed if not cmd.hidden]
        limit = formatter.width - 6 - max(len(str(cmd.name)) for cmd in shown)
        rows = [(str(cmd.name), cmd.get_short_help_str(limit)) for cmd in shown]
        with formatter.section(gettext("Commands")):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, help=HELP, context_settings=CONTEXT)
@click.version_option(
    filerestore.__version__,
    "-V",
    "--version",
    prog_name="filerestore",
    message="%(prog)s %(version)s",
)
def app() -> None:
    """The root group: options before the command name belong here."""


def group(name: str, help: str) -> click.Group:
    """A sub-group of ``app`` (``repo``, ``token``, ``db``): a bare group prints its help."""
    sub = OrderedGroup(name=name, help=help, no_args_is_help=True, context_settings=CONTEXT)
    app.add_command(sub)
    return sub


def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


# Arguments and options shared by the commands that open a backup image.
PathType = click.Path(path_type=Path)

image_arg = click.argument("image", type=PathType, metavar="IMAGE")
IMAGE_HELP = "IMAGE is the backup image (QCOW2, VMDK, VHD, VHDX or raw), top of its backing chain."

# `-v`, not `-V`: `-V` is `--version`, as in curl, ssh and python; filerestore has no
# verbose mode (errors are one line, `get` shows progress on a terminal by itself), and
# --volume is the option an operator types most (multi-volume disks are the norm).
volume_opt = click.option(
    "--volume",
    "-v",
    "volume",
    default=None,
    metavar="ID",
    help="Volume id (p1, lvm/vg/lv, disk; see `inspect`). "
    "May be left out when only one volume holds a filesystem.",
)


def path_opt(flag: str, metavar: str, help: str) -> Callable[[F], F]:
    """An option naming a file or directory, None when not given."""
    return click.option(flag, type=PathType, default=None, metavar=metavar, help=help)


repository_opt = path_opt(
    "--repository",
    "DIR",
    "Root directory that backing files must stay in (default: the image's directory).",
)
json_opt = click.option(
    "--json", "json", is_flag=True, help="One JSON document: an object, or an array for a list."
)
metadata_budget_opt = click.option(
    "--metadata-budget",
    type=click.IntRange(min=1 << 20),
    default=None,
    envvar="FILERESTORE_IMAGE_METADATA_BUDGET",
    metavar="BYTES",
    help="Bytes of image tables the backing chain may keep in memory "
    "(the image_metadata_budget setting; default 64 MiB).",
)
image_options = _stack(volume_opt, repository_opt, metadata_budget_opt)
config_opt = path_opt("--config", "FILE", "Settings file (TOML); sets FILERESTORE_CONFIG.")

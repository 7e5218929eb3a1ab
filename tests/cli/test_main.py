"""The command registry in main.py: each module registers what it declares, lazily."""

from __future__ import annotations

import importlib
import subprocess
import sys

from filerestore.cli.app import app
from filerestore.cli.main import COMMAND_MODULES
from tests.imagebuild import gpt_ext4 as images


def registered_by_module() -> dict[str, set[str]]:
    for module in COMMAND_MODULES:
        importlib.import_module(module)
    found: dict[str, set[str]] = {}
    for info in app.registered_commands:
        assert info.callback is not None
        name = info.name or info.callback.__name__.replace("_", "-")
        found.setdefault(info.callback.__module__, set()).add(name)
    for group in app.registered_groups:
        sub = group.typer_instance
        assert sub is not None and group.name
        modules = {c.callback.__module__ for c in sub.registered_commands if c.callback}
        assert len(modules) == 1, (group.name, modules)
        found.setdefault(modules.pop(), set()).add(group.name)
    return found


def test_every_module_registers_what_it_declares() -> None:
    assert registered_by_module() == {m: set(c) for m, c in COMMAND_MODULES.items()}


def test_core_commands_do_not_import_the_database_stack() -> None:
    image = images.single_ext4().image
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "filerestore.cli.main", "cat", image, "/empty"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert "filerestore.cli.render" in imported  # a positive control: core_commands ran
    assert not {"sqlalchemy", "alembic", "fastapi", "filerestore.db"} & imported

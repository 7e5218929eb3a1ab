"""The command registry in main.py: each module registers what it declares, lazily."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click

from filerestore.cli.app import app
from filerestore.cli.main import COMMAND_MODULES
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


def imported_by(*args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "filerestore.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}


def test_image_commands_and_help_do_not_import_the_service_stacks() -> None:
    image = str(images.single_ext4().image)
    for args in (["cat", image, "/empty"], ["ls", image, "/"], ["--help"], ["ls", "--help"]):
        imported = imported_by(*args)
        assert "filerestore.cli.app" in imported  # a positive control: the CLI ran
        assert not HEAVY & imported, (args, HEAVY & imported)
    # a positive control for the read path: the core was imported by `cat`
    assert "filerestore.restore.file_data" in imported_by("cat", image, "/empty")

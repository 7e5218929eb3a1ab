"""A scanned repository for the session and cleanup tests (see tests/imagebuild/catalog_repo.py),
the session manager over it, and the environment of their worker processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from filerestore.catalog import add_repository, list_backups, scan_repository
from filerestore.db import Database
from filerestore.service.checkout import Download
from filerestore.service.principal import Principal
from filerestore.service.sessions import SessionManager
from filerestore.settings import Settings
from tests.imagebuild.catalog_repo import blank_qcow2, make_repository

ROOT = Path(__file__).resolve().parents[2]


def scanned_repository(db: Database, root: Path) -> dict[str, int]:
    """Backup ids by name: full, inc1, inc2, other (ext4 on the whole disk), blank (no fs)."""
    images = make_repository(root)
    images["blank"] = blank_qcow2(root / "vm3" / "blank.qcow2")
    add_repository(db, "main", root)
    scan_repository(db, "main")
    ids = {b.path: b.id for b in list_backups(db)}
    return {name: ids[path.relative_to(root).as_posix()] for name, path in images.items()}


@pytest.fixture
def backups(db: Database, tmp_path: Path) -> dict[str, int]:
    return scanned_repository(db, tmp_path / "repo")


def session_manager(db: Database, settings: Settings) -> Iterator[SessionManager]:
    """A manager for a fixture to ``yield from``; its cached readers are closed after."""
    manager = SessionManager(db, settings)
    yield manager
    manager.readers.close_all()


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment of a tests.service.cleanup_worker process: the same state directory
    and database as ``settings``."""
    env = dict(os.environ)
    env["FILERESTORE_STATE_DIR"] = str(settings.state_dir)
    env.pop("FILERESTORE_DATABASE_URL", None)
    if settings.database_url:
        env["FILERESTORE_DATABASE_URL"] = settings.database_url
    env["PYTHONPATH"] = str(ROOT)
    return env


#: the principal of tests that do not care who they are: owns sessions as "" and sees all
ANYONE = Principal("", "test", admin=True)
#: what a download checkout says about itself, for tests that only need the hold
A_DOWNLOAD = Download("download", "/hello.txt")


def user(name: str) -> Principal:
    """A non-admin principal whose sessions are owned by ``name``."""
    return Principal(name, name, admin=False)

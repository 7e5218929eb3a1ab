"""Fixtures for the index tests: a repository holding a chain of known changes (built by
tests/imagebuild/index_chain.py through kernel mounts), registered in a catalog on SQLite or
PostgreSQL, and indexed."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from filerestore.catalog import add_repository, register_backup
from filerestore.db import Database, open_database
from filerestore.index.passes import index_backup
from filerestore.settings import Settings
from tests.dbfixtures import (  # noqa: F401 - fixtures
    database_url,
    db,
    make_settings,
    pg_admin,
    pg_server_url,
    settings,
)
from tests.imagebuild.index_chain import NAMES, facts, index_chain
from tests.imagebuild.sparse import copy_sparse


@dataclass
class Chain:
    kind: str
    dir: Path  # the cached chain: facts and diffs
    repo: Path
    db: Database
    settings: Settings
    ids: list[int]  # backup ids of base, inc1, inc2

    def facts(self, state: int) -> dict[str, dict[str, Any]]:
        return facts(self.dir, state)


def make_repository(kind: str, root: Path) -> Path:
    """A repository directory holding the chain's images (hard links to the cache)."""
    chain = index_chain(kind)
    root.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        # a link made before is replaced, not copied onto: that would empty the cached file
        (root / f"{name}.qcow2").unlink(missing_ok=True)
        try:
            os.link(chain / f"{name}.qcow2", root / f"{name}.qcow2")
        except OSError:
            copy_sparse(chain / f"{name}.qcow2", root / f"{name}.qcow2")
    return root


@contextlib.contextmanager
def indexed_repository(
    state: Path, repo: Path, names: tuple[str, ...], method: str | None = None
) -> Iterator[tuple[Database, Settings, list[int]]]:
    """A SQLite catalog under ``state`` with ``repo``'s backups ``names`` (``NAME.qcow2``)
    registered and indexed in order (``method`` as index_backup takes it)."""
    config = Settings(state_dir=state)
    database = open_database(config)
    try:
        add_repository(database, "r", str(repo))
        ids = [register_backup(database, "r", f"{n}.qcow2").id for n in names]
        for backup_id in ids:
            index_backup(database, config, backup_id, method=method)
        yield database, config, ids
    finally:
        database.dispose()


def methods_of(database: Database) -> dict[int, str | None]:
    """Each indexed backup's method (index_backups.method)."""
    from sqlalchemy import select

    from filerestore.db.models_index import IndexBackup

    with database.read() as s:
        return dict(s.execute(select(IndexBackup.backup_id, IndexBackup.method)).all())


def register_chain(database: Database, repo: Path, name: str = "r") -> list[int]:
    add_repository(database, name, str(repo))
    return [register_backup(database, name, f"{n}.qcow2").id for n in NAMES]


@contextlib.contextmanager
def module_settings(dialect: str, request: pytest.FixtureRequest, tmp: Path) -> Iterator[Settings]:
    """Settings of a database for a whole module: SQLite under ``tmp``, or a fresh
    PostgreSQL database (dropped afterwards) on the test server."""
    if dialect == "sqlite":
        yield Settings(state_dir=tmp)
        return
    server = request.getfixturevalue("pg_server_url")
    name = f"fr_idx_{uuid.uuid4().hex[:12]}"
    with pg_admin(server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        yield Settings(state_dir=tmp, database_url=url)
    finally:
        with pg_admin(server) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def indexed_chain(
    kind: str, config: Settings, tmp: Path, method: str | None = None
) -> Iterator[Chain]:
    database = open_database(config)
    try:
        repo = make_repository(kind, tmp / f"repo-{kind}")
        ids = register_chain(database, repo)
        for backup_id in ids:
            index_backup(database, config, backup_id, method=method)
        yield Chain(kind, index_chain(kind), repo, database, config, ids)
    finally:
        database.dispose()


def chain_of(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chain]:
    """The body of a module's ``chain`` fixture whose params are (kind, dialect)."""
    kind, dialect = request.param
    if kind.startswith("btrfs"):
        pytest.importorskip("dissect.btrfs", reason="the [btrfs] extra is not installed")
    tmp = tmp_path_factory.mktemp(kind)
    with module_settings(dialect, request, tmp / "state") as config:
        yield from indexed_chain(kind, config, tmp)

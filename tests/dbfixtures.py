"""Database fixtures: every database test runs on SQLite and on a real PostgreSQL.

PostgreSQL is the server at ``FILERESTORE_TEST_PG_URL`` when set, else a throwaway cluster
started by ``scripts/postgres``. When neither works, the PostgreSQL tests fail (CI installs
the server; a skipped database test would hide a broken setup). Each test gets a database of
its own (SQLite: a file under tmp_path; PostgreSQL: a fresh database, dropped afterwards).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from filerestore.db import Database, open_database
from filerestore.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PG_ENV = "FILERESTORE_TEST_PG_URL"


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    url = os.environ.get(PG_ENV)
    if url:
        return url
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres")], capture_output=True, text=True, timeout=180
    )
    if result.returncode != 0 or not result.stdout.strip():
        pytest.fail(f"PostgreSQL could not be started by scripts/postgres: {result.stderr}")
    return result.stdout.strip().splitlines()[-1]


def pg_admin(url: str) -> psycopg.Connection[Any]:
    u = make_url(url)
    return psycopg.connect(
        host=u.host,
        port=u.port,
        user=u.username,
        password=u.password,
        dbname=u.database,
        autocommit=True,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None for SQLite (the default: a file in state_dir), else a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    with fresh_pg_database(request.getfixturevalue("pg_server_url")) as url:
        yield url


@contextmanager
def fresh_pg_database(server_url: str, prefix: str = "fr_test") -> Iterator[str]:
    """The URL of a new database on the PostgreSQL server at ``server_url``, dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with pg_admin(server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with pg_admin(server_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def make_settings(tmp_path: Path, database_url: str | None) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"state_dir": tmp_path / "state", "database_url": database_url}
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = open_database(settings)
    try:
        yield database
    finally:
        database.dispose()

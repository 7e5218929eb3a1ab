"""Alembic migrations, run from inside the package (they ship in the wheel).

``ensure_schema`` runs on every start: a fresh database is created and migrated to the head
revision; an up-to-date one costs one query. Concurrent starts are serialised (a file lock
beside the SQLite file, a session advisory lock on PostgreSQL) so two workers starting at
once never both create the tables.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from filerestore.db.engine import Database, advisory_key, translate_errors

SCRIPT_LOCATION = "filerestore.db:migrations"
_LOCK_NAME = "filerestore.migrations"
log = logging.getLogger("filerestore.db")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(db: Database) -> str | None:
    with translate_errors(), db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database, revision: str = "head") -> None:
    with _migration_connection(db) as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def downgrade(db: Database, revision: str = "base") -> None:
    with _migration_connection(db) as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def ensure_schema(db: Database) -> None:
    """Create or migrate the database to the head revision, unless it is there already."""
    current, head = current_revision(db), head_revision()
    if current == head:
        return
    upgrade(db, "head")
    log.info("database schema migrated from %s to %s", current or "empty", head)


@contextmanager
def _migration_connection(db: Database) -> Iterator[Connection]:
    with translate_errors(), _start_lock(db), db.engine.connect() as conn:
        if db.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": advisory_key(_LOCK_NAME)})
            conn.commit()
        try:
            yield conn
            conn.commit()
        finally:
            if db.dialect == "postgresql":
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": advisory_key(_LOCK_NAME)})
                conn.commit()


@contextmanager
def _start_lock(db: Database) -> Iterator[None]:
    database = db.engine.url.database
    if db.dialect != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).with_name(Path(database).name + ".migrate-lock")
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield

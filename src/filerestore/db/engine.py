"""The database handle: engine, transactions, and database errors translated into ours.

Two kinds of transaction:

- ``db.read()``: a plain transaction (SQLite: ``BEGIN``, a deferred reader under WAL).
- ``db.write(lock=...)``: a writer that decides on what it read. SQLite: ``BEGIN IMMEDIATE``
  takes the database's one write lock before the first read, so a check and the insert
  that depends on it are atomic across threads and processes. PostgreSQL: with ``lock``
  named, a transaction-scoped advisory lock (``pg_advisory_xact_lock``) serialises every
  writer using the same name; without it, row locks (``FOR UPDATE``) are the caller's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from filerestore.errors import (
    DatabaseLockedError,
    DatabaseUnavailableError,
    FileRestoreError,
    StateDiskFullError,
)

_IMMEDIATE = "filerestore_immediate"

#: PostgreSQL SQLSTATEs meaning "lock not obtained in time" (lock_not_available, deadlock)
_PG_LOCK_STATES = {"55P03", "40P01"}
#: PostgreSQL SQLSTATEs meaning "no space": disk_full, insufficient_resources (class 53)
_PG_FULL_STATES = {"53100", "53000"}


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_xact_lock`` from a lock name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Database:
    """One engine (and its connection pool) for a database URL."""

    def __init__(self, url: str, busy_timeout: float = 30.0) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self.busy_timeout = busy_timeout
        self.engine = self._create_engine(url)
        self._immediate = self.engine.execution_options(**{_IMMEDIATE: True})

    def _create_engine(self, url: str) -> Engine:
        if self.dialect == "sqlite":
            engine = create_engine(
                url,
                connect_args={"timeout": self.busy_timeout, "check_same_thread": False},
                pool_size=4,
                max_overflow=60,
                pool_timeout=self.busy_timeout,
            )
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        if self.dialect == "postgresql":
            lock_ms = int(self.busy_timeout * 1000)
            return create_engine(
                url,
                connect_args={"options": f"-c lock_timeout={lock_ms}", "connect_timeout": 10},
                pool_size=4,
                max_overflow=30,
                pool_timeout=self.busy_timeout,
                pool_pre_ping=True,
            )
        raise DatabaseUnavailableError(f"unsupported database (sqlite or postgresql): {url}")

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A transaction committed on success, rolled back on error."""
        with (
            translate_errors(),
            Session(self.engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    @contextmanager
    def write(self, lock: str | None = None) -> Iterator[Session]:
        """A writing transaction; see the module docstring for ``lock``."""
        bind = self._immediate if self.dialect == "sqlite" else self.engine
        with (
            translate_errors(),
            Session(bind, expire_on_commit=False) as session,
            session.begin(),
        ):
            session.connection()  # begin now: SQLite takes its write lock here
            if lock is not None and self.dialect == "postgresql":
                session.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(lock)}
                )
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"


def _sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (the pysqlite recipe), so a writer
    # can ask for BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _sqlite_begin(conn: Any) -> None:
    immediate = conn.get_execution_options().get(_IMMEDIATE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def translate_errors() -> Iterator[None]:
    """Database driver errors become DatabaseLockedError or DatabaseUnavailableError."""
    try:
        yield
    except FileRestoreError:
        raise
    except OperationalError as exc:
        raise _translate(exc) from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise DatabaseUnavailableError(f"database connection lost: {_first_line(exc)}") from exc
        raise


def _translate(exc: OperationalError) -> FileRestoreError:
    message = _first_line(exc)
    state = getattr(exc.orig, "sqlstate", None)
    if "database is locked" in message or state in _PG_LOCK_STATES:
        return DatabaseLockedError(f"database is locked by another writer: {message}")
    # SQLite's SQLITE_FULL ("database or disk is full"), PostgreSQL's class 53
    if "database or disk is full" in message or state in _PG_FULL_STATES:
        return StateDiskFullError(f"the database cannot write, its disk is full: {message}")
    return DatabaseUnavailableError(f"database unavailable: {message}")


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc).__name__

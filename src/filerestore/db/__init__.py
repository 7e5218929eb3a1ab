"""The database: SQLAlchemy models, the engine, Alembic migrations. Used by catalog and restore."""

from __future__ import annotations

from filerestore.db.engine import Database
from filerestore.db.migrate import ensure_schema
from filerestore.errors import DatabaseUnavailableError
from filerestore.settings import Settings


def open_database(settings: Settings, migrate: bool = True) -> Database:
    """The configured database; a SQLite file is created (and its directory) on first start."""
    if settings.database_url is None:
        state_dir = settings.state_dir.expanduser()
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailableError(
                f"cannot create the state directory {state_dir}: {exc.strerror}"
            ) from exc
    db = Database(settings.effective_database_url, busy_timeout=settings.db_busy_timeout)
    if migrate:
        try:
            ensure_schema(db)
        except BaseException:
            db.dispose()
            raise
    return db


__all__ = ["Database", "open_database"]

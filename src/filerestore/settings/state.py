"""Where filerestore keeps its state: the state directory and the database."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, NonNegativeInt, PositiveFloat

from filerestore.settings.group import SettingsGroup


def _default_state_dir() -> Path:
    return Path("~/.local/state/filerestore").expanduser()


class StateSettings(SettingsGroup):
    state_dir: Path = Field(default_factory=_default_state_dir)
    """Directory holding filerestore's state: the SQLite database filerestore.db."""
    database_url: str | None = None
    """SQLAlchemy URL of the database (e.g. postgresql+psycopg://user@host/db). Unset: a SQLite
    file in state_dir."""
    db_busy_timeout: PositiveFloat = 30.0
    """Seconds to wait for a database lock held by another writer before failing."""
    min_free_state_bytes: NonNegativeInt = 256 << 20
    """Free bytes the state directory's filesystem must keep: below it new sessions are refused
    (507, code state_disk_full) so the audit trail and sessions can still be written. 0: no
    check."""

    @property
    def sqlite_path(self) -> Path:
        return self.state_dir.expanduser() / "filerestore.db"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"

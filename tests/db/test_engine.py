"""Database errors become our error classes: locked, unreachable."""

import threading

import pytest
from sqlalchemy import text

from filerestore.db import Database, open_database
from filerestore.errors import DatabaseLockedError, DatabaseUnavailableError
from filerestore.settings import Settings


def test_locked_database(settings, db):
    impatient = Database(db.url, busy_timeout=0.3)
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with db.write(lock="test-lock") as s:
            if db.dialect == "sqlite":
                s.execute(
                    text(
                        "INSERT INTO audit_events (time, actor, action, outcome) "
                        "VALUES ('2026-01-01', 'a', 'b', 'c')"
                    )
                )
            holding.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert holding.wait(10)
        with pytest.raises(DatabaseLockedError, match="locked"), impatient.write(lock="test-lock"):
            pass
    finally:
        release.set()
        t.join()
        impatient.dispose()


def test_unreachable_postgresql(tmp_path):
    settings = Settings(
        state_dir=tmp_path, database_url="postgresql+psycopg://nobody@127.0.0.1:9/none"
    )
    with pytest.raises(DatabaseUnavailableError, match="unavailable"):
        open_database(settings)


def test_state_dir_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DatabaseUnavailableError, match="state directory"):
        open_database(Settings(state_dir=blocker / "state"))

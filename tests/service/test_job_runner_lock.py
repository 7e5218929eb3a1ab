"""The restore job runner's lock file (SQLite: one runner at a time) when it cannot be
opened, as when the state directory is removed under a running service: one error line that
names the file, no traceback on every poll, and the runner takes the lock once it can."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from filerestore.db import open_database
from filerestore.service.job_runner import JobRunner
from filerestore.service.sessions import SessionManager
from filerestore.settings import Settings


def test_an_unopenable_lock_file_is_said_once_and_the_lock_taken_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(state_dir=tmp_path / "state", database_url=None)
    db = open_database(settings)
    runner = JobRunner(SessionManager(db, settings))
    lock = settings.state_dir / "restore-jobs.lock"
    lock.mkdir()  # opening it for appending fails (EISDIR), as a missing directory would
    try:
        with caplog.at_level(logging.WARNING, logger="filerestore"):
            assert [runner._may_run() for _ in range(3)] == [False, False, False]
            errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(errors) == 1
            assert str(lock) in errors[0].getMessage()
            assert "Is a directory" in errors[0].getMessage()
            assert errors[0].exc_info is None
            lock.rmdir()
            assert runner._may_run()
            assert lock.is_file()
            assert any("can be opened again" in r.getMessage() for r in caplog.records)
    finally:
        runner._stopped()
        db.dispose()

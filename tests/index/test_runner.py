"""Index runners (filerestore.index.runner) on SQLite and PostgreSQL: a runner asked to stop
mid-pass undoes it and gives the job back, and on SQLite only one runner per database runs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from filerestore.db import Database, open_database
from filerestore.db.models_index import IndexVersion
from filerestore.errors import ConflictError
from filerestore.index import jobs
from filerestore.index.passes import index_backup
from filerestore.index.runner import IndexRunner, _file_lock
from filerestore.settings import Settings
from tests.index.conftest import make_repository, register_chain
from tests.index.test_jobs import dump


def test_a_stopped_runner_gives_its_job_back(
    db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = register_chain(db, make_repository("ext4", tmp_path / "repo"))
    job = jobs.enqueue(db, ids[0])
    monkeypatch.setattr("filerestore.index.batch.BATCH_ROWS", 40)
    stop = threading.Event()
    original = jobs._Beat.__call__

    def stop_midway(self: Any, session: Any, entries: int) -> None:
        if entries > 100:
            stop.set()  # as IndexRunner.stop does, from the service's shutdown
        original(self, session, entries)

    monkeypatch.setattr(jobs._Beat, "__call__", stop_midway)
    outcome = jobs.run_one_job(db, settings, "stopping", stop)
    assert outcome is not None and outcome.state == "queued"
    row = jobs.get_job(db, job.id)
    assert (row.state, row.attempts, row.runner) == ("queued", 0, None)
    with db.read() as s:  # the stopped pass left nothing behind
        assert s.scalar(select(func.count()).select_from(IndexVersion)) == 0
    monkeypatch.setattr(jobs._Beat, "__call__", original)
    (done,) = IndexRunner(db, settings).drain()
    assert (done.job_id, done.state) == (job.id, "done")
    clean = open_database(Settings(state_dir=tmp_path / "clean"))
    try:  # the same rows as an index that was never stopped
        register_chain(clean, make_repository("ext4", tmp_path / "repo2"))
        index_backup(clean, settings, ids[0])
        assert dump(db) == dump(clean)
    finally:
        clean.dispose()


def test_one_runner_per_sqlite_database(db: Database, settings: Settings, tmp_path: Path) -> None:
    ids = register_chain(db, make_repository("ext4", tmp_path / "repo"))
    jobs.enqueue(db, ids[0])
    runner = IndexRunner(db, settings)
    if db.dialect != "sqlite":
        assert runner.lock_path is None  # PostgreSQL: SKIP LOCKED shares the queue
        assert [o.state for o in runner.drain()] == ["done"]
        return
    assert runner.lock_path is not None
    with _file_lock(runner.lock_path) as held:  # another runner (a serve worker) has it
        assert held
        with pytest.raises(ConflictError, match="another index runner holds"):
            runner.drain()
        assert jobs.index_states(db, ids)[ids[0]].state == "queued"
    assert [o.state for o in runner.drain()] == ["done"]

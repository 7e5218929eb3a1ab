"""The index job queue on SQLite and PostgreSQL: order, retries, cancellation, a killed
runner resumed by another without duplicate rows, two runners on one PostgreSQL, and a
backup removed from the catalog while it is indexed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from filerestore.catalog import add_repository, register_backup
from filerestore.db import Database, open_database
from filerestore.db.models import Backup, Repository
from filerestore.db.models_index import IndexBackup, IndexJob, IndexLine, IndexVersion
from filerestore.index import jobs
from filerestore.index.passes import index_backup
from filerestore.settings import Settings
from tests.index.conftest import make_repository, module_settings, register_chain

ROOT = Path(__file__).resolve().parents[2]


def drain(db: Database, settings: Settings) -> list[jobs.JobOutcome]:
    out = []
    while (outcome := jobs.run_one_job(db, settings)) is not None:
        out.append(outcome)
    return out


def dump(db: Database) -> set[tuple[Any, ...]]:
    """Every version of the index with its path, independent of directory numbering."""
    from filerestore.index.paths import DirPaths
    from filerestore.index.store import IndexStore
    from filerestore.index.text import from_db

    with db.read() as session:
        store = IndexStore(session)
        rows = store.query(
            "SELECT v.volume_id, vol.volume, v.parent_no, n.name, v.first_seq, v.last_seq, "
            "v.kind, v.size, v.mode, v.mtime_ns, v.ctime_delta, v.inode, v.nlink, v.target "
            "FROM index_versions v JOIN index_names n ON n.id = v.name_id "
            "JOIN index_volumes vol ON vol.id = v.volume_id"
        )
        paths: dict[int, DirPaths] = {}
        out = set()
        for row in rows:
            p = paths.setdefault(row[0], DirPaths(store, row[0]))
            out.add((row[1], p.entry_path(row[2], from_db(row[3])), *row[4:]))
        return out


def test_jobs_index_a_chain_parents_first(
    db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "PARENT_WAIT", 0.0)
    ids = register_chain(db, make_repository("ext4", tmp_path / "repo"))
    top = jobs.enqueue(db, ids[2], requested_by="alice")
    assert jobs.enqueue(db, ids[2]).id == top.id  # one active job per backup
    assert jobs.index_states(db, ids)[ids[2]].state == "queued"
    outcomes = drain(db, settings)
    assert {o.state for o in outcomes} <= {"done", "queued"}
    states = jobs.index_states(db, ids)
    assert [states[i].state for i in ids] == ["done", "done", "done"]
    assert jobs.get_job(db, top.id).state == "done"
    with db.read() as s:
        seqs = dict(s.execute(select(IndexBackup.backup_id, IndexBackup.seq)).all())
        methods = dict(s.execute(select(IndexBackup.backup_id, IndexBackup.method)).all())
    assert [seqs[i] for i in ids] == [1, 2, 3]
    assert methods[ids[0]] == "full"
    assert methods[ids[1]] == methods[ids[2]] == "changed-blocks"
    # and what the job queue built is what direct passes build
    other = open_database(Settings(state_dir=tmp_path / "other"))
    try:
        register_chain(other, make_repository("ext4", tmp_path / "repo2"))
        for i in range(1, 4):
            index_backup(other, settings, i, method="walk-diff")
        assert dump(other) == dump(db)
    finally:
        other.dispose()


def test_transient_errors_are_retried_with_backoff(db: Database, tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "s", index_job_attempts=2, index_job_backoff=0.2)
    ids = register_chain(db, make_repository("ext4", tmp_path / "repo"))
    with db.write() as s:  # the share is "not mounted": the repository is unavailable
        s.execute(update(Repository).values(kind="nfs"))
    job = jobs.enqueue(db, ids[0])
    first = jobs.run_one_job(db, settings)
    assert first is not None and first.state == "queued"
    row = jobs.get_job(db, job.id)
    assert row.attempts == 1 and "not mounted" in (row.reason or "")
    assert jobs.run_one_job(db, settings) is None  # not due before its backoff
    time.sleep(0.3)
    second = jobs.run_one_job(db, settings)
    assert second is not None and second.state == "failed"
    assert "after 2 attempts" in (second.reason or "")
    assert jobs.index_states(db, ids)[ids[0]].state == "failed"


def test_cancel(db: Database, settings: Settings, tmp_path: Path, monkeypatch) -> None:
    ids = register_chain(db, make_repository("ext4", tmp_path / "repo"))
    queued = jobs.enqueue(db, ids[0])
    assert jobs.cancel(db, queued.id).state == "cancelled"
    assert jobs.run_one_job(db, settings) is None
    running = jobs.enqueue(db, ids[0])
    monkeypatch.setattr("filerestore.index.batch.BATCH_ROWS", 40)
    original = jobs._Beat.__call__

    def cancel_midway(self: Any, session: Any, entries: int) -> None:
        if entries > 100:
            session.execute(
                update(IndexJob).where(IndexJob.id == running.id).values(cancel_requested=True)
            )
            session.flush()
        original(self, session, entries)

    monkeypatch.setattr(jobs._Beat, "__call__", cancel_midway)
    outcome = jobs.run_one_job(db, settings)
    assert outcome is not None and outcome.state == "cancelled"
    assert jobs.index_states(db, ids)[ids[0]].state == "none"
    with db.read() as s:  # the cancelled pass left nothing behind
        assert s.scalar(select(func.count()).select_from(IndexVersion)) == 0
        assert s.scalar(select(func.count()).select_from(IndexLine)) == 0


def _runner(state: Path, url: str | None, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.index.runner_process", str(state), url or "-", mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_killed_runner_is_resumed_without_duplicate_rows(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    ids = register_chain(db, make_repository("ext4", tmp_path / "repo"))
    job = jobs.enqueue(db, ids[0])
    # the runner dies in the 3rd write transaction of the pass (batches of 40 rows)
    killed = _runner(settings.state_dir, settings.database_url, "die-after=3")
    assert killed.returncode == -9, killed.stderr
    row = jobs.get_job(db, job.id)
    assert row.state == "running" and row.attempts == 1  # as the dead runner left it
    with db.read() as s:  # some batches were committed before it died, not the last
        assert (s.scalar(select(func.count()).select_from(IndexVersion)) or 0) > 0
        assert s.scalar(select(IndexBackup.complete)) is False
    assert jobs.run_one_job(db, settings) is None  # its lease (1 s) still runs
    time.sleep(1.2)
    outcome = jobs.run_one_job(db, settings)
    assert outcome is not None and outcome.state == "done", outcome
    assert jobs.get_job(db, job.id).attempts == 2
    clean = open_database(Settings(state_dir=tmp_path / "clean"))
    try:
        register_chain(clean, make_repository("ext4", tmp_path / "repo2"))
        index_backup(clean, settings, ids[0])
        assert dump(db) == dump(clean)
    finally:
        clean.dispose()


def test_a_backup_removed_while_indexed_fails_cleanly(
    db: Database, settings: Settings, tmp_path: Path, monkeypatch
) -> None:
    ids = register_chain(db, make_repository("ext4", tmp_path / "repo"))
    index_backup(db, settings, ids[0])
    before = dump(db)
    job = jobs.enqueue(db, ids[1])
    monkeypatch.setattr("filerestore.index.batch.BATCH_ROWS", 5)
    original = jobs._Beat.__call__
    calls = [0]

    def remove_midway(self: Any, session: Any, entries: int) -> None:
        original(self, session, entries)
        calls[0] += 1
        if calls[0] == 2:  # removed in this transaction; the next one sees it gone
            session.execute(delete(Backup).where(Backup.id == ids[1]))

    monkeypatch.setattr(jobs._Beat, "__call__", remove_midway)
    outcome = jobs.run_one_job(db, settings)
    assert calls[0] >= 2
    assert outcome is not None and outcome.state == "failed"
    assert "removed" in (outcome.reason or "")
    info = jobs.get_job(db, job.id)
    assert info.state == "failed" and info.backup_id is None
    assert dump(db) == before  # the base's index as it was: nothing of the pass is left
    with db.read() as s:
        assert s.scalar(select(IndexLine.head_seq)) == 1
        assert s.scalar(select(func.count()).select_from(IndexBackup)) == 1


def _many_fulls(db: Database, tmp_path: Path, count: int) -> list[int]:
    ids = []
    for k in range(count):
        repo = make_repository("ext4", tmp_path / f"repo{k}")
        add_repository(db, f"r{k}", str(repo))
        ids.append(register_backup(db, f"r{k}", "base.qcow2").id)
    return ids


def test_two_runners_on_postgresql_never_take_the_same_job(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with module_settings("postgresql", request, tmp_path / "state") as settings:
        assert settings.database_url is not None
        db = open_database(settings)
        try:
            ids = _many_fulls(db, tmp_path, 6)
            for backup_id in ids:
                jobs.enqueue(db, backup_id)
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tests.index.runner_process",
                        str(tmp_path / f"s{k}"),
                        settings.database_url,
                        "drain",
                    ],
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for k in range(2)
            ]
            results = [p.communicate(timeout=300) for p in procs]
            assert all(p.returncode == 0 for p in procs), [r[1] for r in results]
            done = [json.loads(out) for out, _ in results]
            taken = [job_id for runner in done for job_id, _ in runner]
            assert sorted(taken) == sorted(set(taken))  # never the same job twice
            assert len(taken) == 6 and all(state == "done" for r in done for _, state in r)
            with db.read() as s:
                assert s.scalar(select(func.count()).select_from(IndexBackup)) == 6
                assert s.scalar(select(func.count()).select_from(IndexJob)) == 6
                per_volume = s.execute(
                    select(IndexVersion.volume_id, func.count()).group_by(IndexVersion.volume_id)
                ).all()
            assert len(per_volume) == 6 and len({n for _, n in per_volume}) == 1
        finally:
            db.dispose()

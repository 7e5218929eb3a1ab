# ruff: noqa: F811 - pytest fixtures imported from tests/dbfixtures.py are redefined as arguments
"""Index jobs obey the limits of sessions (filerestore.service.index_slots), on SQLite and
PostgreSQL: a job's pass holds one of the host's ``max_sessions`` slots while it reads (a
mount is refused meanwhile, and succeeds once the job is done); a job that finds every slot
taken waits in the queue with the refusal's name as its reason (not an attempt) and runs
once a slot is free; a backup whose chain cannot be read within ``image_metadata_budget``
fails its job with ``metadata_budget``, and the slot is given back either way."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from filerestore.catalog import BackupInfo, add_repository, register_backup
from filerestore.db import Database
from filerestore.db.models import RestoreMount
from filerestore.db.models_index import IndexJob, IndexVersion
from filerestore.errors import SessionLimitError
from filerestore.image import DiskImage
from filerestore.index import jobs
from filerestore.service.held_slots import hold_slot, release_slot
from filerestore.service.index_slots import INDEX_JOBS, SessionSlots
from filerestore.service.principal import Principal
from filerestore.service.sessions import SessionManager
from filerestore.service.slotqueue import SlotQueue
from filerestore.settings import Settings
from tests.dbfixtures import database_url, db, make_settings, pg_server_url  # noqa: F401
from tests.imagebuild.deep_chain import deep_sparse_chain
from tests.imagebuild.sparse import copy_sparse
from tests.index.conftest import make_repository, register_chain

ALICE = Principal.token(1, "alice", admin=False)
OPERATOR = Principal.operator()


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """One session slot on the host."""
    return make_settings(max_sessions=1)


def _versions(db: Database) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(IndexVersion)) or 0


class _Probing(SessionSlots):
    """The service's opener, which also tries a mount while the pass holds its slot."""

    def __init__(self, manager: SessionManager, backup_id: int) -> None:
        super().__init__(manager)
        self.backup_id = backup_id
        self.refused: list[SessionLimitError] = []
        self.held: list[tuple[str, str | None, str]] = []

    @contextlib.contextmanager
    def open(self, info: BackupInfo) -> Iterator[DiskImage]:
        with super().open(info) as disk:
            self.held = [(s.owner, s.volume, s.status) for s in self.manager.list(OPERATOR)]
            try:
                self.manager.mount(self.backup_id, None, ALICE)
            except SessionLimitError as exc:
                self.refused.append(exc)
            yield disk


def test_a_job_waits_for_a_session_slot_and_holds_one_while_it_runs(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    ids = register_chain(db, make_repository("ext4", tmp_path / "repo"))
    manager = SessionManager(db, settings)
    opener = _Probing(manager, ids[1])
    session = manager.mount(ids[0], None, ALICE)  # the host's only slot
    job = jobs.enqueue(db, ids[0])

    outcome = jobs.run_one_job(db, settings, opener=opener)
    assert outcome is not None and outcome.state == "queued", outcome
    assert outcome.reason is not None and outcome.reason.startswith("session_limit: ")
    assert "1 of 1 in use" in outcome.reason
    waiting = jobs.get_job(db, job.id)
    assert (waiting.state, waiting.attempts, waiting.reason) == ("queued", 0, outcome.reason)
    assert jobs.index_states(db, ids)[ids[0]].state == "queued"
    assert _versions(db) == 0 and manager.live_count() == 1
    # it waits out its backoff (index_job_backoff, 30 s here), not a free slot's signal
    assert jobs.run_one_job(db, settings, opener=opener) is None

    manager.unmount(session.mount_id, ALICE)
    with db.write() as s:  # its wait is over, as time passing would make it
        s.execute(update(IndexJob).values(next_attempt_at=datetime.now(UTC)))
    outcome = jobs.run_one_job(db, settings, opener=opener)
    assert outcome is not None and outcome.state == "done", outcome
    assert jobs.get_job(db, job.id).attempts == 1
    assert _versions(db) > 0
    # while the pass read, its slot was the host's one: listed, and a mount was refused
    assert opener.held == [("index", None, "mounted")]
    (refused,) = opener.refused
    assert refused.code == "session_limit"
    assert manager.live_count() == 0  # given back
    assert manager.mount(ids[1], None, ALICE).backup_id == ids[1]


def test_the_index_quota_of_slots_is_the_owner_quota(
    db: Database, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(max_sessions=4, max_sessions_per_owner=1)
    ids = register_chain(db, make_repository("ext4", tmp_path / "repo"))
    manager = SessionManager(db, settings)
    held = hold_slot(manager, ids[1], INDEX_JOBS, timedelta(minutes=1))  # another job's
    jobs.enqueue(db, ids[0])
    outcome = jobs.run_one_job(db, settings, opener=SessionSlots(manager))
    assert outcome is not None and outcome.state == "queued", outcome
    assert outcome.reason is not None and outcome.reason.startswith("session_quota: ")
    release_slot(manager, held)
    assert manager.live_count() == 0


def test_a_chain_over_the_metadata_budget_fails_its_job_by_name(
    db: Database, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    chain = deep_sparse_chain()  # 64 qcow2 files: one L1 piece and one L2 table each, 5 MiB
    repo = tmp_path / "deep"
    repo.mkdir()
    for image in chain.glob("*.qcow2"):
        try:
            os.link(image, repo / image.name)
        except OSError:  # the cache on another filesystem
            copy_sparse(image, repo / image.name)
    add_repository(db, "deep", str(repo))
    backup = register_backup(db, "deep", "layer63.qcow2")  # within the default 64 MiB
    settings = make_settings(image_metadata_budget=2 << 20)
    manager = SessionManager(db, settings)
    job = jobs.enqueue(db, backup.id)
    outcome = jobs.run_one_job(db, settings, opener=SessionSlots(manager))
    assert outcome is not None and outcome.state == "failed", outcome
    assert outcome.reason is not None and outcome.reason.startswith("metadata_budget: ")
    assert "2.0 MiB" in outcome.reason
    failed = jobs.get_job(db, job.id)
    assert (failed.state, failed.reason) == ("failed", outcome.reason)
    assert jobs.index_states(db, [backup.id])[backup.id].state == "failed"
    assert manager.live_count() == 0  # the slot was given back
    assert _versions(db) == 0


def test_a_mount_waiting_for_a_slot_goes_before_a_job(
    db: Database, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A slot freed while a mount of this process queues for one is the mount's: the job
    does not jump the queue (SlotQueue.first_try)."""
    settings = make_settings(max_sessions=1, mount_wait_timeout=120)
    ids = register_chain(db, make_repository("ext4", tmp_path / "repo"))
    manager = SessionManager(db, settings)
    manager.slots = SlotQueue(max_waiters=8, poll=600)  # the waiter tries when woken only
    bob = Principal.token(2, "bob", admin=False)
    first = manager.mount(ids[0], None, ALICE)
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(manager.mount(ids[1], None, bob)))
    waiter.start()
    # no deadline of its own: a hang ends at the test's pytest-timeout limit
    while manager.slots.waiting() == 0:
        time.sleep(0.01)
    with db.write() as s:  # alice's session ends elsewhere (another worker, the cleanup)
        s.execute(delete(RestoreMount).where(RestoreMount.id == first.mount_id))
    jobs.enqueue(db, ids[0])
    outcome = jobs.run_one_job(db, settings, opener=SessionSlots(manager))
    assert outcome is not None and outcome.state == "queued", outcome
    assert outcome.reason is not None and outcome.reason.startswith("session_limit: ")
    manager.slots.freed()  # the waiter takes its slot now
    waiter.join(120)
    assert [getattr(s, "backup_id", s) for s in got] == [ids[1]]

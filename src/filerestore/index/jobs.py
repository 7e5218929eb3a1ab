"""Index jobs: a queue in the database, taken by any runner on any host.

A job is ``queued``, then ``running`` under a runner's lease, then ``done``, ``failed``
(``reason`` says why) or ``cancelled``. At most one queued or running job per backup (a
partial unique index): enqueueing again returns the active job.

- Claiming (:func:`claim`): the oldest due queued job, or a running one whose lease ran out
  (its runner died: the job is resumed; the pass's own undo removes the dead runner's
  rows). PostgreSQL takes it with ``FOR UPDATE SKIP LOCKED``, so runners on many hosts never
  take the same job and never wait for each other; SQLite serialises claims through its one
  write lock (run one runner per SQLite database: two would fight over that lock).
- Running (:func:`run_one_job`): the pass (filerestore.index.passes) calls back in every
  write transaction; the callback renews the lease and records progress (entries,
  entries/s, percent) with ``WHERE runner = me``, in that same transaction. A runner whose
  lease was taken over finds that row no longer its own, rolls back and stops: the fence
  that keeps two runners from writing one pass. Cancellation and a backup removed from the
  catalog (its job's ``backup_id`` set to NULL) are seen there too.
- Outcomes: done; a backup whose parent is not indexed yet waits for it (the parent is
  queued; the wait is not an attempt); so does a job that finds every session slot taken
  (its open counts against ``max_sessions`` like a mount: filerestore.index.opening), with
  the refusal as its reason; a transient error (repository or database unavailable) is
  retried with exponential backoff up to ``index_job_attempts``; anything else fails at
  once. A refusal is recorded by name: ``code: message``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from filerestore.db.engine import Database
from filerestore.db.models import Backup
from filerestore.db.models_index import (
    ACTIVE_STATES,
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    IndexBackup,
    IndexJob,
)
from filerestore.errors import (
    BackupNotFoundError,
    FileRestoreError,
    NotFoundError,
    ServiceUnavailableError,
    SessionLimitError,
)
from filerestore.index.batch import PassStopped
from filerestore.index.lines import ParentNotIndexed
from filerestore.index.opening import BackupOpener
from filerestore.index.passes import PassReport, index_backup
from filerestore.index.records import IndexState
from filerestore.settings import Settings

PARENT_WAIT = 2.0  # seconds before a job waiting for its parent's looks again


class LeaseLost(PassStopped):
    """Another runner holds the job now (this one was presumed dead)."""

    undo = False


class JobCancelled(PassStopped):
    """The job was cancelled while it ran."""


class BackupRemoved(PassStopped):
    """The backup was removed from the catalog while it was indexed."""


class RunnerStopping(PassStopped):
    """The runner is shutting down: the pass is undone and the job queued again."""


@dataclass(frozen=True)
class JobInfo:
    id: int
    backup_id: int | None
    state: str
    reason: str | None
    attempts: int
    entries: int
    entries_per_s: float
    percent: float | None
    runner: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, row: IndexJob) -> JobInfo:
        return cls(
            row.id,
            row.backup_id,
            row.state,
            row.reason,
            row.attempts,
            row.entries,
            row.entries_per_s,
            row.percent,
            row.runner,
            row.created_at,
            row.started_at,
            row.finished_at,
        )


def runner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _now() -> datetime:
    return datetime.now(UTC)


# --- the queue ----------------------------------------------------------------------------


def enqueue(db: Database, backup_id: int, requested_by: str | None = None) -> JobInfo:
    """Queue an index job for the backup; the active one if it has one already."""
    with db.write() as s:
        return JobInfo.of(_enqueue(s, backup_id, requested_by))


def _enqueue(s: Session, backup_id: int, requested_by: str | None) -> IndexJob:
    active = s.scalar(
        select(IndexJob).where(IndexJob.backup_id == backup_id, IndexJob.state.in_(ACTIVE_STATES))
    )
    if active is not None:
        return active
    job = IndexJob(backup_id=backup_id, state=QUEUED, requested_by=requested_by)
    s.add(job)
    try:
        with s.begin_nested():
            s.flush()
    except IntegrityError:  # queued by another process since the check above
        active = s.scalar(
            select(IndexJob).where(
                IndexJob.backup_id == backup_id, IndexJob.state.in_(ACTIVE_STATES)
            )
        )
        if active is None:
            raise
        return active
    return job


def get_job(db: Database, job_id: int) -> JobInfo:
    with db.read() as s:
        row = s.get(IndexJob, job_id)
        if row is None:
            raise NotFoundError(f"no index job with id {job_id}")
        return JobInfo.of(row)


def list_jobs(db: Database, states: Collection[str] | None = None) -> list[JobInfo]:
    query = select(IndexJob).order_by(IndexJob.id)
    if states is not None:
        query = query.where(IndexJob.state.in_(states))
    with db.read() as s:
        return [JobInfo.of(r) for r in s.scalars(query)]


def cancel(db: Database, job_id: int) -> JobInfo:
    """Cancel a job: a queued one at once, a running one at its next batch."""
    with db.write() as s:
        row = s.get(IndexJob, job_id)
        if row is None:
            raise NotFoundError(f"no index job with id {job_id}")
        if row.state == QUEUED:
            row.state, row.finished_at, row.reason = CANCELLED, _now(), "cancelled"
        elif row.state == RUNNING:
            row.cancel_requested = True
        return JobInfo.of(row)


def index_states(db: Database, backup_ids: Collection[int]) -> dict[int, IndexState]:
    """Each backup's index state: done, or its newest job's (none without one)."""
    ids = sorted(set(backup_ids))
    out = {i: IndexState(i, "none") for i in ids}
    with db.read() as s:
        for row in s.scalars(select(IndexBackup).where(IndexBackup.backup_id.in_(ids))):
            if row.complete:
                out[row.backup_id] = IndexState(
                    row.backup_id, DONE, row.notes, row.entries, indexed_at=row.finished_at
                )
        jobs = s.scalars(
            select(IndexJob).where(IndexJob.backup_id.in_(ids)).order_by(IndexJob.id)
        ).all()
    for job in jobs:
        assert job.backup_id is not None
        if out[job.backup_id].state == DONE and job.state != RUNNING and job.state != QUEUED:
            continue
        state = "none" if job.state == CANCELLED else job.state
        if state == DONE and out[job.backup_id].state == DONE:
            continue
        out[job.backup_id] = IndexState(
            job.backup_id,
            state,
            job.reason,
            job.entries,
            job.entries_per_s,
            job.percent,
            job.id,
        )
    return out


# --- claiming and running -------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    job_id: int
    backup_id: int | None
    attempts: int
    runner: str


def claim(db: Database, settings: Settings, runner: str) -> Claimed | None:
    """Take the next due job (see the module docstring), or None."""
    now = _now()
    with db.write() as s:
        due = or_(
            (IndexJob.state == QUEUED) & (IndexJob.next_attempt_at <= now),
            (IndexJob.state == RUNNING) & (IndexJob.lease_until < now),
        )
        row = s.scalar(
            select(IndexJob)
            .where(due)
            .order_by(IndexJob.next_attempt_at, IndexJob.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if row is None:
            return None
        row.state = RUNNING
        row.runner = runner
        row.attempts += 1
        row.started_at = row.started_at or now
        row.heartbeat_at = now
        row.lease_until = now + timedelta(seconds=settings.index_job_lease)
        return Claimed(row.id, row.backup_id, row.attempts, runner)


class _Beat:
    """The pass's progress hook: renews the lease, records progress, fences the pass."""

    def __init__(
        self,
        settings: Settings,
        claimed: Claimed,
        expected: int | None,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.claimed = claimed
        self.expected = expected
        self.stop = stop
        self.started = time.monotonic()

    def __call__(self, session: Session, entries: int) -> None:
        row = session.get(IndexJob, self.claimed.job_id, with_for_update=True)
        if row is None or row.runner != self.claimed.runner or row.state != RUNNING:
            raise LeaseLost(f"index job {self.claimed.job_id} is held by another runner now")
        if row.backup_id is None:
            raise BackupRemoved(
                f"backup {self.claimed.backup_id} was removed from the catalog while indexed"
            )
        if row.cancel_requested:
            raise JobCancelled(f"index job {self.claimed.job_id} was cancelled")
        if self.stop is not None and self.stop.is_set():
            raise RunnerStopping(f"runner {self.claimed.runner} is stopping")
        now = _now()
        elapsed = max(time.monotonic() - self.started, 1e-6)
        row.heartbeat_at = now
        row.lease_until = now + timedelta(seconds=self.settings.index_job_lease)
        row.entries = entries
        row.entries_per_s = entries / elapsed
        if self.expected:
            row.percent = min(99.9, 100.0 * entries / self.expected)


def _expected_entries(db: Database, backup_id: int) -> int | None:
    """How many entries the pass will see, guessed from the parent's pass (for percent)."""
    with db.read() as s:
        parent = s.scalar(select(Backup.parent_backup_id).where(Backup.id == backup_id))
        if parent is None:
            return None
        row = s.get(IndexBackup, parent)
        return row.entries if row is not None and row.complete and row.entries else None


@dataclass(frozen=True)
class JobOutcome:
    job_id: int
    state: str  # the state the job was left in
    reason: str | None = None
    report: PassReport | None = None


def run_one_job(
    db: Database,
    settings: Settings,
    runner: str | None = None,
    stop: threading.Event | None = None,
    opener: BackupOpener | None = None,
) -> JobOutcome | None:
    """Claim one due job and run it to its end; None when no job is due. When ``stop`` is
    set while the job runs, its pass is undone at the next batch and the job queued again.
    ``opener`` opens the backup (the service's runners give its session slots: see
    filerestore.index.opening)."""
    runner = runner or runner_name()
    claimed = claim(db, settings, runner)
    if claimed is None:
        return None
    if claimed.backup_id is None:
        return _finish(db, claimed, FAILED, "the backup was removed from the catalog")
    if claimed.attempts > settings.index_job_attempts:
        return _finish(
            db, claimed, FAILED, f"gave up after {claimed.attempts - 1} attempts (runners died)"
        )
    beat = _Beat(settings, claimed, _expected_entries(db, claimed.backup_id), stop)
    try:
        report = index_backup(db, settings, claimed.backup_id, beat, opener=opener)
    except LeaseLost:
        return JobOutcome(claimed.job_id, RUNNING, "taken over by another runner")
    except JobCancelled:
        return _finish(db, claimed, CANCELLED, "cancelled")
    except RunnerStopping:
        return _release(db, claimed, "its runner stopped; queued again")
    except (BackupRemoved, BackupNotFoundError) as exc:
        return _finish(db, claimed, FAILED, f"the backup was removed from the catalog: {exc}")
    except ParentNotIndexed as exc:
        return _wait_for_parent(db, claimed, exc.parent_id)
    except SessionLimitError as exc:
        return _wait_for_slot(db, settings, claimed, exc)
    except ServiceUnavailableError as exc:
        return _retry_or_fail(db, settings, claimed, _named(exc))
    except FileRestoreError as exc:
        return _finish(db, claimed, FAILED, _named(exc))
    except Exception as exc:  # a bug: fail the job with it rather than leave it leased
        return _finish(db, claimed, FAILED, f"{type(exc).__name__}: {exc}")
    outcome = _finish(db, claimed, DONE, report.notes, report.entries)
    return JobOutcome(outcome.job_id, outcome.state, outcome.reason, report)


def _named(exc: FileRestoreError) -> str:
    """A refusal as a job's reason: its code, then its message."""
    return f"{exc.code}: {exc}"


def _wait_for_slot(
    db: Database, settings: Settings, claimed: Claimed, exc: SessionLimitError
) -> JobOutcome:
    """Every session slot is taken (or the index's quota of them): the job goes back to the
    queue, due again after the backoff or the refusal's Retry-After, whichever is sooner;
    waiting is not an attempt."""
    delay = min(settings.index_job_backoff, float(exc.retry_after or PARENT_WAIT))
    return _release(db, claimed, _named(exc), delay)


def _owned(s: Session, claimed: Claimed) -> IndexJob | None:
    row = s.get(IndexJob, claimed.job_id, with_for_update=True)
    return row if row is not None and row.runner == claimed.runner else None


def _finish(
    db: Database, claimed: Claimed, state: str, reason: str | None, entries: int | None = None
) -> JobOutcome:
    with db.write() as s:
        row = _owned(s, claimed)
        if row is None:
            return JobOutcome(claimed.job_id, RUNNING, "taken over by another runner")
        row.state, row.reason, row.finished_at = state, reason, _now()
        row.lease_until = None
        if entries is not None:
            row.entries = entries
            row.percent = 100.0
    return JobOutcome(claimed.job_id, state, reason)


def _retry_or_fail(db: Database, settings: Settings, claimed: Claimed, reason: str) -> JobOutcome:
    if claimed.attempts >= settings.index_job_attempts:
        return _finish(db, claimed, FAILED, f"{reason} (after {claimed.attempts} attempts)")
    delay = settings.index_job_backoff * 2 ** (claimed.attempts - 1)
    with db.write() as s:
        row = _owned(s, claimed)
        if row is not None:
            row.state, row.reason, row.runner, row.lease_until = QUEUED, reason, None, None
            row.next_attempt_at = _now() + timedelta(seconds=delay)
    return JobOutcome(claimed.job_id, QUEUED, reason)


def _release(db: Database, claimed: Claimed, reason: str, delay: float = 0.0) -> JobOutcome:
    """Give the job back to the queue, due now (or in ``delay`` seconds); the attempt does
    not count."""
    with db.write() as s:
        row = _owned(s, claimed)
        if row is None:
            return JobOutcome(claimed.job_id, RUNNING, "taken over by another runner")
        row.state, row.reason, row.runner, row.lease_until = QUEUED, reason, None, None
        row.attempts -= 1
        row.next_attempt_at = _now() + timedelta(seconds=delay)
    return JobOutcome(claimed.job_id, QUEUED, reason)


def _wait_for_parent(db: Database, claimed: Claimed, parent_id: int) -> JobOutcome:
    with db.write() as s:
        row = _owned(s, claimed)
        if row is None:
            return JobOutcome(claimed.job_id, RUNNING, "taken over by another runner")
        parent_jobs = s.scalars(
            select(IndexJob).where(IndexJob.backup_id == parent_id).order_by(IndexJob.id)
        ).all()
        last = parent_jobs[-1] if parent_jobs else None
        if last is not None and last.state in (FAILED, CANCELLED):
            row.state, row.finished_at, row.lease_until = FAILED, _now(), None
            row.reason = f"its parent backup {parent_id} could not be indexed: {last.reason}"
            return JobOutcome(claimed.job_id, FAILED, row.reason)
        _enqueue(s, parent_id, row.requested_by)
        reason = f"waiting for the parent backup {parent_id} to be indexed"
        row.state, row.reason, row.runner, row.lease_until = QUEUED, reason, None, None
        row.attempts -= 1  # waiting is not an attempt
        row.next_attempt_at = _now() + timedelta(seconds=PARENT_WAIT)
    return JobOutcome(claimed.job_id, QUEUED, reason)


def enqueue_unindexed(
    db: Database, backup_ids: Collection[int] | None = None, requested_by: str | None = None
) -> list[JobInfo]:
    """Queue a job for each backup (of ``backup_ids``, or of the catalog) that is not
    indexed and never had a job: what a scan or a registration adds. Parents first."""
    with db.write() as s:
        query = select(Backup.id).order_by(Backup.id)
        if backup_ids is not None:
            query = query.where(Backup.id.in_(sorted(set(backup_ids))))
        ids = list(s.scalars(query))
        if not ids:
            return []
        known = set(s.scalars(select(IndexJob.backup_id).where(IndexJob.backup_id.in_(ids)))) | set(
            s.scalars(
                select(IndexBackup.backup_id).where(
                    IndexBackup.backup_id.in_(ids), IndexBackup.complete.is_(True)
                )
            )
        )
        return [JobInfo.of(_enqueue(s, i, requested_by)) for i in ids if i not in known]


def requeue_stale(db: Database) -> int:
    """Jobs whose lease ran out go back to the queue now (claim would take them anyway;
    this makes their state honest for readers). Returns how many."""
    now = _now()
    with db.write() as s:
        result = s.execute(
            update(IndexJob)
            .where(IndexJob.state == RUNNING, IndexJob.lease_until < now)
            .values(state=QUEUED, runner=None, reason="its runner stopped answering")
        )
        return int(getattr(result, "rowcount", 0) or 0)

"""Session cleanup: expiry, stuck transitions, emergency cleanup, crash reconciliation.

Every removal is one transaction that takes the row (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises writers anyway), deletes it and writes
its ``cleanup`` audit event, so with several workers on one database each session is
cleaned exactly once, and the audit trail shows by whom. A session with a download hold is
never expired. :class:`CleanupService` runs a pass on an interval in a daemon thread, and
its first pass at start reconciles rows a crashed process left behind.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Select, delete, exists, select, update

from filerestore.db.models import (
    FAILED,
    LIVE_STATES,
    MOUNTED,
    MOUNTING,
    UNMOUNTING,
    AuditEvent,
    Backup,
    DownloadHold,
    Repository,
    RestoreMount,
    utcnow,
)
from filerestore.errors import FileRestoreError
from filerestore.service import audit, session_fuse
from filerestore.service.liveness import is_dead
from filerestore.service.sessions import SessionManager
from filerestore.service.worker_thread import WorkerThread

log = logging.getLogger("filerestore.cleanup")


#: rows taken per transaction: keeps each short, and lets concurrent workers share the work
BATCH = 50
#: audit rows deleted per transaction: a trail of millions goes in short transactions that
#: never hold SQLite's one write lock for long
AUDIT_BATCH = 5000


def _take(manager: SessionManager, query: Select[RestoreMount], reason: str) -> list[str]:
    """Delete the rows ``query`` selects that no other worker holds, in batches; their ids."""
    taken: list[str] = []
    while batch := _take_batch(manager, query.limit(BATCH), reason):
        taken += batch
    return taken


def _take_batch(manager: SessionManager, query: Select[RestoreMount], reason: str) -> list[str]:
    me = manager.me
    with manager.db.write() as s:
        rows = s.scalars(query.with_for_update(skip_locked=True)).all()
        for row in rows:
            manager.audit.add(
                s,
                audit.Event(
                    f"cleanup@{me.host}:{me.pid}",
                    "cleanup",
                    reason,
                    backup_id=row.backup_id,
                    mount_id=row.id,
                    detail=f"status {row.status}, expires {row.expires_at.isoformat()}",
                ),
            )
        ids = [row.id for row in rows]
        views = {
            row.id: (row.fuse_host, row.fuse_pid, row.fuse_start)
            for row in rows
            if row.fuse_pid is not None or row.mount_path is not None
        }
        if ids:
            s.execute(delete(RestoreMount).where(RestoreMount.id.in_(ids)))
    for mount_id in ids:
        manager.readers.discard(mount_id)
    for mount_id, view in views.items():
        session_fuse.stop(manager.settings, mount_id, *view)
    return ids


def expire(manager: SessionManager, now: datetime | None = None) -> list[str]:
    """Remove sessions idle past their expiry (and old failed rows), unless downloading."""
    now = now or utcnow()
    held = exists().where(DownloadHold.mount_id == RestoreMount.id)
    query = select(RestoreMount).where(
        RestoreMount.status.in_((MOUNTED, FAILED)), RestoreMount.expires_at < now, ~held
    )
    return _take(manager, query, "expired")


def clean_stuck(manager: SessionManager, now: datetime | None = None) -> list[str]:
    """Remove sessions stuck in ``mounting`` or ``unmounting`` longer than stuck_timeout."""
    now = now or utcnow()
    limit = now - timedelta(seconds=manager.settings.stuck_timeout)
    query = select(RestoreMount).where(
        RestoreMount.status.in_((MOUNTING, UNMOUNTING)), RestoreMount.status_changed_at < limit
    )
    return _take(manager, query, "stuck")


def clean_all(manager: SessionManager) -> list[str]:
    """Emergency: remove every session, downloads or not."""
    return _take(manager, select(RestoreMount), "emergency")


def end_repository_sessions(manager: SessionManager, repository: str) -> list[str]:
    """Remove every session of the backups of ``repository`` (``repo remove --force``)."""
    of_repo = (
        select(Backup.id).join(Repository).where(Repository.name == repository).scalar_subquery()
    )
    query = select(RestoreMount).where(RestoreMount.backup_id.in_(of_repo))
    return _take(manager, query, "repository removed")


def reconcile(manager: SessionManager) -> list[str]:
    """Remove what dead processes on this host left: transitions and download holds.

    Download holds of other hosts cannot be checked for liveness: they are dropped once older
    than ``download_hold_timeout``.

    A ``mounted`` session outlives the process that mounted it (any worker reopens it from
    its row); only rows a dead process was changing, and its holds, are left-overs.
    """
    with manager.db.read() as s:
        rows = s.execute(
            select(
                RestoreMount.id,
                RestoreMount.holder_host,
                RestoreMount.holder_pid,
                RestoreMount.holder_start,
            ).where(RestoreMount.status.in_((MOUNTING, UNMOUNTING)))
        ).all()
        holds = s.execute(
            select(
                DownloadHold.id,
                DownloadHold.host,
                DownloadHold.pid,
                DownloadHold.pid_start,
                DownloadHold.started_at,
            )
        ).all()
    sweep_views(manager)
    dead_rows = [r.id for r in rows if is_dead(r.holder_host, r.holder_pid, r.holder_start)]
    too_old = utcnow() - timedelta(seconds=manager.settings.download_hold_timeout)
    dead_holds = [
        h.id
        for h in holds
        if is_dead(h.host, h.pid, h.pid_start)
        or (h.host != manager.me.host and h.started_at < too_old)
    ]
    if dead_holds:
        with manager.db.write() as s:
            s.execute(delete(DownloadHold).where(DownloadHold.id.in_(dead_holds)))
    if not dead_rows:
        return []
    query = select(RestoreMount).where(
        RestoreMount.id.in_(dead_rows), RestoreMount.status.in_((MOUNTING, UNMOUNTING))
    )
    return _take(manager, query, "reconciled")


def expire_audit(manager: SessionManager, now: datetime | None = None) -> int:
    """Delete audit rows older than ``audit_retention_days``, in batches; how many."""
    now = now or utcnow()
    cutoff = now - timedelta(days=manager.settings.audit_retention_days)
    oldest = select(AuditEvent.id).where(AuditEvent.time < cutoff).order_by(AuditEvent.id)
    deleted = 0
    while True:
        with manager.db.write() as s:
            batch = oldest.limit(AUDIT_BATCH)
            result = s.execute(
                delete(AuditEvent).where(AuditEvent.id.in_(batch)),
                execution_options={"synchronize_session": False},
            )
            n = cast(CursorResult[Any], result).rowcount
        deleted += n
        if n < AUDIT_BATCH:
            return deleted


def sweep_views(manager: SessionManager) -> list[str]:
    """Take away this host's FUSE views of sessions that are gone, and the dead endpoints
    of views whose process died (their sessions then have no view); the mount ids."""
    with manager.db.read() as s:
        live = {
            r.id: (r.fuse_host, r.fuse_pid, r.fuse_start)
            for r in s.execute(
                select(
                    RestoreMount.id,
                    RestoreMount.fuse_host,
                    RestoreMount.fuse_pid,
                    RestoreMount.fuse_start,
                ).where(RestoreMount.status.in_(LIVE_STATES))
            ).all()
        }
    swept = session_fuse.sweep(manager.settings, live)
    orphaned = [mount_id for mount_id in swept if mount_id in live]
    if orphaned:
        with manager.db.write() as s:
            s.execute(
                update(RestoreMount)
                .where(RestoreMount.id.in_(orphaned))
                .values(mount_path=None, fuse_host=None, fuse_pid=None, fuse_start=None)
            )
    return swept


def prune_readers(manager: SessionManager) -> int:
    """Close this process's stacks of sessions that ended elsewhere; how many sessions."""
    cached = manager.readers.mount_ids()
    if not cached:
        return 0
    with manager.db.read() as s:
        alive = set(
            s.scalars(
                select(RestoreMount.id).where(
                    RestoreMount.id.in_(cached), RestoreMount.status == MOUNTED
                )
            ).all()
        )
    gone = cached - alive
    for mount_id in gone:
        manager.readers.discard(mount_id)
    return len(gone)


@dataclass
class CleanupStatus:
    running: bool = False
    interval_seconds: float = 0.0
    last_run: datetime | None = None
    next_run: datetime | None = None
    runs: int = 0
    sessions_cleaned: int = 0
    failures: int = 0
    last_error: str | None = None
    #: audit rows past their retention deleted by this worker
    audit_rows_deleted: int = 0
    last_cleaned: list[str] = field(default_factory=list)


class CleanupService(WorkerThread):
    """The background worker: a pass at start, then one every ``cleanup_interval`` seconds."""

    def __init__(self, manager: SessionManager, interval: float | None = None) -> None:
        super().__init__("filerestore-cleanup", stop_wait=10.0)
        self.manager = manager
        self.interval = interval if interval is not None else manager.settings.cleanup_interval
        self._status = CleanupStatus(interval_seconds=self.interval)
        self._lock = threading.Lock()

    def run_once(self) -> list[str]:
        """One pass: reconcile, stuck, expired, then this process's stale stacks."""
        cleaned: list[str] = []
        audit_deleted = 0
        try:
            for step in (reconcile, clean_stuck, expire):
                cleaned += step(self.manager)
            if cleaned:
                self.manager.slots.freed()  # a mount waiting for a slot tries now
            prune_readers(self.manager)
            audit_deleted = expire_audit(self.manager)
        except FileRestoreError as exc:  # the database away for a moment: try next time
            log.warning("cleanup pass failed: %s", exc)
            with self._lock:
                self._status.failures += 1
                self._status.last_error = str(exc)
        with self._lock:
            self._status.runs += 1
            self._status.sessions_cleaned += len(cleaned)
            self._status.audit_rows_deleted += audit_deleted
            self._status.last_cleaned = cleaned
            self._status.last_run = datetime.now(UTC)
            if self._thread is not None:
                self._status.next_run = self._status.last_run + timedelta(seconds=self.interval)
        return cleaned

    def _starting(self) -> None:
        with self._lock:
            self._status.running = True

    def _stopped(self) -> None:
        with self._lock:
            self._status.running = False
            self._status.next_run = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.run_once()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def status(self) -> CleanupStatus:
        with self._lock:
            return CleanupStatus(
                **{**self._status.__dict__, "last_cleaned": list(self._status.last_cleaned)}
            )

"""The service's own restore-job workers: a runner thread in each API worker process.

A runner takes one job at a time. Taking it is one transaction: the oldest queued job (or
a running one whose worker is dead: on this host its process is gone or its pid reused; on
another host it has not reported for ``restore_job_stale_timeout``), locked with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL so two runners never take the same job; on SQLite
only one runner works at a time (a file lock beside the database: the worker holding it
runs jobs, the others wait and take over if it dies). The same transaction takes a
download hold on the job's session, so a job counts against the session's download limit
and keeps the session from expiring; a session at its limit keeps its jobs queued.

A run counts the selection first (once per job: the totals its percentages are of), opens
the target, and copies (:class:`~filerestore.restore.transfer.Transfer`, journal in the
database). Its end is one transaction: the job's final state, the hold removed, and the
job's one audit event (files, bytes, the manifest's entry count and SHA-256). A runner
stopped with its process (a server shutdown) puts its job back in the queue; one killed
leaves it running, for the next runner to resume.
"""

from __future__ import annotations

import fcntl
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session as DbSession

from filerestore.db.models import MOUNTED, DownloadHold, RestoreMount, utcnow
from filerestore.db.models_jobs import (
    CANCELLED,
    COMPLETED,
    FAILED,
    QUEUED,
    RUNNING,
    RestoreJob,
)
from filerestore.errors import FileRestoreError, InvalidParameterError
from filerestore.fs.base import Filesystem
from filerestore.fs.entry import EntryKind
from filerestore.restore.conflicts import Policy
from filerestore.restore.journal import Progress
from filerestore.restore.transfer import Outcome, Transfer, walk_selection
from filerestore.service import audit, jobs, targets
from filerestore.service.job_journal import DbJournal, committed_progress, write_counts
from filerestore.service.liveness import is_dead
from filerestore.service.principal import Principal
from filerestore.service.session import refresh
from filerestore.service.sessions import SessionManager
from filerestore.service.worker_thread import WorkerThread

log = logging.getLogger("filerestore.jobs")

CANDIDATES = 20  # jobs looked at per claim


@dataclass(frozen=True, slots=True)
class Claimed:
    job_id: str
    hold_id: int
    owner: str
    actor: str
    mount_id: str
    backup_id: int
    paths: list[str]
    target: str
    destination: str
    policy: Policy
    counted: bool


class JobRunner(WorkerThread):
    def __init__(self, manager: SessionManager, poll: float | None = None) -> None:
        super().__init__("filerestore-jobs", stop_wait=30.0)
        self.manager = manager
        self.db = manager.db
        self.settings = manager.settings
        self.poll = poll if poll is not None else self.settings.restore_job_poll_interval
        self._lock_file: IO[bytes] | None = None
        self._lock_problem: str | None = None  # the last one logged: said once, not each poll

    # --- the thread ------------------------------------------------------------------------

    def _stopped(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            worked = False
            try:
                if self._may_run():
                    worked = self.run_once() is not None
            except FileRestoreError as exc:  # the database away for a moment
                log.warning("restore job runner: %s", exc)
            except Exception:
                log.exception("restore job runner failed; it goes on")
            if not worked:
                self._stop.wait(self.poll)

    def _may_run(self) -> bool:
        """On SQLite, whether this process holds the one runner's lock (taken when free)."""
        if self.db.dialect != "sqlite" or self._lock_file is not None:
            return True
        path = self.settings.state_dir.expanduser() / "restore-jobs.lock"
        try:
            handle = path.open("ab")
        except OSError as exc:  # the state directory removed or unwritable: the operator's
            said = f"restore job runner: cannot open its lock file {path}: {exc.strerror}"
            if said != self._lock_problem:
                log.error("%s; no restore job runs here until it can", said)
                self._lock_problem = said
            return False
        if self._lock_problem is not None:
            log.warning("restore job runner: its lock file %s can be opened again", path)
            self._lock_problem = None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._lock_file = handle
        return True

    # --- one job ---------------------------------------------------------------------------

    def run_once(self) -> str | None:
        """Take one job and run it to its end (or this runner's stop); its id, or None."""
        claimed = self._claim()
        if claimed is None:
            return None
        self._run(claimed)
        return claimed.job_id

    def _abandoned(self, job: RestoreJob) -> bool:
        if job.worker_host == self.manager.me.host:
            return is_dead(job.worker_host, job.worker_pid, job.worker_start)
        stale = utcnow() - timedelta(seconds=self.settings.restore_job_stale_timeout)
        return job.heartbeat_at is None or job.heartbeat_at < stale

    def _claim(self) -> Claimed | None:
        me = self.manager.me
        now = utcnow()
        with self.db.write() as s:
            found = s.scalars(
                select(RestoreJob)
                .where(RestoreJob.status.in_((QUEUED, RUNNING)))
                .order_by(RestoreJob.created_at)
                .limit(CANDIDATES)
                .with_for_update(skip_locked=True)
            ).all()
            for job in found:
                if job.status == RUNNING and not self._abandoned(job):
                    continue
                dead = (job.worker_host, job.worker_pid, job.worker_start)
                if job.cancel_requested:
                    self._end(s, job, CANCELLED, None, "cancelled")
                    continue
                session = s.get(RestoreMount, job.mount_id, with_for_update=True)
                if session is None or session.status != MOUNTED:
                    reason = f"session {job.mount_id} ended before the job could run"
                    self._end(s, job, FAILED, reason, "failed")
                    continue
                if job.status == RUNNING:  # the dead worker's hold
                    s.execute(
                        delete(DownloadHold).where(
                            DownloadHold.mount_id == job.mount_id,
                            DownloadHold.host == dead[0],
                            DownloadHold.pid == dead[1],
                            DownloadHold.pid_start == dead[2],
                        )
                    )
                holds = s.scalar(
                    select(func.count())
                    .select_from(DownloadHold)
                    .where(DownloadHold.mount_id == job.mount_id)
                )
                if (holds or 0) >= self.settings.max_downloads_per_session:
                    continue  # stays queued until the session has room
                hold = DownloadHold(
                    mount_id=job.mount_id,
                    host=me.host,
                    pid=me.pid,
                    pid_start=me.start,
                    started_at=now,
                )
                s.add(hold)
                s.flush()
                refresh(session, now, self.manager.idle)
                job.status = RUNNING
                job.worker_host, job.worker_pid, job.worker_start = me.host, me.pid, me.start
                job.attempts += 1
                job.started_at = job.started_at or now
                job.run_started_at = job.heartbeat_at = now
                return Claimed(
                    job.id,
                    hold.id,
                    job.owner,
                    job.actor,
                    job.mount_id,
                    job.backup_id,
                    json.loads(job.paths),
                    job.target,
                    job.destination,
                    Policy(job.policy),
                    job.total_entries is not None,
                )
        return None

    def _run(self, claimed: Claimed) -> None:
        journal = DbJournal(self.db, claimed.job_id, self.manager.me, self._stop.is_set)
        who = Principal(claimed.owner, claimed.actor, admin=True)
        try:
            with self.manager.checkout(claimed.mount_id, who) as checkout:
                fs = checkout.stack.fs
                if not claimed.counted:
                    self._count(claimed, fs, journal)
                progress = committed_progress(self.db, claimed.job_id)
                self._run_started(claimed, progress)
                target = targets.open_target(self.settings, claimed.target, claimed.destination)
                try:
                    outcome = Transfer(
                        fs, claimed.paths, target, claimed.policy, journal, progress
                    ).run()
                finally:
                    target.close()
        except _Stopped:
            self._finish(claimed, Outcome(True, Progress()), None)
        except FileRestoreError as exc:
            self._finish(claimed, None, f"{exc.code}: {exc}")
        except Exception as exc:
            log.exception("restore job %s failed", claimed.job_id)
            self._finish(claimed, None, f"internal error: {type(exc).__name__}")
        else:
            self._finish(claimed, outcome, None)

    def _count(self, claimed: Claimed, fs: Filesystem[Any], journal: DbJournal) -> None:
        """The totals the job's percentages are of (the same walk the copy makes)."""
        limit = self.settings.restore_job_max_entries
        entries = files = size = 0
        beat = time.monotonic()
        for item in walk_selection(fs, claimed.paths):
            entries += 1
            if item.entry.kind in (EntryKind.FILE, EntryKind.SYMLINK):
                files += 1  # as files_done counts them: what is not a directory, nor OTHER
                size += item.entry.size
            if entries > limit:
                raise InvalidParameterError(
                    f"the selection holds more than {limit} entries "
                    "(the restore_job_max_entries setting)"
                )
            if time.monotonic() - beat > 5:
                beat = time.monotonic()
                if journal.heartbeat(Progress(current_path="(counting)")):
                    raise _Stopped
        with self.db.write() as s:
            row = s.get(RestoreJob, claimed.job_id, with_for_update=True)
            if row is not None:
                row.total_entries, row.total_files, row.total_bytes = entries, files, size

    def _run_started(self, claimed: Claimed, progress: Progress) -> None:
        with self.db.write() as s:
            row = s.get(RestoreJob, claimed.job_id, with_for_update=True)
            if row is not None:
                row.run_files, row.run_bytes = progress.files, progress.bytes
                write_counts(row, progress)
                row.run_started_at = utcnow()

    def _finish(self, claimed: Claimed, outcome: Outcome | None, error: str | None) -> None:
        """The run's end: the job's state, its hold, and at the job's end its audit event."""
        me = self.manager.me
        count, digest = jobs.manifest_digest(self.db, claimed.job_id)
        with self.db.write() as s:
            s.execute(delete(DownloadHold).where(DownloadHold.id == claimed.hold_id))
            job = s.get(RestoreJob, claimed.job_id, with_for_update=True)
            ours = job is not None and (job.worker_host, job.worker_pid, job.worker_start) == (
                me.host,
                me.pid,
                me.start,
            )
            if job is None or not ours or job.status != RUNNING:
                return  # taken over by another runner, which ends it
            session = s.get(RestoreMount, claimed.mount_id, with_for_update=True)
            if session is not None and session.status == MOUNTED:
                refresh(session, utcnow(), self.manager.idle)
            if outcome is not None:
                write_counts(job, outcome.progress)
                job.unkept = "\n".join(outcome.unkept) or None
            job.manifest_sha256 = digest
            if outcome is not None and outcome.cancelled and not job.cancel_requested:
                # this runner is stopping (its process shuts down): another one resumes
                job.status = QUEUED
                job.worker_host = job.worker_pid = job.worker_start = None
                return
            if error is not None:
                self._end(s, job, FAILED, error, "failed", count)
            elif outcome is not None and outcome.cancelled:
                self._end(s, job, CANCELLED, None, "cancelled", count)
            else:
                self._end(s, job, COMPLETED, None, "partial" if job.failed else "ok", count)

    def _end(
        self,
        s: DbSession,
        job: RestoreJob,
        status: str,
        error: str | None,
        outcome: str,
        entries: int | None = None,
    ) -> None:
        job.status = status
        job.error = error
        job.finished_at = utcnow()
        job.current_path = None
        job.worker_host = job.worker_pid = job.worker_start = None
        manifest = "no manifest" if entries is None else f"manifest of {entries} entries"
        if job.manifest_sha256 and entries is not None:
            manifest += f", sha256 {job.manifest_sha256}"
        detail = (
            f"job {job.id} to {job.target}:{job.destination or '.'} ({job.policy}): "
            f"{job.files_done} files, {job.dirs_done} directories, {job.bytes_done} bytes, "
            f"{job.skipped} skipped, {job.failed} failed; {manifest}"
        )
        if error:
            detail += f"; {error}"
        audit.add(
            s,
            audit.Event(
                job.actor,
                "restore_job",
                outcome,
                backup_id=job.backup_id,
                mount_id=job.mount_id,
                path=", ".join(json.loads(job.paths))[:4000],
                bytes=job.bytes_done,
                detail=detail,
            ),
        )


class _Stopped(Exception):
    """The runner was stopped while counting."""

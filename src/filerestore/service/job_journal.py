"""A restore job's journal in the database: its manifest rows and its progress.

Each call is one transaction. ``intend`` and ``commit`` replace the batch's rows (delete,
then insert: a batch is at most a few hundred rows); ``commit`` and ``heartbeat`` also write
the job's progress and heartbeat, and read whether the job should stop: cancelled by a
user, or no longer this runner's (another runner took it over, believing this one dead).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from filerestore.db.engine import Database
from filerestore.db.models import utcnow
from filerestore.db.models_jobs import RUNNING, RestoreJob, RestoreJobFile
from filerestore.restore.journal import Progress, Record, Status
from filerestore.service.liveness import ProcessIdentity

_INSERT = (
    "INSERT INTO restore_job_files (job_id, seq, path, kind, status, written, size, sha256, "
    "note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_PG = _INSERT.replace("?", "%s")


class DbJournal:
    def __init__(
        self,
        db: Database,
        job_id: str,
        me: ProcessIdentity,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.db = db
        self.job_id = job_id
        self.me = me
        self._stopping = stopping

    def previous(self, first: int, last: int) -> dict[int, Record]:
        with self.db.read() as s:
            rows = s.scalars(
                select(RestoreJobFile).where(
                    RestoreJobFile.job_id == self.job_id,
                    RestoreJobFile.seq >= first,
                    RestoreJobFile.seq <= last,
                )
            ).all()
            return {r.seq: _record(r) for r in rows}

    def intend(self, records: list[Record]) -> None:
        with self.db.write() as s:
            self._replace(s, records)

    def commit(self, records: list[Record], progress: Progress) -> bool:
        with self.db.write() as s:
            self._replace(s, records)
            return self._update(s, progress)

    def heartbeat(self, progress: Progress) -> bool:
        with self.db.write() as s:
            return self._update(s, progress)

    def _replace(self, s: Session, records: list[Record]) -> None:
        if not records:
            return
        s.execute(
            delete(RestoreJobFile).where(
                RestoreJobFile.job_id == self.job_id,
                RestoreJobFile.seq.in_([r.seq for r in records]),
            )
        )
        # one executemany on the driver's connection (in the session's transaction): a batch
        # is up to a thousand rows, twice (intended, then final), and SQLAlchemy's per-row
        # parameter processing cost more than the rows themselves (bench/restore_jobs.py)
        job = self.job_id
        rows = [
            (
                job,
                r.seq,
                r.path,
                r.kind,
                r.status.value,
                r.written,
                r.size,
                r.sha256,
                None if r.note is None else r.note[:2000],
            )
            for r in records
        ]
        raw = s.connection().connection.driver_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            cursor.executemany(
                _INSERT_PG if s.get_bind().dialect.name == "postgresql" else _INSERT, rows
            )
        finally:
            cursor.close()

    def _update(self, s: Session, progress: Progress) -> bool:
        """Write the progress; True when this run should stop."""
        row = s.get(RestoreJob, self.job_id, with_for_update=True)
        me = self.me
        ours = (
            row is not None
            and row.status == RUNNING
            and (row.worker_host, row.worker_pid, row.worker_start) == (me.host, me.pid, me.start)
        )
        if not ours or row is None:
            return True
        write_counts(row, progress)
        row.current_path = progress.current_path
        row.heartbeat_at = utcnow()
        return row.cancel_requested or self._stopping()


def write_counts(row: RestoreJob, progress: Progress) -> None:
    """Put the counts of ``progress`` in the job's row (not its current path)."""
    row.files_done, row.dirs_done, row.bytes_done = progress.files, progress.dirs, progress.bytes
    row.skipped, row.failed = progress.skipped, progress.failed


def _record(row: RestoreJobFile) -> Record:
    return Record(
        seq=row.seq,
        path=row.path,
        kind=row.kind,
        status=Status(row.status),
        written=row.written,
        size=row.size,
        sha256=row.sha256,
        note=row.note,
    )


def committed_progress(db: Database, job_id: str) -> Progress:
    """The counts of what the manifest holds as finished (where a resumed run starts)."""
    progress = Progress()
    with db.read() as s:
        rows = s.execute(
            select(
                RestoreJobFile.status,
                RestoreJobFile.kind,
                func.count(),
                func.sum(RestoreJobFile.size),
            )
            .where(RestoreJobFile.job_id == job_id)
            .group_by(RestoreJobFile.status, RestoreJobFile.kind)
        ).all()
    for status, kind, count, size in rows:
        if status == Status.DONE:
            if kind == "dir":
                progress.dirs += count
            else:
                progress.files += count
                progress.bytes += int(size or 0)
        elif status == Status.SKIPPED:
            progress.skipped += count
        elif status == Status.FAILED:
            progress.failed += count
    return progress

"""Restore jobs as the adapters see them: create, list, get (with progress), cancel, and the
manifest.

A job belongs to the principal that created it (its ``owner``); another principal gets
JobNotFoundError for it, as for an id that never existed; an admin sees every job. A job is
created ``queued`` against a mounted session the caller may see, a configured target and a
destination inside it (refused by name when it would leave the target); the service's
runners take it from there (:mod:`~filerestore.service.job_runner`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from filerestore.db.engine import Database
from filerestore.db.models import utcnow
from filerestore.db.models_jobs import (
    ACTIVE_STATES,
    CANCELLED,
    QUEUED,
    RUNNING,
    RestoreJob,
    RestoreJobFile,
)
from filerestore.errors import InvalidParameterError, JobNotFoundError, JobStateError
from filerestore.records import same_fields
from filerestore.restore.conflicts import Policy
from filerestore.restore.names import printable
from filerestore.service import targets
from filerestore.service.principal import Principal
from filerestore.service.session import require_mounted, visible_row
from filerestore.settings import Settings

MAX_PATHS = 1000
MAX_JOB_ID = 64


@dataclass(frozen=True, slots=True)
class JobProgress:
    """Counts so far and the rates of the current run; ``percent`` of the bytes (of the
    entries when the selection has no bytes) counted before the first run. "Files" are
    regular files and symbolic links; devices, FIFOs and sockets are skipped."""

    files_done: int
    dirs_done: int
    bytes_done: int
    skipped: int
    failed: int
    current_path: str | None
    total_entries: int | None
    total_files: int | None
    total_bytes: int | None
    percent: float | None
    files_per_second: float | None
    mb_per_second: float | None


@dataclass(frozen=True, slots=True)
class Job:
    """A restore job."""

    job_id: str
    status: str
    owner: str
    mount_id: str
    backup_id: int
    paths: list[str]
    target: str
    destination: str
    policy: str
    cancel_requested: bool
    error: str | None
    #: metadata the target could not keep
    unkept: list[str]
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: JobProgress
    manifest_sha256: str | None

    @classmethod
    def of(cls, row: RestoreJob, now: datetime | None = None) -> Job:
        given = {
            "job_id": row.id,
            "paths": [printable(p) for p in json.loads(row.paths)],
            "unkept": row.unkept.splitlines() if row.unkept else [],
            "progress": _progress(row, now or utcnow()),
        }
        return cls(**same_fields(cls, row, **given))


def _progress(row: RestoreJob, now: datetime) -> JobProgress:
    percent = None
    if row.total_bytes:
        percent = min(100.0, 100.0 * row.bytes_done / row.total_bytes)
    elif row.total_entries:
        done = row.files_done + row.dirs_done + row.skipped + row.failed
        percent = min(100.0, 100.0 * done / row.total_entries)
    files_rate = bytes_rate = None
    if row.run_started_at is not None:
        end = row.finished_at if row.status not in ACTIVE_STATES and row.finished_at else now
        seconds = (end - row.run_started_at).total_seconds()
        if seconds > 0:
            files_rate = round(max(0, row.files_done - row.run_files) / seconds, 1)
            bytes_rate = round(max(0, row.bytes_done - row.run_bytes) / seconds / 1e6, 2)
    rates = {"files_per_second": files_rate, "mb_per_second": bytes_rate}
    rounded = None if percent is None else round(percent, 1)
    return JobProgress(**same_fields(JobProgress, row, percent=rounded, **rates))


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One entry of a job's manifest."""

    seq: int
    path: str
    kind: str
    status: str
    written: str | None
    size: int
    sha256: str | None
    note: str | None


def _visible(s: DbSession, job_id: str, who: Principal, lock: bool = False) -> RestoreJob:
    row = None if len(job_id) > MAX_JOB_ID else s.get(RestoreJob, job_id, with_for_update=lock)
    if row is None or not who.may_see(row.owner):
        shown = job_id if len(job_id) <= MAX_JOB_ID else job_id[:MAX_JOB_ID] + "..."
        raise JobNotFoundError(f"no restore job with id {shown}")
    return row


def create_job(
    db: Database,
    settings: Settings,
    who: Principal,
    mount_id: str,
    paths: list[str],
    target: str,
    destination: str = "",
    policy: str = Policy.SKIP,
) -> Job:
    """Queue a job (see the module docstring); refused by name before anything is written."""
    if not paths or len(paths) > MAX_PATHS:
        raise InvalidParameterError(f"a job restores 1 to {MAX_PATHS} paths")
    if any("\x00" in p or not p for p in paths):
        raise InvalidParameterError("a path is empty or holds a NUL byte")
    try:
        chosen = Policy(policy)
    except ValueError:
        choices = ", ".join(p.value for p in Policy)
        raise InvalidParameterError(f"unknown conflict policy {policy!r} ({choices})") from None
    targets.check_destination(settings, target, destination)
    now = utcnow()
    with db.write() as s:
        session = visible_row(s, mount_id, who)
        require_mounted(session)
        row = RestoreJob(
            id=str(uuid.uuid4()),
            owner=who.owner[:255],
            actor=who.actor[:255],
            mount_id=session.id,
            backup_id=session.backup_id,
            paths=json.dumps(paths),
            target=target,
            destination=destination,
            policy=chosen.value,
            status=QUEUED,
            cancel_requested=False,
            created_at=now,
            attempts=0,
            run_files=0,
            run_bytes=0,
            files_done=0,
            dirs_done=0,
            bytes_done=0,
            skipped=0,
            failed=0,
        )
        s.add(row)
        s.flush()
        return Job.of(row, now)


def list_jobs(db: Database, who: Principal) -> list[Job]:
    query = select(RestoreJob).order_by(RestoreJob.created_at)
    if not who.admin:
        query = query.where(RestoreJob.owner == who.owner)
    now = utcnow()
    with db.read() as s:
        return [Job.of(r, now) for r in s.scalars(query)]


def get_job(db: Database, who: Principal, job_id: str) -> Job:
    with db.read() as s:
        return Job.of(_visible(s, job_id, who))


def cancel_job(db: Database, who: Principal, job_id: str) -> Job:
    """A queued job is cancelled at once; a running one at its runner's next batch (within
    about a second)."""
    now = utcnow()
    with db.write() as s:
        row = _visible(s, job_id, who, lock=True)
        if row.status not in ACTIVE_STATES:
            raise JobStateError(f"restore job {job_id} is {row.status}: nothing to cancel")
        row.cancel_requested = True
        if row.status == QUEUED:
            row.status = CANCELLED
            row.finished_at = now
        return Job.of(row, now)


def manifest(db: Database, who: Principal, job_id: str) -> Iterator[ManifestEntry]:
    """The job's manifest in walk order (read in pages, never whole)."""
    with db.read() as s:
        _visible(s, job_id, who)
    yield from manifest_rows(db, job_id)


def manifest_rows(db: Database, job_id: str, page: int = 5000) -> Iterator[ManifestEntry]:
    after = -1
    while True:
        f = RestoreJobFile
        with db.read() as s:
            # plain rows, no ORM objects: the audit's digest reads every row of a job
            rows = s.execute(
                select(f.seq, f.path, f.kind, f.status, f.written, f.size, f.sha256, f.note)
                .where(f.job_id == job_id, f.seq > after)
                .order_by(f.seq)
                .limit(page)
            ).all()
        for seq, path, kind, status, raw, size, sha256, note in rows:
            written = None if raw is None else raw.decode("utf-8", "backslashreplace")
            yield ManifestEntry(seq, path, kind, status, written, size, sha256, note)
        if len(rows) < page:
            return
        after = rows[-1][0]


def manifest_line(entry: ManifestEntry) -> str:
    """One line of the manifest's text: what its SHA-256 (in the audit event) is taken of."""
    fields = (entry.seq, entry.status, entry.kind, entry.size, entry.sha256 or "-")
    return "\t".join(str(f) for f in fields) + f"\t{entry.written or '-'}\t{entry.path}\n"


def manifest_digest(db: Database, job_id: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    count = 0
    for entry in manifest_rows(db, job_id):
        digest.update(manifest_line(entry).encode("utf-8"))
        count += 1
    return count, digest.hexdigest()


__all__ = [
    "RUNNING",
    "Job",
    "JobProgress",
    "ManifestEntry",
    "cancel_job",
    "create_job",
    "get_job",
    "list_jobs",
    "manifest",
]

"""The restore_jobs and restore_job_files tables: restore jobs and their manifests.

A job row holds what to restore (a session, guest paths, a target by name, a destination
inside it, a conflict policy), its state, who runs it (host, pid and the pid's start time,
as sessions in transition do) and its progress. Its manifest is one row per entry of the
selection, numbered in walk order (``seq``): what was written where, and for a file its
size and SHA-256 (restore/journal.py). The manifest is bounded by the job's entry limit
(setting ``restore_job_max_entries``) and deleted with its job. Created by migration 0003.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from filerestore.db.models import Base, UTCDateTime, utcnow

# Job states
QUEUED = "queued"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
#: states a job can still leave
ACTIVE_STATES = (QUEUED, RUNNING)


class RestoreJob(Base):
    __tablename__ = "restore_jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255), index=True)
    #: the creator as the audit trail names it
    actor: Mapped[str] = mapped_column(String(255))
    # plain columns: a job's record outlives its session
    mount_id: Mapped[str] = mapped_column(String(36))
    backup_id: Mapped[int] = mapped_column(Integer)
    paths: Mapped[str] = mapped_column(Text)  # a JSON array of guest paths
    target: Mapped[str] = mapped_column(String(200))
    destination: Mapped[str] = mapped_column(Text)
    policy: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: metadata the target could not keep, one line each
    unkept: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # the run in progress: who, since when, from which counts (for its rates), last sign
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    worker_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    worker_start: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    run_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    run_files: Mapped[int] = mapped_column(BigInteger, default=0)
    run_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # totals from the walk before the first run (None until counted)
    total_entries: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    total_files: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    total_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # progress
    files_done: Mapped[int] = mapped_column(BigInteger, default=0)
    dirs_done: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    skipped: Mapped[int] = mapped_column(BigInteger, default=0)
    failed: Mapped[int] = mapped_column(BigInteger, default=0)
    current_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: SHA-256 of the manifest's text (jobs.manifest_text), set when the job ends
    manifest_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


class RestoreJobFile(Base):
    """One entry of a job's manifest."""

    __tablename__ = "restore_job_files"

    job_id: Mapped[str] = mapped_column(
        ForeignKey("restore_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    path: Mapped[str] = mapped_column(Text)  # printable: names not UTF-8 as \xNN
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    written: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # exact bytes
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)

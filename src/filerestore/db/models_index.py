"""The file index: every entry of every indexed backup, stored once per version, and its jobs.

Created by migration 0003. The shape, and why (measurements in bench/index.py):

- ``index_lines``: one disk's chain of backups (a full backup and the incrementals whose
  parent links lead to it). Its backups are numbered 1, 2, 3 ... in chain order
  (``index_backups.seq``), and every version is valid over a range of those numbers, so an
  entry unchanged from one backup to the next costs nothing more: an incremental writes rows
  only for what changed.
- ``index_volumes``: a filesystem of a line (one per volume id, ``p1``, ``lvm/vg/lv``).
- ``index_names``: every distinct entry name, stored once over all backups and disks; the
  name search runs on it (SQLite: the FTS5 trigram table ``index_names_fts``, written with
  each name by filerestore.index.store; PostgreSQL: a pg_trgm GIN index with a pending
  list of 64 kB, merged every few hundred names: migration 0006). Ids are given in order:
  the trigram index stores each posting as the difference from the one before (a 63-bit
  hash as the id made that index four times larger).
- ``index_dirs``: a volume's directories as (parent, name) pairs numbered per volume
  (``dir_no``; the root is 1, its own parent). Only directories: a file is known by its
  directory and name alone, so most entries need no row here.
- ``index_versions``: one row per version of an entry: ``first_seq`` .. ``last_seq`` (NULL:
  still present in the line's newest indexed backup). Keyed (volume, parent dir, name,
  first_seq), so a directory's entries are one range of the primary key and the history of a
  path is a smaller one; the root's own versions sit under parent 0. The name index finds the
  versions of the names a search matched. Partial indexes serve only the rows that
  need them: versions that appeared after a line's first backup (``first_seq > 1``, for
  diffs), versions that ended (for diffs), and live versions by inode (for an incremental
  that knows which inodes changed). ``ctime``/``atime``/``btime`` are stored as differences
  from ``mtime``, which are small or zero for most files (a varint of 0-3 bytes instead of
  8). ``atime`` is the access time when the version was first seen: reading a file does not
  make a new version.
- ``index_jobs``: the index job queue (see filerestore.index.jobs).

No foreign keys from the two large tables to the names, nor between them (a check per
inserted row into a large table costs a lookup there); both refer to their volume, whose
removal (with its line, or its repository) removes them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from filerestore.db.models import Base, UTCDateTime, utcnow

#: job states
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ACTIVE_STATES = (QUEUED, RUNNING)
#: names of SQLite's FTS5 table and its shadow tables (not models: the migration makes them)
FTS_TABLE = "index_names_fts"


def is_fts_table(name: str) -> bool:
    return name == FTS_TABLE or name.startswith(FTS_TABLE + "_")


def include_object_for(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic's ``include_object`` filter: the FTS5 tables (made by the migration, not
    models) and objects of another database (``info["dialects"]``) are left out."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table" and name is not None and is_fts_table(name):
            return False
        dialects = getattr(obj, "info", {}).get("dialects")
        return dialects is None or dialect in dialects

    return include


class IndexLine(Base):
    __tablename__ = "index_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    #: the highest seq ever given in the line: only a backup whose parent holds it may
    #: continue the line (the live versions are that backup's entries)
    head_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IndexBackup(Base):
    """A backup's place in its line, and its index pass (``complete`` when it is searchable)."""

    __tablename__ = "index_backups"
    __table_args__ = (UniqueConstraint("line_id", "seq", name="uq_index_backups_line_seq"),)

    backup_id: Mapped[int] = mapped_column(
        ForeignKey("backups.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    line_id: Mapped[int] = mapped_column(ForeignKey("index_lines.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    complete: Mapped[bool] = mapped_column(Boolean, default=False)
    #: volumes that could not be read in this backup, and why (one per line)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: how it was indexed: full, walk-diff (whole walk compared), changed-blocks (overlay)
    method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    entries: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_added: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_closed: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class IndexVolume(Base):
    __tablename__ = "index_volumes"
    __table_args__ = (UniqueConstraint("line_id", "volume", name="uq_index_volumes_line_volume"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("index_lines.id", ondelete="CASCADE"))
    volume: Mapped[str] = mapped_column(String(255))
    fs_kind: Mapped[str] = mapped_column(String(16))
    #: dir numbers below this one belong to completed passes; a resumed pass drops the rest
    next_dir_no: Mapped[int] = mapped_column(BigInteger, default=1)


class IndexName(Base):
    __tablename__ = "index_names"
    __table_args__ = (
        Index(
            "ix_index_names_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
            # a pending list of 64 kB: migration 0006 says why
            postgresql_with={"fastupdate": "on", "gin_pending_list_limit": 64},
            info={"dialects": ("postgresql",)},
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)


class IndexDir(Base):
    __tablename__ = "index_dirs"
    __table_args__ = (
        Index("ix_index_dirs_parent", "volume_id", "parent_no", "name_id", unique=True),
        {"sqlite_with_rowid": False},
    )

    volume_id: Mapped[int] = mapped_column(
        ForeignKey("index_volumes.id", ondelete="CASCADE"), primary_key=True
    )
    dir_no: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    #: the root's parent is itself (dir 1), so the unique (volume, parent, name) holds for it
    parent_no: Mapped[int] = mapped_column(BigInteger)
    name_id: Mapped[int] = mapped_column(BigInteger)


class IndexVersion(Base):
    __tablename__ = "index_versions"
    __table_args__ = (
        Index("ix_index_versions_name", "name_id"),
        Index(
            "ix_index_versions_started",
            "volume_id",
            "first_seq",
            sqlite_where=text("first_seq > 1"),
            postgresql_where=text("first_seq > 1"),
        ),
        Index(
            "ix_index_versions_ended",
            "volume_id",
            "last_seq",
            sqlite_where=text("last_seq IS NOT NULL"),
            postgresql_where=text("last_seq IS NOT NULL"),
        ),
        Index(
            "ix_index_versions_live_inode",
            "volume_id",
            "inode",
            sqlite_where=text("last_seq IS NULL"),
            postgresql_where=text("last_seq IS NULL"),
        ),
        {"sqlite_with_rowid": False},
    )

    volume_id: Mapped[int] = mapped_column(
        ForeignKey("index_volumes.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    parent_no: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    first_seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[int] = mapped_column(SmallInteger)  # filerestore.index.rows.KIND_CODES
    size: Mapped[int] = mapped_column(BigInteger)
    mode: Mapped[int | None] = mapped_column(Integer, nullable=True)
    uid: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gid: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    mtime_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ctime_delta: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    atime_delta: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    btime_delta: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    inode: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    nlink: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    target: Mapped[str | None] = mapped_column(Text, nullable=True)
    data_location: Mapped[str | None] = mapped_column(String(16), nullable=True)
    #: BLAKE2b-128 of the contents, where known (filerestore.index.hashing)
    hash: Mapped[bytes | None] = mapped_column(LargeBinary(16), nullable=True)


class IndexJob(Base):
    """An index job: queued, running (leased by a runner), done, failed (``reason``) or
    cancelled. At most one queued or running job per backup."""

    __tablename__ = "index_jobs"
    __table_args__ = (
        Index(
            "ix_index_jobs_active_backup",
            "backup_id",
            unique=True,
            sqlite_where=text("state IN ('queued', 'running')"),
            postgresql_where=text("state IN ('queued', 'running')"),
        ),
        Index("ix_index_jobs_state_next", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: NULL once the backup is removed from the catalog: the job stays, failed, to say why
    backup_id: Mapped[int | None] = mapped_column(
        ForeignKey("backups.id", ondelete="SET NULL"), nullable=True
    )
    state: Mapped[str] = mapped_column(String(16), default=QUEUED)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    requested_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: the runner holding the job ("host:pid:token") and until when its lease runs
    runner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    entries: Mapped[int] = mapped_column(BigInteger, default=0)
    entries_per_s: Mapped[float] = mapped_column(Float, default=0.0)
    percent: Mapped[float | None] = mapped_column(Float, nullable=True)

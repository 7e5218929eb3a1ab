"""The tables: repositories, backups, restore_mounts (sessions), download_holds, audit_events.

Times are stored as UTC and read back timezone-aware on every database (SQLite keeps no zone).
The schema is created and changed only by the Alembic migrations in ``db/migrations``; these
classes mirror it (a test compares them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Session states (the seed's names).
MOUNTING = "mounting"
MOUNTED = "mounted"
UNMOUNTING = "unmounting"
FAILED = "failed"
#: states that hold one of the max_sessions slots
LIVE_STATES = (MOUNTING, MOUNTED, UNMOUNTING)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC, returned as an aware UTC datetime."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Repository(Base):
    __tablename__ = "repositories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # local, nfs, cifs, s3
    # a host directory; for s3 the repository's URL, s3://bucket/prefix/
    root_path: Mapped[str] = mapped_column(Text)
    # what the host mounted at root_path when the repository was added (nfs/cifs): "srv:/export"
    mount_source: Mapped[str | None] = mapped_column(Text, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # s3 only (migration 0003_s3): how to reach the bucket; credentials come from the
    # settings or the environment of each host, never from here
    endpoint: Mapped[str | None] = mapped_column(Text, nullable=True)
    region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    path_style: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    verify_tls: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class Backup(Base):
    __tablename__ = "backups"
    __table_args__ = (UniqueConstraint("repository_id", "path", name="uq_backups_repository_path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(Text)  # relative to the repository root
    vm_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    disk_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))  # full, incremental
    parent_backup_id: Mapped[int | None] = mapped_column(
        ForeignKey("backups.id", ondelete="SET NULL"), nullable=True
    )
    virtual_size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RestoreMount(Base):
    __tablename__ = "restore_mounts"
    __table_args__ = (Index("ix_restore_mounts_backup_volume", "backup_id", "volume"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    backup_id: Mapped[int] = mapped_column(ForeignKey("backups.id", ondelete="CASCADE"))
    volume: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # True when the volume was chosen automatically (the image holds one filesystem), so a
    # later mount without a volume may reuse this session.
    volume_auto: Mapped[bool] = mapped_column(Boolean, default=False)
    mount_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    nbd_device: Mapped[str | None] = mapped_column(String(64), nullable=True)
    filesystem_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    mount_mode: Mapped[str] = mapped_column(String(8), default="ro")
    status: Mapped[str] = mapped_column(String(16), index=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_accessed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # the process running a transition (mounting, unmounting): lets start-up reconciliation
    # tell a row left by a dead process from one still in progress
    holder_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    holder_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    holder_start: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # the process serving the session's FUSE view at mount_path (migration 0003)
    fuse_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    fuse_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fuse_start: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class DownloadHold(Base):
    """A download in progress: keeps its session from expiring, in every process."""

    __tablename__ = "download_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mount_id: Mapped[str] = mapped_column(
        ForeignKey("restore_mounts.id", ondelete="CASCADE"), index=True
    )
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    pid_start: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64), index=True)
    # plain columns, not foreign keys: the trail outlives the backups and sessions it names
    backup_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    mount_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    path: Mapped[str | None] = mapped_column(Text, nullable=True)
    bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)

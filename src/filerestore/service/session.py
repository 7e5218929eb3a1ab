"""The session record every adapter sees, and the rules a session row must pass to be used."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session as DbSession

from filerestore.db.models import FAILED, MOUNTED, RestoreMount
from filerestore.errors import MountNotFoundError, MountStateError
from filerestore.service.principal import Principal

MAX_MOUNT_ID = 64  # longer ids are never ours: refused before any lookup


@dataclass(frozen=True, slots=True)
class Session:
    """A restore session ("mount"). ``mount_path`` and ``nbd_device`` keep the seed API's
    meaning (a FUSE view, a kernel NBD device) and are None while neither serves it."""

    mount_id: str
    backup_id: int
    volume: str | None
    filesystem_type: str | None
    status: str
    mount_path: str | None
    nbd_device: str | None
    mount_mode: str
    error: str | None
    owner: str
    created_at: datetime
    last_accessed_at: datetime
    expires_at: datetime
    #: downloads of this session in progress
    downloads: int = 0

    @classmethod
    def of(cls, row: RestoreMount, downloads: int = 0) -> Session:
        return cls(
            mount_id=row.id,
            backup_id=row.backup_id,
            volume=row.volume,
            filesystem_type=row.filesystem_type,
            status=row.status,
            mount_path=row.mount_path,
            nbd_device=row.nbd_device,
            mount_mode=row.mount_mode,
            error=row.error,
            owner=row.owner,
            created_at=row.created_at,
            last_accessed_at=row.last_accessed_at,
            expires_at=row.expires_at,
            downloads=downloads,
        )


def not_found(mount_id: str) -> MountNotFoundError:
    shown = mount_id if len(mount_id) <= MAX_MOUNT_ID else mount_id[:MAX_MOUNT_ID] + "..."
    return MountNotFoundError(f"no session with id {shown} (expired or unmounted?)")


def visible_row(s: DbSession, mount_id: str, who: Principal, lock: bool = False) -> RestoreMount:
    """The session's row if ``who`` may see it; else MountNotFoundError, as for no row."""
    row = (
        None
        if len(mount_id) > MAX_MOUNT_ID
        else s.get(RestoreMount, mount_id, with_for_update=lock)
    )
    if row is None or not who.may_see(row.owner):
        raise not_found(mount_id)
    return row


def require_mounted(row: RestoreMount) -> None:
    if row.status == FAILED:
        raise MountStateError(f"session {row.id} failed: {row.error}")
    if row.status != MOUNTED:
        raise MountStateError(f"session {row.id} is {row.status}, not mounted")


def refresh(row: RestoreMount, now: datetime, idle: timedelta) -> None:
    row.last_accessed_at = now
    row.expires_at = now + idle


def limit_message(limit: int, holders: Sequence[Session]) -> str:
    listed = "; ".join(
        f"{h.mount_id} (backup {h.backup_id}, volume {h.volume or '-'}, {h.status}, "
        f"owner {h.owner or '-'}, expires {h.expires_at:%Y-%m-%d %H:%M:%S}Z)"
        for h in holders
    )
    return f"session limit reached ({len(holders)} of {limit} in use): {listed}"

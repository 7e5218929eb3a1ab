"""The session record every adapter sees, and the rules a session row must pass to be used."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from filerestore.db.models import FAILED, MOUNTED, RestoreMount
from filerestore.db.models_auth import ApiToken
from filerestore.errors import MountNotFoundError, MountStateError
from filerestore.records import same_fields
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
    #: the owner's name for people: its API token's name (None for the host's operator,
    #: whose sessions have no token, and where a listing did not look it up)
    owner_name: str | None = None

    @classmethod
    def of(cls, row: RestoreMount, downloads: int = 0, owner_name: str | None = None) -> Session:
        given = {"mount_id": row.id, "downloads": downloads, "owner_name": owner_name}
        return cls(**same_fields(cls, row, **given))


TOKEN_OWNER = "token:"  # noqa: S105 - Principal.token's owner: "token:<id>"


def owner_names(s: DbSession, owners: Iterable[str]) -> dict[str, str]:
    """The token name of each token owner among ``owners`` (one query); a revoked token
    keeps its name, a deleted one has none."""
    ids = {
        int(o.removeprefix(TOKEN_OWNER))
        for o in owners
        if o.startswith(TOKEN_OWNER) and o.removeprefix(TOKEN_OWNER).isdigit()
    }
    if not ids:
        return {}
    found = s.execute(select(ApiToken.id, ApiToken.name).where(ApiToken.id.in_(ids))).all()
    return {f"{TOKEN_OWNER}{token_id}": name for token_id, name in found}


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


def limit_message(limit: int, in_use: int, shown: Sequence[Session]) -> str:
    """The session-limit refusal: how many of ``limit`` are in use, and ``shown``, the
    sessions the caller may see (its own; an admin's: all)."""
    listed = "; ".join(
        f"{h.mount_id} (backup {h.backup_id}, volume {h.volume or '-'}, {h.status}, "
        f"owner {h.owner or '-'}, expires {h.expires_at:%Y-%m-%d %H:%M:%S}Z)"
        for h in shown
    )
    yours = f"; yours: {listed}" if listed else "; none of them is yours"
    return f"session limit reached ({in_use} of {limit} in use){yours}"

"""Session slots held for work outside a user's session (an index job's pass).

A held slot is a ``mounted`` row without a volume, taken as a mount takes its row (the same
transaction under :data:`~filerestore.service.sessions.SLOT_LOCK`, the same limit and owner
quota), so mounts and such work together never exceed ``max_sessions``. It expires unless
kept (:func:`keep_slot`); the cleanup removes it once expired, so a holder that died gives
its slot back. :class:`~filerestore.service.index_slots.SessionSlots` is the one holder.
"""

from __future__ import annotations

from datetime import timedelta

from filerestore.db.models import MOUNTED, RestoreMount, utcnow
from filerestore.service.principal import Principal
from filerestore.service.sessions import SLOT_LOCK, SessionManager


def hold_slot(manager: SessionManager, backup_id: int, who: Principal, hold: timedelta) -> str:
    """One of the host's session slots of ``manager`` for work on a backup, expiring
    ``hold`` from now unless kept (:func:`keep_slot`). End it with :func:`release_slot`.
    Refused at once, without queueing (and while mounts of this process queue for a slot:
    they go first): SessionLimitError, or SessionQuotaError past ``who``'s quota. Returns
    the row's id."""

    def take() -> str | None:
        now = utcnow()
        with manager.db.write(lock=SLOT_LOCK) as s:
            row = manager.new_row(s, backup_id, None, who, who.owner[:255], now)
            if row is None:
                return None
            row.status = MOUNTED
            row.expires_at = now + hold
            row.holder_host = row.holder_pid = row.holder_start = None
            return row.id

    mount_id = manager.slots.first_try(take)
    if mount_id is None:
        raise manager.limit_error(who)
    return mount_id


def keep_slot(manager: SessionManager, mount_id: str, hold: timedelta) -> None:
    """Move a held slot's expiry to ``hold`` from now (nothing if it was removed)."""
    now = utcnow()
    with manager.db.write() as s:
        row = s.get(RestoreMount, mount_id, with_for_update=True)
        if row is not None:
            row.last_accessed_at = now
            row.expires_at = now + hold


def release_slot(manager: SessionManager, mount_id: str) -> None:
    """Give a held slot back (a waiting mount of this process tries at once)."""
    manager.drop(mount_id)

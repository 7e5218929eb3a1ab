"""Restore sessions ("mounts"): rows in ``restore_mounts``, served by any process.

Lifecycle: ``mount`` reserves a slot (a ``mounting`` row), opens the image outside any
transaction, then marks the row ``mounted`` (or ``failed`` with the reason, when the image
cannot be opened). ``unmount`` goes through ``unmounting`` and deletes the row. Every access
refreshes ``last_accessed_at`` and ``expires_at`` (at most one row write per few seconds per
session); the cleanup service removes what expired. Mounting a backup and volume the same
owner already has mounted returns that session (the seed's mount reuse); a mount without a
volume reuses only a session whose volume was also chosen automatically.

Concurrency: the slot check and the insert are one transaction under ``SLOT_LOCK`` (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: an advisory transaction lock), so concurrent mounts in any
number of threads and processes never exceed ``max_sessions``. Cleanup takes rows with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers never clean one row twice;
each removal writes its audit event in the same transaction.

Reader stacks live in a per-process :class:`ReaderRegistry` (a pool per session, one stack
per concurrent caller, never one stack shared by two threads).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session as DbSession

from filerestore.catalog import locate_backup
from filerestore.db.engine import Database
from filerestore.db.models import (
    FAILED,
    LIVE_STATES,
    MOUNTED,
    MOUNTING,
    UNMOUNTING,
    AuditEvent,
    DownloadHold,
    RestoreMount,
    utcnow,
)
from filerestore.errors import (
    DownloadLimitError,
    ImageError,
    ImageNotFoundError,
    MountNotFoundError,
    MountStateError,
    SessionLimitError,
)
from filerestore.fs.base import Filesystem
from filerestore.restore.liveness import ProcessIdentity, this_process
from filerestore.restore.readers import ReaderRegistry
from filerestore.restore.stack import Stack, open_stack
from filerestore.settings import Settings

SLOT_LOCK = "filerestore.session-slots"


@dataclass(frozen=True)
class Session:
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


def limit_message(limit: int, holders: Sequence[Session]) -> str:
    listed = "; ".join(
        f"{h.mount_id} (backup {h.backup_id}, volume {h.volume or '-'}, {h.status}, "
        f"owner {h.owner or '-'}, expires {h.expires_at:%Y-%m-%d %H:%M:%S}Z)"
        for h in holders
    )
    return f"session limit reached ({len(holders)} of {limit} in use): {listed}"


class SessionManager:
    def __init__(
        self, db: Database, settings: Settings, readers: ReaderRegistry | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self.readers = readers if readers is not None else ReaderRegistry()
        self.me: ProcessIdentity = this_process()
        self.idle = timedelta(seconds=settings.idle_timeout)
        # an access within this long of the previous one does not rewrite the row
        self._touch_granularity = min(timedelta(seconds=5), self.idle / 100)

    # --- mount / unmount -------------------------------------------------------------------

    def mount(self, backup_id: int, volume: str | None = None, owner: str = "") -> Session:
        backup = locate_backup(self.db, backup_id)  # refuses before anything is written
        now = utcnow()
        with self.db.write(lock=SLOT_LOCK) as s:
            reusable = self._reusable(s, backup_id, volume, owner[:255])
            if reusable is not None:
                self._refresh(reusable, now)
                self._audit(s, owner, "mount", "reused", reusable)
                return Session.of(reusable)
            live = s.scalars(
                select(RestoreMount)
                .where(RestoreMount.status.in_(LIVE_STATES))
                .order_by(RestoreMount.created_at)
            ).all()
            if len(live) >= self.settings.max_sessions:
                holders = [Session.of(r) for r in live]
                error = SessionLimitError(limit_message(self.settings.max_sessions, holders))
                error.holders = holders  # type: ignore[attr-defined]
                raise error
            row = RestoreMount(
                id=str(uuid.uuid4()),
                backup_id=backup_id,
                volume=volume,
                volume_auto=volume is None,
                mount_mode="ro",
                status=MOUNTING,
                owner=owner[:255],
                created_at=now,
                last_accessed_at=now,
                expires_at=now + self.idle,
                status_changed_at=now,
                holder_host=self.me.host,
                holder_pid=self.me.pid,
                holder_start=self.me.start,
            )
            s.add(row)
        mount_id = row.id
        try:
            stack = open_stack(
                backup.image_path,
                repository=backup.repository_root,
                volume_id=volume,
                max_chain_depth=self.settings.max_chain_depth,
            )
        except (ImageError, ImageNotFoundError) as exc:
            self._fail(mount_id, owner, str(exc))
            raise
        except BaseException:
            # the request was wrong (no such volume, several to choose from) or we were
            # interrupted: the row was never a session, remove it
            self._drop(mount_id)
            raise
        try:
            session = self._finish(mount_id, stack, owner)
        except BaseException:
            stack.close()
            self._drop(mount_id)
            raise
        self.readers.adopt(session.mount_id, stack)
        return session

    def _reusable(
        self, s: DbSession, backup_id: int, volume: str | None, owner: str = ""
    ) -> RestoreMount | None:
        # a session is reused only by its owner (API tokens must not share sessions)
        query = select(RestoreMount).where(
            RestoreMount.backup_id == backup_id,
            RestoreMount.status == MOUNTED,
            RestoreMount.owner == owner,
        )
        if volume is None:
            query = query.where(RestoreMount.volume_auto.is_(True))
        else:
            query = query.where(RestoreMount.volume == volume)
        return s.scalars(query.order_by(RestoreMount.created_at).with_for_update()).first()

    def _finish(self, mount_id: str, stack: Stack, owner: str) -> Session:
        now = utcnow()
        with self.db.write(lock=SLOT_LOCK) as s:
            row = s.get(RestoreMount, mount_id, with_for_update=True)
            if row is None or row.status != MOUNTING:
                raise MountStateError(
                    f"session {mount_id} was removed while it was mounting (emergency cleanup)"
                )
            other = s.scalars(
                select(RestoreMount)
                .where(
                    RestoreMount.backup_id == row.backup_id,
                    RestoreMount.owner == row.owner,
                    RestoreMount.volume == stack.volume.id,
                    RestoreMount.status == MOUNTED,
                )
                .with_for_update()
            ).first()
            if other is not None:  # a concurrent mount of the same volume finished first
                s.execute(delete(RestoreMount).where(RestoreMount.id == mount_id))
                self._refresh(other, now)
                self._audit(s, owner, "mount", "reused", other)
                return Session.of(other)
            row.volume = stack.volume.id
            row.filesystem_type = stack.fs.kind
            row.status = MOUNTED
            row.status_changed_at = now
            row.holder_host = row.holder_pid = row.holder_start = None
            self._refresh(row, now)
            self._audit(s, owner, "mount", "ok", row)
            return Session.of(row)

    def _fail(self, mount_id: str, owner: str, reason: str) -> None:
        now = utcnow()
        with self.db.write() as s:
            row = s.get(RestoreMount, mount_id, with_for_update=True)
            if row is None:
                return
            row.status = FAILED
            row.error = reason
            row.status_changed_at = now
            row.expires_at = now + self.idle
            row.holder_host = row.holder_pid = row.holder_start = None
            self._audit(s, owner, "mount", "failed", row, detail=reason)

    def _drop(self, mount_id: str) -> None:
        with self.db.write() as s:
            s.execute(delete(RestoreMount).where(RestoreMount.id == mount_id))

    def unmount(self, mount_id: str, actor: str = "", force: bool = False) -> None:
        """End a session. A download in progress refuses it unless ``force``."""
        now = utcnow()
        with self.db.write() as s:
            row = self._row(s, mount_id)
            if row.status in (MOUNTING, UNMOUNTING) and not force:
                raise MountStateError(f"session {mount_id} is {row.status}; try again shortly")
            holds = self._holds(s, mount_id)
            if holds and not force:
                raise MountStateError(
                    f"session {mount_id} has {holds} download(s) in progress; "
                    "unmount when they finish"
                )
            row.status = UNMOUNTING
            row.status_changed_at = now
            row.holder_host, row.holder_pid, row.holder_start = (
                self.me.host,
                self.me.pid,
                self.me.start,
            )
        self.readers.discard(mount_id)
        with self.db.write() as s:
            ending = s.get(RestoreMount, mount_id, with_for_update=True)
            if ending is not None:
                self._audit(s, actor, "unmount", "ok", ending)
                s.execute(delete(RestoreMount).where(RestoreMount.id == mount_id))

    # --- lookups and access -----------------------------------------------------------------

    def get(self, mount_id: str) -> Session:
        with self.db.read() as s:
            return Session.of(self._row(s, mount_id), self._holds(s, mount_id))

    def list(self) -> list[Session]:
        with self.db.read() as s:
            rows = s.scalars(select(RestoreMount).order_by(RestoreMount.created_at)).all()
            counts: dict[str, int] = {
                mount_id: n
                for mount_id, n in s.execute(
                    select(DownloadHold.mount_id, func.count()).group_by(DownloadHold.mount_id)
                ).all()
            }
            return [Session.of(r, counts.get(r.id, 0)) for r in rows]

    def touch(self, mount_id: str) -> Session:
        """Record an access: the session must be mounted; its expiry moves forward."""
        now = utcnow()
        with self.db.read() as s:
            row = self._row(s, mount_id)
            self._require_mounted(row)
            if now - row.last_accessed_at < self._touch_granularity:
                return Session.of(row)
        with self.db.write() as s:
            row = self._row(s, mount_id, lock=True)
            self._require_mounted(row)
            self._refresh(row, now)
            return Session.of(row)

    @contextmanager
    def stack(self, mount_id: str) -> Iterator[Stack]:
        """A reader stack of the session for this caller alone (opened lazily, pooled)."""
        session = self.touch(mount_id)

        def opener() -> Stack:
            backup = locate_backup(self.db, session.backup_id)
            return open_stack(
                backup.image_path,
                repository=backup.repository_root,
                volume_id=session.volume,
                max_chain_depth=self.settings.max_chain_depth,
            )

        with self.readers.borrow(mount_id, opener) as stack:
            yield stack

    @contextmanager
    def filesystem(self, mount_id: str) -> Iterator[Filesystem[Any]]:
        with self.stack(mount_id) as stack:
            yield stack.fs

    @contextmanager
    def download(self, mount_id: str, actor: str = "") -> Iterator[int]:
        """Hold the session for a download: cleanup skips it, in every process, until done."""
        now = utcnow()
        with self.db.write() as s:
            row = self._row(s, mount_id, lock=True)
            self._require_mounted(row)
            if self._holds(s, mount_id) >= self.settings.max_downloads_per_session:
                raise DownloadLimitError(
                    f"session {mount_id} already serves "
                    f"{self.settings.max_downloads_per_session} downloads, the limit"
                )
            hold = DownloadHold(
                mount_id=mount_id,
                host=self.me.host,
                pid=self.me.pid,
                pid_start=self.me.start,
                started_at=now,
            )
            s.add(hold)
            self._refresh(row, now)
            s.flush()
            hold_id = hold.id
        try:
            yield hold_id
        finally:
            with self.db.write() as s:
                s.execute(delete(DownloadHold).where(DownloadHold.id == hold_id))
                held = s.get(RestoreMount, mount_id, with_for_update=True)
                if held is not None and held.status == MOUNTED:
                    self._refresh(held, utcnow())

    def downloads_in_progress(self) -> int:
        with self.db.read() as s:
            return s.scalar(select(func.count()).select_from(DownloadHold)) or 0

    def live_count(self) -> int:
        with self.db.read() as s:
            return (
                s.scalar(
                    select(func.count())
                    .select_from(RestoreMount)
                    .where(RestoreMount.status.in_(LIVE_STATES))
                )
                or 0
            )

    # --- helpers ---------------------------------------------------------------------------

    def _row(self, s: DbSession, mount_id: str, lock: bool = False) -> RestoreMount:
        row = s.get(RestoreMount, mount_id, with_for_update=lock)
        if row is None:
            raise MountNotFoundError(f"no session with id {mount_id} (expired or unmounted?)")
        return row

    @staticmethod
    def _require_mounted(row: RestoreMount) -> None:
        if row.status == FAILED:
            raise MountStateError(f"session {row.id} failed: {row.error}")
        if row.status != MOUNTED:
            raise MountStateError(f"session {row.id} is {row.status}, not mounted")

    @staticmethod
    def _holds(s: DbSession, mount_id: str) -> int:
        return (
            s.scalar(
                select(func.count())
                .select_from(DownloadHold)
                .where(DownloadHold.mount_id == mount_id)
            )
            or 0
        )

    def _refresh(self, row: RestoreMount, now: datetime) -> None:
        row.last_accessed_at = now
        row.expires_at = now + self.idle

    def _audit(
        self,
        s: DbSession,
        actor: str,
        action: str,
        outcome: str,
        row: RestoreMount,
        detail: str | None = None,
    ) -> None:
        s.add(
            AuditEvent(
                time=utcnow(),
                actor=(actor or f"{self.me.host}:{self.me.pid}")[:255],
                action=action,
                backup_id=row.backup_id,
                mount_id=row.id,
                outcome=outcome,
                detail=detail,
            )
        )

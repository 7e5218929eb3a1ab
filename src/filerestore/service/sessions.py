"""Restore sessions ("mounts"): rows in ``restore_mounts``, served by any process.

Lifecycle: ``mount`` reserves a slot (a ``mounting`` row), opens the image outside any
transaction, then marks the row ``mounted`` (or ``failed`` with the reason, when the image
cannot be opened). ``unmount`` goes through ``unmounting`` and deletes the row. A request
that reads a session checks it out (:meth:`SessionManager.checkout`, see
:mod:`~filerestore.service.checkout`), which refreshes ``last_accessed_at`` and
``expires_at``; the cleanup service removes what expired. Mounting a backup and volume the
same owner already has mounted returns that session (the seed's mount reuse); a mount
without a volume reuses only a session whose volume was also chosen automatically.

Every call names its :class:`~filerestore.service.principal.Principal`: a session is
visible to its owner and to admins only.

Concurrency: the slot check and the insert are one transaction under ``SLOT_LOCK`` (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: an advisory transaction lock), so concurrent mounts in any
number of threads and processes never exceed ``max_sessions``.

Reader stacks live in a per-process :class:`ReaderRegistry` (a pool per session, one stack
per concurrent caller, never one stack shared by two threads).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session as DbSession

from filerestore.catalog import Stores, get_repository, locate_backup
from filerestore.catalog.stores import S3_KIND
from filerestore.db.engine import Database
from filerestore.db.models import (
    FAILED,
    LIVE_STATES,
    MOUNTED,
    MOUNTING,
    UNMOUNTING,
    DownloadHold,
    RestoreMount,
    utcnow,
)
from filerestore.errors import (
    FileRestoreError,
    ImageError,
    ImageNotFoundError,
    MountStateError,
    SessionLimitError,
    SessionQuotaError,
)
from filerestore.restore.stack import Stack, open_backup_stack
from filerestore.service import audit, session_fuse
from filerestore.service.checkout import Checkout, Download, check_out
from filerestore.service.liveness import ProcessIdentity, this_process
from filerestore.service.principal import Principal
from filerestore.service.readers import ReaderRegistry
from filerestore.service.session import (
    Session,
    limit_message,
    owner_names,
    refresh,
    visible_row,
)
from filerestore.service.slotqueue import SlotQueue
from filerestore.service.statedisk import require_free_space
from filerestore.settings import Settings

SLOT_LOCK = "filerestore.session-slots"


class SessionManager:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        readers: ReaderRegistry | None = None,
        stores: Stores | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.readers = readers if readers is not None else ReaderRegistry()
        #: this process's stores: one long-lived S3 store per repository, every session's
        self.stores = stores if stores is not None else Stores(settings)
        self.audit = audit.AuditLog(db, settings.audit_text_limit)
        # mounts waiting for a slot in this process (each holds a thread): a bounded queue
        self.slots = SlotQueue(max_waiters=max(8, settings.max_sessions))
        self.me: ProcessIdentity = this_process()
        self.idle = timedelta(seconds=settings.idle_timeout)
        # an access within this long of the previous one does not rewrite the row
        self.touch_granularity = min(timedelta(seconds=5), self.idle / 100)

    # --- using a session ----------------------------------------------------------------

    def checkout(self, mount_id: str, who: Principal, download: Download | None = None) -> Checkout:
        """The session for one request (see :mod:`~filerestore.service.checkout`)."""
        return check_out(self, mount_id, who, download)

    # --- mount / unmount -------------------------------------------------------------------

    def mount(self, backup_id: int, volume: str | None, who: Principal) -> Session:
        """Open a backup for ``who``; every outcome is an audit event."""
        try:
            return self._mount(backup_id, volume, who)
        except (ImageError, ImageNotFoundError):
            raise  # the image failed to open: the failed row and its event are written
        except FileRestoreError as exc:
            detail = f"{exc.code}: {exc}"
            event = audit.Event(who.actor, "mount", "failed", backup_id=backup_id, detail=detail)
            self.audit.record(event)
            raise

    def _mount(self, backup_id: int, volume: str | None, who: Principal) -> Session:
        backup = locate_backup(self.db, backup_id, self.stores)  # refuses before any write
        repository = get_repository(self.db, backup.repository)
        require_free_space(self.settings.state_dir, self.settings.min_free_state_bytes)
        owner = who.owner[:255]

        def take() -> _Slot | None:
            return self._take_slot(backup_id, volume, who, owner)

        taken = self.slots.first_try(take)
        if taken is None and self.settings.mount_wait_timeout > 0:
            taken = self.slots.wait_for(take, self.settings.mount_wait_timeout)
        if taken is None:
            raise self.limit_error(who)
        if isinstance(taken.got, Session):
            return taken.got  # the owner's session of this backup and volume, reused
        row = taken.got
        mount_id = row.id
        try:
            with self.stores.opened(repository) as store:
                stack = open_backup_stack(
                    store,
                    backup.path,
                    volume_id=volume,
                    max_chain_depth=self.settings.max_chain_depth,
                    metadata_budget=self.settings.image_metadata_budget,
                )
        except (ImageError, ImageNotFoundError) as exc:
            self._fail(mount_id, who, str(exc))
            raise
        except BaseException:
            # the request was wrong (no such volume, several to choose from) or we were
            # interrupted: the row was never a session, remove it
            self.drop(mount_id)
            raise
        try:
            session = self._finish(mount_id, stack, who)
        except BaseException:
            stack.close()
            self.drop(mount_id)
            raise
        self.readers.adopt(session.mount_id, stack)
        # a view is `filerestore mount` of the image file: repositories on the host only
        # (an S3 repository's sessions have no view; their mount_path stays unset)
        on_host = repository.kind != S3_KIND
        if self.settings.session_fuse and on_host and session.mount_id == mount_id:
            session = self._start_view(session, backup.image_path, backup.repository_root, who)
        return session

    def _take_slot(
        self, backup_id: int, volume: str | None, who: Principal, owner: str
    ) -> _Slot | None:
        """One transaction under ``SLOT_LOCK``: the owner's reusable session, or a new
        ``mounting`` row in a free slot, or None when the host is full. SessionQuotaError
        when the owner holds its quota (waiting would not help: one of its own must end)."""
        now = utcnow()
        with self.db.write(lock=SLOT_LOCK) as s:
            reusable = self._reusable(s, backup_id, volume, owner)
            if reusable is not None:
                refresh(reusable, now, self.idle)
                self._audit(s, who, "reused", reusable)
                return _Slot(Session.of(reusable, owner_name=_name(who)))
            row = self.new_row(s, backup_id, volume, who, owner, now)
        return None if row is None else _Slot(row)

    def new_row(
        self,
        s: DbSession,
        backup_id: int,
        volume: str | None,
        who: Principal,
        owner: str,
        now: datetime,
    ) -> RestoreMount | None:
        """A new ``mounting`` row in a free slot (in the caller's transaction under
        ``SLOT_LOCK``), or None when the host is full; SessionQuotaError past the owner's
        quota."""
        live = s.scalars(
            select(RestoreMount)
            .where(RestoreMount.status.in_(LIVE_STATES))
            .order_by(RestoreMount.created_at)
        ).all()
        quota = self.settings.max_sessions_per_owner
        own = [r for r in live if r.owner == owner]
        if not who.admin and len(own) >= quota:
            raise SessionQuotaError(
                f"you hold {len(own)} sessions, your quota is {quota}: unmount one of yours first",
                _retry_after(own, now),
            )
        if len(live) >= self.settings.max_sessions:
            return None
        row = RestoreMount(
            id=str(uuid.uuid4()),
            backup_id=backup_id,
            volume=volume,
            volume_auto=volume is None,
            mount_mode="ro",
            status=MOUNTING,
            owner=owner,
            created_at=now,
            last_accessed_at=now,
            expires_at=now + self.idle,
            status_changed_at=now,
            holder_host=self.me.host,
            holder_pid=self.me.pid,
            holder_start=self.me.start,
        )
        s.add(row)
        return row

    def limit_error(self, who: Principal) -> SessionLimitError:
        """The host-full refusal: the caller's own sessions only (an admin's: all)."""
        with self.db.read() as s:
            live = s.scalars(
                select(RestoreMount)
                .where(RestoreMount.status.in_(LIVE_STATES))
                .order_by(RestoreMount.created_at)
            ).all()
            shown = [Session.of(r) for r in live if who.may_see(r.owner)]
            retry = _retry_after(live, utcnow())
        message = limit_message(self.settings.max_sessions, len(live), shown)
        error = SessionLimitError(message, retry)
        error.holders = shown  # type: ignore[attr-defined]
        return error

    def _start_view(self, session: Session, image: str, repository: str, who: Principal) -> Session:
        """The new session's FUSE view (:mod:`~filerestore.service.session_fuse`); a view
        that cannot be mounted ends the session, and the mount fails with its reason."""
        assert session.volume is not None  # a mounted session always names its volume
        try:
            view = session_fuse.start(
                self.settings,
                self.me,
                session.mount_id,
                Path(image),
                Path(repository),
                session.volume,
            )
        except BaseException:
            self.unmount(session.mount_id, who, force=True)
            raise
        with self.db.write() as s:
            row = s.get(RestoreMount, session.mount_id, with_for_update=True)
            if row is None:  # ended (emergency cleanup) while its view was mounting
                session_fuse.stop(self.settings, session.mount_id, *_identity(view))
                raise MountStateError(f"session {session.mount_id} ended while mounting")
            row.mount_path = str(view.path)
            row.fuse_host, row.fuse_pid, row.fuse_start = _identity(view)
            refresh(row, utcnow(), self.idle)  # idle from now: the view took its time
            return Session.of(row, owner_name=_name(who))

    def _reusable(
        self, s: DbSession, backup_id: int, volume: str | None, owner: str
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

    def _finish(self, mount_id: str, stack: Stack, who: Principal) -> Session:
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
                refresh(other, now, self.idle)
                self._audit(s, who, "reused", other)
                return Session.of(other, owner_name=_name(who))
            row.volume = stack.volume.id
            row.filesystem_type = stack.fs.kind
            row.status = MOUNTED
            row.status_changed_at = now
            row.holder_host = row.holder_pid = row.holder_start = None
            refresh(row, now, self.idle)
            self._audit(s, who, "ok", row)
            return Session.of(row, owner_name=_name(who))

    def _fail(self, mount_id: str, who: Principal, reason: str) -> None:
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
            self._audit(s, who, "failed", row, detail=reason)

    def drop(self, mount_id: str) -> None:
        with self.db.write() as s:
            s.execute(delete(RestoreMount).where(RestoreMount.id == mount_id))
        self.slots.freed()

    def unmount(self, mount_id: str, who: Principal, force: bool = False) -> Session:
        """End a session. A download in progress refuses it unless ``force``.

        Two transactions: the first marks the row ``unmounting`` (no new checkout takes it),
        the readers are closed, the second deletes it. A row already ``unmounting`` is one
        whose unmount failed between the two (the database refused the second) or is being
        unmounted right now; either way ending it is what the caller asks for, so a retry
        takes it over and succeeds as soon as the database is writable again, instead of
        waiting for cleanup to find it stuck. Doing the delete twice is harmless: the later
        one finds no row.
        """
        now = utcnow()
        with self.db.write() as s:
            row = visible_row(s, mount_id, who, lock=True)
            if row.status == MOUNTING and not force:
                raise MountStateError(f"session {mount_id} is {row.status}; try again shortly")
            holds = _holds(s, mount_id)
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
            session = Session.of(row, holds)
        self.readers.discard(mount_id)
        view: tuple[str | None, int | None, int | None] | None = None
        with self.db.write() as s:
            ending = s.get(RestoreMount, mount_id, with_for_update=True)
            if ending is not None:
                if ending.fuse_pid is not None or ending.mount_path is not None:
                    view = (ending.fuse_host, ending.fuse_pid, ending.fuse_start)
                self._audit(s, who, "ok", ending, action="unmount")
                s.execute(delete(RestoreMount).where(RestoreMount.id == mount_id))
        self.slots.freed()

        if view is not None:
            session_fuse.stop(self.settings, mount_id, *view)
        return session

    # --- lookups ---------------------------------------------------------------------------

    def get(self, mount_id: str, who: Principal) -> Session:
        with self.db.read() as s:
            row = visible_row(s, mount_id, who)
            names = owner_names(s, [row.owner])
            return Session.of(row, _holds(s, mount_id), names.get(row.owner))

    def list(self, who: Principal) -> list[Session]:
        query = select(RestoreMount).order_by(RestoreMount.created_at)
        if not who.admin:
            query = query.where(RestoreMount.owner == who.owner)
        with self.db.read() as s:
            rows = s.scalars(query).all()
            counts: dict[str, int] = {
                mount_id: n
                for mount_id, n in s.execute(
                    select(DownloadHold.mount_id, func.count()).group_by(DownloadHold.mount_id)
                ).all()
            }
            names = owner_names(s, {r.owner for r in rows})
            return [Session.of(r, counts.get(r.id, 0), names.get(r.owner)) for r in rows]

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

    def _audit(
        self,
        s: DbSession,
        who: Principal,
        outcome: str,
        row: RestoreMount,
        detail: str | None = None,
        action: str = "mount",
    ) -> None:
        self.audit.add(
            s,
            audit.Event(
                who.actor,
                action,
                outcome,
                backup_id=row.backup_id,
                mount_id=row.id,
                detail=detail,
            ),
        )


def _identity(view: session_fuse.View) -> tuple[str, int, int]:
    return view.process.host, view.process.pid, view.process.start


def _name(who: Principal) -> str | None:
    """The owner name a session of ``who`` shows (a token's name; none for the operator)."""
    return who.name if who.owner else None


def _holds(s: DbSession, mount_id: str) -> int:
    return (
        s.scalar(
            select(func.count()).select_from(DownloadHold).where(DownloadHold.mount_id == mount_id)
        )
        or 0
    )


@dataclass(frozen=True, slots=True)
class _Slot:
    """What taking a slot gave: a new ``mounting`` row, or the owner's session reused."""

    got: RestoreMount | Session


def _retry_after(rows: Sequence[RestoreMount], now: datetime) -> int:
    """Seconds until the first of ``rows`` expires if idle (at least 1, at most 600): when
    a retry may find a slot."""
    soonest = min((r.expires_at for r in rows), default=None)
    if soonest is None:
        return 1
    if soonest.tzinfo is None:
        soonest = soonest.replace(tzinfo=now.tzinfo)
    return max(1, min(600, int((soonest - now).total_seconds()) + 1))

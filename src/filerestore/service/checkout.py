"""Checking a session out for one request, and giving it back.

:func:`check_out` is the one call every adapter makes before it reads from a session. In ONE
database transaction it finds the session, applies the owner rule (another principal's
session is "not found"), requires it mounted, moves its expiry forward (at most one row write
per few seconds), and for a download takes a hold (refused past the per-session limit) and
writes the download's audit row (``started``); the same transaction reads where the
backup's image is, so a worker that has not opened the session yet needs no other query.
Then it lends the caller a reader stack of its own.

A download is served only once its audit row is written: when that transaction fails (the
database away, locked or out of space) the download is refused, unless ``audit_fail_open``
is set, in which case it is checked out read-only (no hold, no row; its event only reaches
the log). A browsing request whose expiry update cannot be written is checked out read-only:
it writes nothing the audit trail needs.

:meth:`Checkout.release` is the only other call: it gives the stack back, and for a
download removes the hold and completes the download's audit row in one transaction.
Without a hold it touches no database. A download outlives its request handler (the body
streams after the handler returned), so the release is explicit; for a request-scoped use a
Checkout is also a context manager.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select

from filerestore.catalog import RepositoryInfo, Stores, require_readable
from filerestore.db.models import MOUNTED, Backup, DownloadHold, Repository, RestoreMount, utcnow
from filerestore.errors import (
    DatabaseLockedError,
    DatabaseUnavailableError,
    DownloadLimitError,
    FileRestoreError,
    RequestError,
    StateDiskFullError,
)
from filerestore.restore.stack import Stack, open_backup_stack
from filerestore.service import audit
from filerestore.service.principal import Principal
from filerestore.service.session import (
    MAX_MOUNT_ID,
    Session,
    not_found,
    refresh,
    require_mounted,
)

if TYPE_CHECKING:
    from filerestore.service.sessions import SessionManager

log = logging.getLogger("filerestore.service")

#: the checkout's transaction could not be written (the database away, locked or full)
WRITE_FAILURES = (DatabaseUnavailableError, DatabaseLockedError, StateDiskFullError)


@dataclass(frozen=True, slots=True)
class Download:
    """What a download is, for its audit event: ``download`` (one file) or ``archive``."""

    kind: str
    path: str
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Location:
    """Where a session's backup image is, read in the checkout's transaction."""

    backup_id: int
    repository: RepositoryInfo
    path: str  # the image's name in the repository

    def check(self, stores: Stores) -> None:
        """The checks :func:`~filerestore.catalog.locate_backup` makes, on what we read."""
        require_readable(self.repository, self.backup_id, self.path, stores)


@dataclass(eq=False)
class Tally:
    """A download's progress, which its audit event reports."""

    sent: int = 0
    complete: bool = False
    refused: bool = False
    #: broken off by an error after the first byte (not by the client going away)
    broken_off: bool = False
    detail: str | None = None
    sha256: hashlib._Hash | None = field(default=None, repr=False)

    @property
    def outcome(self) -> str:
        if self.complete:
            return "ok"
        return "failed" if self.refused else "incomplete"


class Checkout:
    """A session checked out for one request: the session, a reader stack for this caller
    alone and, for a download, its hold and tally. Release it exactly once."""

    def __init__(
        self,
        manager: SessionManager,
        who: Principal,
        session: Session,
        location: Location,
        hold_id: int | None,
        download: Download | None,
        audit_id: int | None = None,
    ) -> None:
        self._manager = manager
        self._who = who
        self.session = session
        self._location = location
        self._hold_id = hold_id
        self._audit_id = audit_id
        self.download = download
        self.tally = Tally(detail=download.detail if download else None)
        self._stack: Stack | None = None
        self._broken = False
        self._released = False

    @property
    def stack(self) -> Stack:
        assert self._stack is not None, "used after release"
        return self._stack

    def _lend(self) -> None:
        settings = self._manager.settings
        location = self._location

        stores = self._manager.stores

        def opener() -> Stack:
            location.check(stores)
            with stores.opened(location.repository) as store:
                return open_backup_stack(
                    store,
                    location.path,
                    volume_id=self.session.volume,
                    max_chain_depth=settings.max_chain_depth,
                    metadata_budget=settings.image_metadata_budget,
                )

        self._stack = self._manager.readers.lend(self.session.mount_id, opener)

    # --- a download's tally ----------------------------------------------------------------

    def digest(self) -> None:
        """Record the SHA-256 of what is sent (a whole file) in the audit event."""
        self.tally.sha256 = hashlib.sha256()

    def note(self, detail: str) -> None:
        self.tally.detail = detail

    def refuse(self, exc: BaseException) -> None:
        """The request was refused before its first byte (bad path, range ...)."""
        self.tally.refused = True
        self._failed(exc)

    def failed(self, exc: BaseException) -> None:
        """The download broke off after its first byte."""
        self.tally.broken_off = True
        self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, FileRestoreError):
            self.tally.detail = f"{exc.code}: {exc}"
        # a request-caused error (a missing path, a bad range) comes from our own checks,
        # not from a library failing mid-read: the stack stays good
        self._broken = not isinstance(exc, RequestError)

    def counted(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """``chunks``, tallied; the download is complete when they are exhausted."""
        tally = self.tally
        for chunk in chunks:
            if tally.sha256 is not None:
                tally.sha256.update(chunk)
            tally.sent += len(chunk)
            yield chunk
        tally.complete = True

    # --- giving it back --------------------------------------------------------------------

    def release(self) -> None:
        """Give the stack back (closed if a read failed: it may be in any state) and end the
        hold, writing the download's audit event."""
        if self._released:
            return
        self._released = True
        if self._stack is not None:
            self._manager.readers.give_back(self.session.mount_id, self._stack, self._broken)
            self._stack = None
        if self._hold_id is not None:
            self._end_hold(self._hold_id)
        elif self.download is not None:  # served read-only (audit_fail_open): a line only
            self._manager.audit.log_only(self._event())

    def _event(self) -> audit.Event:
        assert self.download is not None
        tally = self.tally
        detail = tally.detail
        if tally.sha256 is not None and tally.complete:
            detail = f"sha256={tally.sha256.hexdigest()}" + (f"; {detail}" if detail else "")
        return audit.Event(
            self._who.actor,
            self.download.kind,
            tally.outcome,
            backup_id=self.session.backup_id,
            mount_id=self.session.mount_id,
            path=self.download.path,
            bytes=tally.sent,
            detail=detail,
        )

    def _end_hold(self, hold_id: int) -> None:
        event = self._event()
        manager = self._manager
        try:
            with manager.db.write() as s:
                s.execute(delete(DownloadHold).where(DownloadHold.id == hold_id))
                row = s.get(RestoreMount, self.session.mount_id, with_for_update=True)
                if row is not None and row.status == MOUNTED:
                    refresh(row, utcnow(), manager.idle)
                if self._audit_id is not None:
                    manager.audit.finish(s, self._audit_id, event)
        except FileRestoreError as exc:
            # the hold stays until cleanup finds this process gone; the row stays "started"
            # (it was written before the first byte); the event's line is logged
            log.warning("could not end the download hold %s: %s", hold_id, exc)
            manager.audit.log_only(event)

    def __enter__(self) -> Checkout:
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            self.failed(exc)
        self.release()


def check_out(
    manager: SessionManager, mount_id: str, who: Principal, download: Download | None = None
) -> Checkout:
    """The session ``mount_id`` for ``who``'s request (see the module docstring)."""
    if len(mount_id) > MAX_MOUNT_ID:
        raise not_found(mount_id)
    try:
        checkout = _check_out(manager, mount_id, who, download, write=True)
    except DownloadLimitError as exc:
        assert download is not None
        event = audit.Event(
            who.actor,
            download.kind,
            "failed",
            mount_id=mount_id,
            path=download.path,
            bytes=0,
            detail=f"{exc.code}: {exc}",
        )
        manager.audit.record(event)
        raise
    except WRITE_FAILURES as exc:
        if download is not None and not manager.settings.audit_fail_open:
            raise  # fail closed: no download without its audit row
        checkout = _check_out(manager, mount_id, who, download, write=False)
        if download is not None:
            log.warning(
                "serving %s of %s without its audit row (audit_fail_open): %s",
                download.kind,
                download.path,
                exc,
            )
    try:
        checkout._lend()
    except BaseException as exc:
        checkout.refuse(exc)
        checkout.release()
        raise
    return checkout


def _check_out(
    manager: SessionManager,
    mount_id: str,
    who: Principal,
    download: Download | None,
    write: bool,
) -> Checkout:
    """The transaction of :func:`check_out`; ``write=False``: read-only (no hold, no audit
    row, no expiry update)."""
    now = utcnow()
    query = (
        select(RestoreMount, Backup, Repository)
        .join(Backup, Backup.id == RestoreMount.backup_id)
        .join(Repository, Repository.id == Backup.repository_id)
        .where(RestoreMount.id == mount_id)
    )
    with manager.db.write() if write else manager.db.read() as s:
        if write:
            query = query.with_for_update(of=RestoreMount)
        found = s.execute(query).first()
        if found is None or not who.may_see(found[0].owner):
            raise not_found(mount_id)
        row, backup, repo = found
        require_mounted(row)
        hold_id = audit_id = None
        holds = 0
        if download is not None:
            holds = (
                s.scalar(
                    select(func.count())
                    .select_from(DownloadHold)
                    .where(DownloadHold.mount_id == mount_id)
                )
                or 0
            )
        if download is not None and write:
            limit = manager.settings.max_downloads_per_session
            if holds >= limit:
                raise DownloadLimitError(
                    f"session {mount_id} already serves {limit} downloads, the limit"
                )
            me = manager.me
            hold = DownloadHold(
                mount_id=mount_id, host=me.host, pid=me.pid, pid_start=me.start, started_at=now
            )
            s.add(hold)
            s.flush()
            hold_id = hold.id
            holds += 1
            started = audit.Event(
                who.actor,
                download.kind,
                audit.STARTED,
                backup_id=backup.id,
                mount_id=mount_id,
                path=download.path,
                bytes=0,
                detail=download.detail,
            )
            audit_id = manager.audit.begin(s, started)
        stale = now - row.last_accessed_at >= manager.touch_granularity
        if write and (hold_id is not None or stale):
            refresh(row, now, manager.idle)
        session = Session.of(row, holds)
        location = Location(backup.id, RepositoryInfo.of(repo), backup.path)
    return Checkout(manager, who, session, location, hold_id, download, audit_id)

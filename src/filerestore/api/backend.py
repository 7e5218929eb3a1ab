"""The restore-layer operations the routes call: sessions, reader stacks, holds, catalog.

Every route goes through one :class:`Backend`, so the HTTP layer never touches the
database or the reader stack directly. Sessions are ``restore_mounts`` rows: any worker
process can serve any session by reopening its stack from the row. Stacks are pooled per
process and per session; a stack is used by one request at a time (library handles are not
thread-safe) and a concurrent request opens another.

Visibility: a session belongs to the token that created it (``owner``); another token gets
MountNotFoundError for it, exactly as for an id that never existed; an admin sees all.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select

from filerestore.db.engine import Database
from filerestore.db.models import (
    FAILED,
    LIVE_STATES,
    MOUNTED,
    Backup,
    DownloadHold,
    Repository,
    RestoreMount,
)
from filerestore.errors import (
    BackupFileMissingError,
    BackupNotFoundError,
    DownloadLimitError,
    MountNotFoundError,
    MountStateError,
    NotFoundError,
    SafetyError,
    SessionLimitError,
    UsageError,
)
from filerestore.restore.stack import Stack, open_stack
from filerestore.settings import Settings

START = int(os.times().elapsed * 100)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes a request: a token's id and name, and whether it is an admin token."""

    token_id: int
    name: str
    admin: bool

    @property
    def owner(self) -> str:
        return f"token:{self.token_id}"

    @property
    def actor(self) -> str:
        return f"{self.name} ({self.owner})"


def now() -> datetime:
    return datetime.now(UTC)


class StackPool:
    """Opened stacks per session in this process; idle ones are reused."""

    def __init__(self) -> None:
        self._idle: dict[str, list[Stack]] = {}
        self._busy = 0
        self._lock = threading.Lock()

    def acquire(
        self, mount_id: str, image: Path, root: Path, volume: str | None, depth: int
    ) -> Stack:
        """An idle stack of the session, or a newly opened one."""
        with self._lock:
            idle = self._idle.get(mount_id)
            stack = idle.pop() if idle else None
            self._busy += 1
        if stack is not None:
            return stack
        try:
            return open_stack(image, repository=root, volume_id=volume, max_chain_depth=depth)
        except BaseException:
            with self._lock:
                self._busy -= 1
            raise

    def give_back(self, mount_id: str, stack: Stack, reusable: bool = True) -> None:
        """Return a stack; one whose use failed is closed (its state is unknown)."""
        with self._lock:
            self._busy -= 1
            if reusable:
                self._idle.setdefault(mount_id, []).append(stack)
                return
        stack.close()

    @contextmanager
    def checkout(
        self, mount_id: str, image: Path, root: Path, volume: str | None, depth: int
    ) -> Iterator[Stack]:
        stack = self.acquire(mount_id, image, root, volume, depth)
        try:
            yield stack
        except (UsageError, NotFoundError, SafetyError):
            self.give_back(mount_id, stack)  # the request was wrong, not the stack
            raise
        except BaseException:
            self.give_back(mount_id, stack, reusable=False)
            raise
        self.give_back(mount_id, stack)

    def discard(self, mount_id: str) -> None:
        with self._lock:
            stacks = self._idle.pop(mount_id, [])
        for stack in stacks:
            stack.close()

    def discard_except(self, live: set[str]) -> None:
        with self._lock:
            gone = [m for m in self._idle if m not in live]
        for mount_id in gone:
            self.discard(mount_id)

    @property
    def open_count(self) -> int:
        with self._lock:
            return self._busy + sum(len(v) for v in self._idle.values())


@dataclass(frozen=True, slots=True)
class Opened:
    """What a route needs of a session: its row and where its image is."""

    mount: RestoreMount
    image: Path
    root: Path


class Backend:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.stacks = StackPool()
        self.downloads = 0
        self._downloads_lock = threading.Lock()

    # --- catalog lookups -------------------------------------------------------------------

    def backup_location(self, backup_id: int) -> tuple[Backup, Path, Path]:
        with self.db.read() as s:
            row = s.execute(
                select(Backup, Repository).join(Repository).where(Backup.id == backup_id)
            ).first()
        if row is None:
            raise BackupNotFoundError(f"no backup with id {backup_id}")
        backup, repo = row
        root = Path(repo.root_path)
        image = root / backup.path
        if not image.is_file():
            raise BackupFileMissingError(f"backup {backup_id}: image file is missing: {image}")
        return backup, image, root

    # --- sessions --------------------------------------------------------------------------

    def mount(self, backup_id: int, volume: str | None, who: Principal) -> RestoreMount:
        backup, image, root = self.backup_location(backup_id)
        depth = self.settings.max_chain_depth
        with self.db.read() as s:
            reuse = s.scalars(
                select(RestoreMount).where(
                    RestoreMount.backup_id == backup_id,
                    RestoreMount.owner == who.owner,
                    RestoreMount.status == MOUNTED,
                )
            ).all()
        for row in reuse:
            if row.volume == volume or (volume is None and row.volume_auto):
                return self.touch(row.id)
        stack = open_stack(image, repository=root, volume_id=volume, max_chain_depth=depth)
        mount_id = str(uuid.uuid4())
        try:
            with self.db.write(lock="sessions") as s:
                live = s.scalars(
                    select(RestoreMount).where(RestoreMount.status.in_(LIVE_STATES))
                ).all()
                if len(live) >= self.settings.max_sessions:
                    held = ", ".join(f"{m.id} (backup {m.backup_id})" for m in live)
                    raise SessionLimitError(
                        f"all {self.settings.max_sessions} session slots are in use: {held}; "
                        "unmount one or wait for it to expire"
                    )
                t = now()
                row = RestoreMount(
                    id=mount_id,
                    backup_id=backup.id,
                    volume=stack.volume.id,
                    volume_auto=volume is None,
                    filesystem_type=stack.fs.kind,
                    mount_mode="ro",
                    status=MOUNTED,
                    owner=who.owner,
                    created_at=t,
                    last_accessed_at=t,
                    expires_at=t + timedelta(seconds=self.settings.idle_timeout),
                    status_changed_at=t,
                )
                s.add(row)
        except BaseException:
            stack.close()
            raise
        with self.stacks._lock:
            self.stacks._idle.setdefault(mount_id, []).append(stack)
        return row

    def visible(self, mount_id: str, who: Principal) -> RestoreMount:
        with self.db.read() as s:
            row = s.get(RestoreMount, mount_id)
        if row is None or (not who.admin and row.owner != who.owner):
            raise MountNotFoundError(f"no session {mount_id}")
        return row

    def touch(self, mount_id: str) -> RestoreMount:
        with self.db.write() as s:
            row = s.get(RestoreMount, mount_id)
            if row is None:
                raise MountNotFoundError(f"no session {mount_id}")
            t = now()
            row.last_accessed_at = t
            row.expires_at = t + timedelta(seconds=self.settings.idle_timeout)
            return row

    def opened(self, mount_id: str, who: Principal) -> Opened:
        row = self.visible(mount_id, who)
        if row.status != MOUNTED:
            raise MountStateError(f"session {mount_id} is {row.status}, not mounted")
        row = self.touch(mount_id)
        _, image, root = self.backup_location(row.backup_id)
        return Opened(row, image, root)

    @contextmanager
    def stack(self, opened: Opened) -> Iterator[Stack]:
        m = opened.mount
        with self.stacks.checkout(
            m.id, opened.image, opened.root, m.volume, self.settings.max_chain_depth
        ) as stack:
            yield stack

    def acquire(self, opened: Opened) -> Stack:
        m = opened.mount
        return self.stacks.acquire(
            m.id, opened.image, opened.root, m.volume, self.settings.max_chain_depth
        )

    def unmount(self, mount_id: str, who: Principal) -> RestoreMount:
        row = self.visible(mount_id, who)
        with self.db.write() as s:
            s.execute(delete(RestoreMount).where(RestoreMount.id == mount_id))
        self.stacks.discard(mount_id)
        return row

    def mounts(self, who: Principal) -> list[RestoreMount]:
        query = select(RestoreMount).order_by(RestoreMount.created_at)
        if not who.admin:
            query = query.where(RestoreMount.owner == who.owner)
        with self.db.read() as s:
            return list(s.scalars(query).all())

    # --- download holds --------------------------------------------------------------------

    def hold(self, mount_id: str) -> int:
        with self.db.write() as s:
            count = s.scalar(
                select(func.count())
                .select_from(DownloadHold)
                .where(DownloadHold.mount_id == mount_id)
            )
            if (count or 0) >= self.settings.max_downloads_per_session:
                raise DownloadLimitError(
                    f"session {mount_id} already serves {count} downloads (the limit)"
                )
            hold = DownloadHold(
                mount_id=mount_id, host=os.uname().nodename, pid=os.getpid(), pid_start=START
            )
            s.add(hold)
            s.flush()
            hold_id = hold.id
        with self._downloads_lock:
            self.downloads += 1
        return hold_id

    def release(self, hold_id: int) -> None:
        with self._downloads_lock:
            self.downloads -= 1
        with self.db.write() as s:
            s.execute(delete(DownloadHold).where(DownloadHold.id == hold_id))

    def holds(self, mount_id: str) -> int:
        with self.db.read() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(DownloadHold)
                    .where(DownloadHold.mount_id == mount_id)
                )
                or 0
            )

    def live_sessions(self) -> int:
        with self.db.read() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(RestoreMount)
                    .where(RestoreMount.status.in_(LIVE_STATES))
                )
                or 0
            )

    def fail(self, mount_id: str, reason: str) -> None:
        with self.db.write() as s:
            row = s.get(RestoreMount, mount_id)
            if row is not None:
                row.status = FAILED
                row.error = reason

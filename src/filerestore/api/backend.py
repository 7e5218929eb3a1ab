"""The restore-layer calls the routes make, with the API's one rule added: who may see what.

Sessions, reader stacks, download holds and cleanup are the restore layer's
(:class:`~filerestore.restore.sessions.SessionManager`); the catalog is
:mod:`filerestore.catalog`. A session belongs to the token that created it (``owner``):
another token gets MountNotFoundError for it, exactly as for an id that never existed, so a
session id leaks nothing; an admin token sees all.

A download keeps a reader stack and a download hold for as long as the response streams,
which outlives the request handler: :class:`Transfer` holds both in an ExitStack that the
response closes when it ends (sent, failed, or the client went away).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

from filerestore.errors import MountNotFoundError
from filerestore.restore.sessions import Session, SessionManager
from filerestore.restore.stack import Stack


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


class Transfer:
    """A session's stack and download hold, kept until :meth:`close` (called once)."""

    def __init__(self, manager: SessionManager, session: Session, who: Principal) -> None:
        self._exits = ExitStack()
        self.session = session
        try:
            self.stack: Stack = self._exits.enter_context(manager.stack(session.mount_id))
            self._exits.enter_context(manager.download(session.mount_id, who.actor))
        except BaseException:
            self._exits.close()
            raise

    def close(self) -> None:
        self._exits.close()


class Backend:
    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager

    def mount(self, backup_id: int, volume: str | None, who: Principal) -> Session:
        return self.manager.mount(backup_id, volume, owner=who.owner)

    def visible(self, mount_id: str, who: Principal) -> Session:
        if len(mount_id) > 64:
            raise MountNotFoundError(f"no session with id {mount_id[:64]}...")
        session = self.manager.get(mount_id)
        if not who.admin and session.owner != who.owner:
            raise MountNotFoundError(f"no session with id {mount_id} (expired or unmounted?)")
        return session

    def opened(self, mount_id: str, who: Principal) -> Session:
        """A mounted session the caller may use; the access is recorded."""
        self.visible(mount_id, who)
        return self.manager.touch(mount_id)

    def unmount(self, mount_id: str, who: Principal) -> Session:
        session = self.visible(mount_id, who)
        self.manager.unmount(mount_id, actor=who.actor)
        return session

    def mounts(self, who: Principal) -> list[Session]:
        sessions = self.manager.list()
        return sessions if who.admin else [s for s in sessions if s.owner == who.owner]

    def transfer(self, session: Session, who: Principal) -> Transfer:
        return Transfer(self.manager, session, who)

"""Issue 8, defect 7: an unmount whose second transaction fails leaves the row
``unmounting``; a retry succeeds as soon as the database takes writes again (before, it got
409 until cleanup found the row stuck, up to stuck_timeout + cleanup_interval: 25 minutes).

The failure is the database refusing the unmount's DELETE, injected with a SQLAlchemy
event on the real engine (SQLite and PostgreSQL), as a full disk or a lost connection
would refuse it between the two transactions."""

from __future__ import annotations

from contextlib import AbstractContextManager

import pytest
from sqlalchemy import select

from filerestore.db import Database
from filerestore.db.models import AuditEvent, RestoreMount
from filerestore.errors import DatabaseUnavailableError, MountStateError
from filerestore.service.sessions import SessionManager
from tests.dbfaults import statements_fail
from tests.service.sessionsetup import session_manager, user


@pytest.fixture
def manager(db, make_settings):
    yield from session_manager(db, make_settings(max_sessions=1))


def deletes_of_sessions_fail(db: Database) -> AbstractContextManager[None]:
    """The database refuses every DELETE of a session row while inside."""
    return statements_fail(db, "DELETE FROM RESTORE_MOUNTS", "disk I/O error (injected)")


def status(db: Database, mount_id: str) -> str | None:
    with db.read() as s:
        row = s.get(RestoreMount, mount_id)
        return None if row is None else row.status


def test_a_retry_ends_a_half_failed_unmount(manager, db, make_settings, backups):
    alice = user("alice")
    session = manager.mount(backups["full"], None, alice)
    with deletes_of_sessions_fail(db), pytest.raises(DatabaseUnavailableError):
        manager.unmount(session.mount_id, alice)
    assert status(db, session.mount_id) == "unmounting"  # the slot is still held
    # the retry comes to another worker (its own manager and readers), right away
    other = SessionManager(db, make_settings(max_sessions=1))
    try:
        other.unmount(session.mount_id, alice)
        assert status(db, session.mount_id) is None
        # the slot is free: the limit of one lets a new session in
        assert other.mount(backups["inc1"], None, user("bob")).status == "mounted"
    finally:
        other.readers.close_all()
    with db.read() as s:
        ends = s.scalars(
            select(AuditEvent.outcome).where(
                AuditEvent.mount_id == session.mount_id, AuditEvent.action == "unmount"
            )
        ).all()
    assert ends == ["ok"]  # the failed attempt's event went with its transaction


def test_a_mounting_session_still_refuses_an_unmount(manager, db, backups):
    session = manager.mount(backups["full"], None, user("alice"))
    with db.write() as s:
        row = s.get(RestoreMount, session.mount_id)
        assert row is not None
        row.status = "mounting"
    with pytest.raises(MountStateError, match="mounting"):
        manager.unmount(session.mount_id, user("alice"))

"""Issue 8, defect 6, on SQLite and PostgreSQL: a download's audit row is written before its
first byte and a download whose row cannot be written is refused (or, with audit_fail_open,
served with its event only logged); rows are capped; old rows expire in batches; the
unauthenticated-refusal log keeps its rate and loses no count.

The database's refusal to write is injected with a SQLAlchemy event on the real engine,
raising what SQLite raises on a full disk."""

from __future__ import annotations

import json
import logging
from contextlib import AbstractContextManager
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from filerestore.db import Database
from filerestore.db.models import AuditEvent, DownloadHold, utcnow
from filerestore.errors import StateDiskFullError
from filerestore.logs import fields_of
from filerestore.service import audit, cleanup
from filerestore.service.checkout import Download
from filerestore.service.refusals import RefusalLog, TokenBucket
from filerestore.service.sessions import SessionManager
from tests.dbfaults import statements_fail
from tests.service.sessionsetup import ANYONE, user


def audit_rows_fail(db: Database) -> AbstractContextManager[None]:
    """The database refuses every new audit row while inside, as a full disk does."""
    return statements_fail(db, "INSERT INTO AUDIT_EVENTS", "database or disk is full")


def download_rows(db: Database) -> list[tuple[str, str | None, int | None]]:
    with db.read() as s:
        return [
            (e.outcome, e.path, e.bytes)
            for e in s.scalars(
                select(AuditEvent).where(AuditEvent.action == "download").order_by(AuditEvent.id)
            )
        ]


def holds(db: Database) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(DownloadHold)) or 0


def test_a_download_row_is_written_before_the_first_byte(db, make_settings, backups):
    manager = SessionManager(db, make_settings())
    session = manager.mount(backups["full"], None, ANYONE)
    checkout = manager.checkout(session.mount_id, ANYONE, Download("download", "/hello.txt"))
    try:
        assert download_rows(db) == [("started", "/hello.txt", 0)]  # before any byte
        for _ in checkout.counted(iter([b"hello"])):
            pass
    finally:
        checkout.release()
    assert download_rows(db) == [("ok", "/hello.txt", 5)]  # the same row, completed
    manager.readers.close_all()


@pytest.mark.parametrize("fail_open", [False, True])
def test_a_download_whose_row_cannot_be_written(db, make_settings, backups, caplog, fail_open):
    manager = SessionManager(db, make_settings(audit_fail_open=fail_open))
    session = manager.mount(backups["full"], None, ANYONE)
    with audit_rows_fail(db), caplog.at_level(logging.INFO):
        # browsing writes nothing the trail needs: it goes on either way
        with manager.checkout(session.mount_id, ANYONE) as browsing:
            assert browsing.stack.fs.stat("/hello.txt").size > 0
        if not fail_open:
            with pytest.raises(StateDiskFullError):
                manager.checkout(session.mount_id, ANYONE, Download("download", "/hello.txt"))
        else:
            served = manager.checkout(session.mount_id, ANYONE, Download("download", "/hello.txt"))
            for _ in served.counted(iter([b"hello"])):
                pass
            served.release()
    assert download_rows(db) == [] and holds(db) == 0
    lines = [r.getMessage() for r in caplog.records]
    unaudited = [line for line in lines if "without its audit row" in line]
    assert len(unaudited) == (1 if fail_open else 0)
    if fail_open:  # the event still reaches the log
        events = [fields_of(r) for r in caplog.records if r.name == "filerestore.audit"]
        assert any(f.get("action") == "download" and f.get("outcome") == "ok" for f in events)
    manager.readers.close_all()


def test_rows_are_capped(db, make_settings, backups):
    manager = SessionManager(db, make_settings(audit_text_limit=100))
    long_path = "/" + "a" * 5000
    manager.audit.record(
        audit.Event("alice", "register", "failed", path=long_path, detail="x" * 9000)
    )
    session = manager.mount(backups["full"], None, user("alice"))
    checkout = manager.checkout(session.mount_id, user("alice"), Download("archive", long_path))
    checkout.release()
    with db.read() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.path.is_not(None))).all()
    assert len(rows) == 2
    for row in rows:
        for text in (row.path, row.detail):
            if text is not None and len(text) > 100:
                assert text.startswith(long_path[:100] if text[0] == "/" else "x" * 100)
                assert text.endswith(" more characters]") and len(text) < 140
    manager.readers.close_all()


def test_old_rows_expire_in_batches(db, make_settings, backups):
    manager = SessionManager(db, make_settings(audit_retention_days=90))
    now = utcnow()
    old = now - timedelta(days=91)
    n_old = cleanup.AUDIT_BATCH * 2 + 7  # three batches, the last one short
    with db.write() as s:
        s.execute(
            insert(AuditEvent),
            [
                {"time": old, "actor": "x", "action": "auth", "outcome": "refused"}
                for _ in range(n_old)
            ],
        )
        s.execute(
            insert(AuditEvent),
            [{"time": now - timedelta(days=89), "actor": "y", "action": "mount", "outcome": "ok"}],
        )
    service = cleanup.CleanupService(manager, interval=3600)
    service.run_once()
    with db.read() as s:
        left = s.scalars(select(AuditEvent.actor)).all()
    assert left == ["y"]
    assert service.status().audit_rows_deleted == n_old
    manager.readers.close_all()


def test_refusal_log_keeps_its_rate_and_every_count(caplog):
    clock = [0.0]
    refusals = RefusalLog(rate=2.0, burst=3, text_limit=50, clock=lambda: clock[0])
    with caplog.at_level(logging.INFO, logger="filerestore.audit"):
        logged = [
            refusals.refused("10.0.0.1", "/" + "p" * 60_000, "missing bearer token")
            for _ in range(1000)
        ]
        assert sum(logged) == 3  # the burst, then nothing until a token comes back
        clock[0] += 0.5  # one token at 2 a second
        assert refusals.refused("10.0.0.1", "/x", "missing bearer token")
    lines = [fields_of(r) for r in caplog.records]
    assert len(lines) == 4
    assert all(len(json.dumps(line)) < 400 for line in lines)  # the 60 KB path is cut
    assert [line["suppressed"] for line in lines] == [0, 0, 0, 997]


def test_token_bucket_refills_at_its_rate():
    clock = [100.0]
    bucket = TokenBucket(rate=4.0, burst=2, clock=lambda: clock[0])
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock[0] += 0.25  # one token at 4 a second
    assert [bucket.take() for _ in range(2)] == [True, False]
    clock[0] += 60  # never more than the burst saved up
    assert [bucket.take() for _ in range(3)] == [True, True, False]

"""Cleanup on SQLite and PostgreSQL: expiry (never during a download), stuck transitions,
emergency cleanup, reconciliation after SIGKILL, and two worker processes cleaning once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from filerestore.db.models import AuditEvent, DownloadHold, RestoreMount, utcnow
from filerestore.errors import SessionLimitError
from filerestore.service.cleanup import (
    CleanupService,
    clean_all,
    clean_stuck,
    expire,
    reconcile,
)
from filerestore.service.resources import resource_figures
from filerestore.service.sessions import SessionManager
from tests.service.sessionsetup import A_DOWNLOAD, ANYONE, ROOT, session_manager, worker_env


@pytest.fixture
def manager(db, make_settings):
    yield from session_manager(db, make_settings(max_sessions=4, stuck_timeout=60))


def set_row(db, mount_id, **values):
    with db.write() as s:
        s.execute(update(RestoreMount).where(RestoreMount.id == mount_id).values(**values))


def live_ids(db):
    with db.read() as s:
        return set(s.scalars(select(RestoreMount.id)))


def cleanup_events(db):
    with db.read() as s:
        return [
            (e.mount_id, e.outcome)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "cleanup"))
        ]


def test_expiry_never_takes_a_session_with_a_download(manager, backups, db):
    held = manager.mount(backups["full"], None, ANYONE)
    idle = manager.mount(backups["inc1"], None, ANYONE)
    fresh = manager.mount(backups["inc2"], None, ANYONE)
    past = utcnow() - timedelta(seconds=1)
    with manager.checkout(held.mount_id, ANYONE, A_DOWNLOAD):
        set_row(db, held.mount_id, expires_at=past)
        set_row(db, idle.mount_id, expires_at=past)
        assert expire(manager) == [idle.mount_id]
        assert live_ids(db) == {held.mount_id, fresh.mount_id}
    # the download's end refreshed the session; once idle again it goes
    assert manager.get(held.mount_id, ANYONE).expires_at > utcnow()
    set_row(db, held.mount_id, expires_at=past)
    assert expire(manager) == [held.mount_id]
    assert cleanup_events(db) == [(idle.mount_id, "expired"), (held.mount_id, "expired")]
    assert manager.readers.mount_ids() == {fresh.mount_id}


def test_stuck_and_emergency(manager, backups, db):
    stuck = manager.mount(backups["full"], None, ANYONE)
    recent = manager.mount(backups["inc1"], None, ANYONE)
    other = manager.mount(backups["inc2"], None, ANYONE)
    long_ago = utcnow() - timedelta(seconds=61)
    set_row(db, stuck.mount_id, status="unmounting", status_changed_at=long_ago)
    set_row(db, recent.mount_id, status="mounting", status_changed_at=utcnow())
    assert clean_stuck(manager) == [stuck.mount_id]
    with manager.checkout(other.mount_id, ANYONE, A_DOWNLOAD):
        assert sorted(clean_all(manager)) == sorted([recent.mount_id, other.mount_id])
    assert live_ids(db) == set()
    with db.read() as s:
        assert s.scalars(select(DownloadHold)).all() == []
    assert Counter(o for _, o in cleanup_events(db)) == {"stuck": 1, "emergency": 2}


def test_holds_of_other_hosts_are_dropped_when_too_old(db, make_settings, backups):
    manager = SessionManager(db, make_settings(download_hold_timeout=600))
    session = manager.mount(backups["full"], None, ANYONE)
    now = utcnow()
    with db.write() as s:
        for host, age in (("elsewhere", 601), ("elsewhere", 10), (manager.me.host, 601)):
            s.add(
                DownloadHold(
                    mount_id=session.mount_id,
                    host=host,
                    pid=manager.me.pid,  # alive here, so only the other host's age counts
                    pid_start=manager.me.start,
                    started_at=now - timedelta(seconds=age),
                )
            )
    reconcile(manager)
    with db.read() as s:
        left = sorted(
            (h.host, round((now - h.started_at).total_seconds()))
            for h in s.scalars(select(DownloadHold))
        )
    assert left == [("elsewhere", 10), (manager.me.host, 601)]
    manager.readers.close_all()


def test_service_runs_on_its_interval_and_reports(manager, backups, db):
    session = manager.mount(backups["full"], None, ANYONE)
    service = CleanupService(manager, interval=0.2)
    service.start()
    try:
        set_row(db, session.mount_id, expires_at=utcnow() - timedelta(seconds=1))
        deadline = time.monotonic() + 20
        while session.mount_id in live_ids(db) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert session.mount_id not in live_ids(db)
        while service.status().runs < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the next run, whenever a loaded machine lets it happen
        status = service.status()
        assert status.running and status.runs >= 2 and status.sessions_cleaned == 1
        assert status.failures == 0
        assert status.next_run is not None and status.last_run is not None
        assert timedelta(0) < status.next_run - status.last_run <= timedelta(seconds=0.2)
    finally:
        service.stop()
    assert not service.status().running


def test_resource_figures(manager, backups):
    session = manager.mount(backups["full"], None, ANYONE)
    with manager.checkout(session.mount_id, ANYONE, A_DOWNLOAD):  # a stack and a hold
        figures = resource_figures(manager)
    assert (figures.sessions_used, figures.sessions_limit) == (1, 4)
    assert figures.readers_open == 1  # the stack the mount opened, lent out from the pool
    assert figures.downloads_in_progress == 1
    vm_rss_kib = next(
        int(line.split()[1])
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    assert abs(figures.memory_rss_bytes - vm_rss_kib * 1024) < 32 << 20


def test_sigkilled_process_is_reconciled(db, make_settings, backups):
    settings = make_settings(max_sessions=2)
    manager = SessionManager(db, settings)
    browsing = manager.mount(backups["full"], None, ANYONE)
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.service.cleanup_worker",
            "hang",
            browsing.mount_id,
            str(backups["inc1"]),
        ],
        env=worker_env(settings),
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        statuses = sorted(s.status for s in manager.list(ANYONE))
        assert statuses == ["mounted", "mounting"]
        assert manager.get(browsing.mount_id, ANYONE).downloads == 1
        with pytest.raises(SessionLimitError):  # the dead process's row holds a slot
            manager.mount(backups["inc2"], None, ANYONE)
        # start-up reconciliation: a new service's first pass
        CleanupService(manager, interval=3600).run_once()
        assert manager.get(browsing.mount_id, ANYONE).downloads == 0
        assert manager.mount(backups["inc2"], None, ANYONE).status == "mounted"
        assert [o for _, o in cleanup_events(db)] == ["reconciled"]
        assert reconcile(manager) == []  # nothing left to do
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        manager.readers.close_all()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_cleanup_processes_clean_each_session_once(db, make_settings, backups, tmp_path):
    settings = make_settings(max_sessions=200)
    manager = SessionManager(db, settings)
    now = utcnow()
    ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(150)]
    with db.write() as s:
        for mount_id in ids:
            s.add(
                RestoreMount(
                    id=mount_id,
                    backup_id=backups["full"],
                    volume="disk",
                    volume_auto=True,
                    filesystem_type="ext4",
                    mount_mode="ro",
                    status="mounted",
                    owner="",
                    created_at=now,
                    last_accessed_at=now,
                    expires_at=now - timedelta(seconds=1),
                    status_changed_at=now,
                )
            )
    start = tmp_path / "start"
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.service.cleanup_worker", "clean", str(start)],
            env=worker_env(settings),
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(2)
    ]
    time.sleep(1.5)  # both connected and waiting
    start.touch()
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0]
    per_worker = [set(o.split()) for o in outputs]
    assert per_worker[0].isdisjoint(per_worker[1])
    assert per_worker[0] | per_worker[1] == set(ids)
    events = Counter(m for m, _ in cleanup_events(db))
    assert set(events) == set(ids) and set(events.values()) == {1}
    assert live_ids(db) == set()
    print("cleaned per worker:", [len(p) for p in per_worker])
    manager.readers.close_all()

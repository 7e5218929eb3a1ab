"""Sessions on SQLite and PostgreSQL: mount, reuse, limits, failures, access, downloads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from filerestore.db.models import AuditEvent, Backup, Repository, RestoreMount, utcnow
from filerestore.errors import (
    BackupFileMissingError,
    BackupNotFoundError,
    DownloadLimitError,
    MountNotFoundError,
    MountStateError,
    NoFilesystemError,
    RepositoryUnavailableError,
    SessionLimitError,
    SessionQuotaError,
    VolumeNotFoundError,
)
from filerestore.service.sessions import SessionManager
from tests.imagebuild.catalog_repo import FILES
from tests.service.sessionsetup import A_DOWNLOAD, ANYONE, ROOT, session_manager, user, worker_env


@pytest.fixture
def manager(db, make_settings):
    yield from session_manager(db, make_settings(max_sessions=3, max_downloads_per_session=2))


def rows(db):
    with db.read() as s:
        return {r.id: (r.status, r.backup_id) for r in s.scalars(select(RestoreMount))}


def test_mount_reads_the_backup_and_unmount_removes_it(manager, backups, db):
    session = manager.mount(backups["inc2"], None, user("alice"))
    assert (session.status, session.volume, session.filesystem_type) == ("mounted", "disk", "ext4")
    assert (session.mount_path, session.nbd_device, session.mount_mode) == (None, None, "ro")
    assert session.expires_at - session.last_accessed_at == timedelta(seconds=3600)
    # the incremental's data comes through its chain from the full backup's filesystem
    with manager.checkout(session.mount_id, ANYONE) as checkout:
        for name, data in FILES.items():
            reader = checkout.stack.fs.open(name)
            assert reader.read_at(0, reader.size) == data
    assert [s.mount_id for s in manager.list(ANYONE)] == [session.mount_id]
    manager.unmount(session.mount_id, user("alice"))
    assert rows(db) == {}
    with pytest.raises(MountNotFoundError):
        manager.get(session.mount_id, ANYONE)
    with db.read() as s:
        actions = [
            (e.action, e.outcome)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.mount_id == session.mount_id))
        ]
    assert actions == [("mount", "ok"), ("unmount", "ok")]


def test_same_backup_and_volume_reuses_the_session(manager, backups):
    first = manager.mount(backups["full"], None, user("bob"))
    assert manager.mount(backups["full"], None, user("bob")).mount_id == first.mount_id
    assert manager.mount(backups["full"], "disk", user("bob")).mount_id == first.mount_id
    other = manager.mount(backups["inc1"], None, user("bob"))
    assert other.mount_id != first.mount_id
    assert len(manager.list(ANYONE)) == 2


def test_limit_names_only_the_callers_own_sessions(manager, backups, db):
    """Issue 8, defects 8 and 9: the refusal is 429 with Retry-After, and a non-admin sees
    only its own sessions in it (before: every user's mount id, backup, owner, expiry)."""
    mine = manager.mount(backups["full"], None, user("late"))
    others = [manager.mount(backups[n], None, user(f"user-{n}")) for n in ("inc1", "inc2")]
    with pytest.raises(SessionLimitError) as caught:
        manager.mount(backups["other"], None, user("late"))
    assert caught.value.http_status == 429 and caught.value.code == "session_limit"
    message = str(caught.value)
    assert "3 of 3" in message and mine.mount_id in message
    for s in others:
        assert s.mount_id not in message and s.owner not in message
    # Retry-After: when the first session would expire if idle (in an hour, the idle
    # timeout), said as at most 10 minutes: a session may end before it expires
    assert caught.value.retry_after == 600
    with pytest.raises(SessionLimitError) as seen_by_admin:
        manager.mount(backups["other"], None, ANYONE)
    for s in [mine, *others]:
        assert s.mount_id in str(seen_by_admin.value)
    assert len(rows(db)) == 3  # nothing half-created
    manager.unmount(others[0].mount_id, ANYONE)
    assert manager.mount(backups["other"], None, ANYONE).status == "mounted"


def test_one_owner_cannot_take_every_slot(db, make_settings, backups):
    """Issue 8, defect 9: past max_sessions_per_owner one token is refused (429, its own
    quota) while the host still has slots for others; admins are not limited by it."""
    manager = SessionManager(db, make_settings(max_sessions=4, max_sessions_per_owner=2))
    hog = user("hog")
    held = [manager.mount(backups[n], None, hog) for n in ("full", "inc1")]
    with pytest.raises(SessionQuotaError) as caught:
        manager.mount(backups["inc2"], None, hog)
    assert caught.value.http_status == 429 and caught.value.retry_after is not None
    assert manager.mount(backups["full"], None, hog).mount_id == held[0].mount_id  # reuse
    assert manager.mount(backups["inc2"], None, user("other")).status == "mounted"
    assert manager.mount(backups["other"], None, ANYONE).status == "mounted"  # an admin
    manager.unmount(held[0].mount_id, hog)
    assert manager.mount(backups["inc2"], None, hog).status == "mounted"
    manager.readers.close_all()


def test_a_mount_waits_for_a_slot_first_come_first_served(db, make_settings, backups):
    """Issue 8, defect 9: with mount_wait_timeout, a mount on a full host waits; slots
    freed one by one go to the waiters in the order they came; one that waits past the
    timeout is refused (429)."""
    settings = make_settings(max_sessions=1, mount_wait_timeout=60)
    manager = SessionManager(db, settings)
    holder = manager.mount(backups["full"], None, user("holder"))
    order: list[str] = []
    done = threading.Event()
    failures: list[BaseException] = []

    def wait(name: str, backup: str) -> None:
        try:
            session = manager.mount(backups[backup], None, user(name))
            order.append(name)
            if name == "first":
                manager.unmount(session.mount_id, user(name))  # its slot goes to "second"
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            if name == "second":
                done.set()

    def queued(n: int) -> None:
        deadline = time.monotonic() + 60
        while manager.slots.waiting() < n and not failures and time.monotonic() < deadline:
            time.sleep(0.01)
        assert manager.slots.waiting() == n, failures

    first = threading.Thread(target=wait, args=("first", "inc1"))
    first.start()
    queued(1)  # "first" is queued before "second" comes
    second = threading.Thread(target=wait, args=("second", "inc2"))
    second.start()
    queued(2)
    manager.unmount(holder.mount_id, user("holder"))
    first.join(60)
    second.join(60)
    assert done.is_set() and not failures, failures
    assert order == ["first", "second"]
    short = SessionManager(db, make_settings(max_sessions=1, mount_wait_timeout=0.3))
    with pytest.raises(SessionLimitError):  # "second" holds the one slot for an hour
        short.mount(backups["other"], None, user("late"))
    manager.readers.close_all()


def test_image_that_cannot_be_opened_ends_failed_with_its_reason(manager, backups, db):
    with pytest.raises(NoFilesystemError) as caught:
        manager.mount(backups["blank"], None, ANYONE)
    (failed,) = manager.list(ANYONE)
    assert failed.status == "failed" and failed.error == str(caught.value)
    with pytest.raises(MountStateError, match="failed"):
        manager.checkout(failed.mount_id, ANYONE)
    # a failed session holds no slot
    for name in ("full", "inc1", "inc2"):
        manager.mount(backups[name], None, ANYONE)
    manager.unmount(failed.mount_id, ANYONE)
    assert "failed" not in {status for status, _ in rows(db).values()}


def test_bad_input_leaves_no_row(manager, backups, tmp_path, db):
    with pytest.raises(BackupNotFoundError):
        manager.mount(12345, None, ANYONE)
    with pytest.raises(VolumeNotFoundError):
        manager.mount(backups["full"], "p7", ANYONE)
    (tmp_path / "repo" / "vm2" / "disk0.qcow2").unlink()
    with pytest.raises(BackupFileMissingError):
        manager.mount(backups["other"], None, ANYONE)
    with pytest.raises(MountNotFoundError):
        manager.unmount("no-such-id", ANYONE)
    assert rows(db) == {}


def test_unmounted_share_refuses_the_mount(manager, backups, db, tmp_path):
    share = tmp_path / "share"  # recorded as an NFS share, but nothing is mounted there
    (share / "vm").mkdir(parents=True)
    (share / "vm" / "d.qcow2").hardlink_to(tmp_path / "repo" / "vm1" / "disk0-full.qcow2")
    with db.write() as s:
        repo = Repository(name="nfs1", kind="nfs", root_path=str(share), enabled=True)
        s.add(repo)
        s.flush()
        backup = Backup(
            repository_id=repo.id,
            path="vm/d.qcow2",
            kind="full",
            virtual_size=8 << 20,
            created_at=utcnow(),
        )
        s.add(backup)
        s.flush()
        backup_id = backup.id
    with pytest.raises(RepositoryUnavailableError, match="not mounted"):
        manager.mount(backup_id, None, ANYONE)
    assert rows(db) == {}


def test_access_moves_expiry_forward(manager, backups):
    session = manager.mount(backups["full"], None, ANYONE)
    manager.touch_granularity = timedelta(0)
    time.sleep(0.05)
    manager.checkout(session.mount_id, ANYONE).release()
    touched = manager.get(session.mount_id, ANYONE)
    assert touched.last_accessed_at > session.last_accessed_at
    assert touched.expires_at - touched.last_accessed_at == timedelta(seconds=3600)
    with manager.checkout(session.mount_id, ANYONE):
        pass
    assert manager.get(session.mount_id, ANYONE).expires_at > touched.expires_at


def test_downloads_hold_the_session_and_are_limited(manager, backups):
    session = manager.mount(backups["full"], None, ANYONE)
    with (
        manager.checkout(session.mount_id, ANYONE, A_DOWNLOAD),
        manager.checkout(session.mount_id, ANYONE, A_DOWNLOAD),
    ):
        assert manager.get(session.mount_id, ANYONE).downloads == 2
        with (
            pytest.raises(DownloadLimitError),
            manager.checkout(session.mount_id, ANYONE, A_DOWNLOAD),
        ):
            pass
        with pytest.raises(MountStateError, match="download"):
            manager.unmount(session.mount_id, ANYONE)
    assert manager.get(session.mount_id, ANYONE).downloads == 0
    manager.unmount(session.mount_id, ANYONE)


def test_concurrent_readers_get_separate_stacks(manager, backups):
    session = manager.mount(backups["full"], None, ANYONE)
    inside = threading.Barrier(4)
    stacks = []

    def read() -> None:
        with manager.checkout(session.mount_id, ANYONE) as checkout:
            stack = checkout.stack
            stacks.append(stack)
            inside.wait(10)
            reader = stack.fs.open("hello.txt")
            assert reader.read_at(0, 100) == FILES["hello.txt"]

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(s) for s in stacks}) == 4
    assert manager.readers.open_count() == 4  # pooled for the next callers
    manager.unmount(session.mount_id, ANYONE)
    assert manager.readers.open_count() == 0


def test_twenty_threads_never_exceed_the_limit(db, make_settings, backups):
    """20 threads of 20 owners mount 5 backups against a limit of 3, on both databases, in
    3 rounds: all 20 try at once while the winners keep their sessions, then the winners
    unmount. A barrier makes each round a real race however loaded the machine is: exactly
    3 win it and 17 meet the limit, whatever order the threads run in."""
    manager = SessionManager(db, make_settings(max_sessions=3))
    names = ["full", "inc1", "inc2", "other", "full"]
    rounds = 3
    outcomes: list[tuple[int, str, str]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    together = threading.Barrier(20)

    def live() -> int:
        with db.read() as s:
            return (
                s.scalar(
                    select(func.count())
                    .select_from(RestoreMount)
                    .where(RestoreMount.status.in_(("mounting", "mounted", "unmounting")))
                )
                or 0
            )

    def work(i: int) -> None:
        try:
            for round_ in range(rounds):
                together.wait()
                try:
                    s = manager.mount(backups[names[(i + round_) % 5]], None, user(f"t{i}"))
                    outcome = ("mounted", s.mount_id)
                except SessionLimitError:
                    s, outcome = None, ("limit", "")
                with lock:
                    outcomes.append((round_, *outcome))
                together.wait()  # every attempt of this round is made: the slots are held
                if i == 0:
                    with lock:
                        outcomes.append((round_, "live", str(live())))
                together.wait()
                if s is not None:
                    manager.unmount(s.mount_id, user(f"t{i}"))
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:  # let the others leave their barrier, report it
            failures.append(exc)
            together.abort()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    manager.readers.close_all()
    assert failures == []
    for round_ in range(rounds):
        these = [(o, m) for r, o, m in outcomes if r == round_]
        assert sum(o == "mounted" for o, _ in these) == 3, these
        assert sum(o == "limit" for o, _ in these) == 17, these
        assert ("live", "3") in these
    assert rows(db) == {}
    mounted = {m for _, o, m in outcomes if o == "mounted"}
    with db.read() as s:
        audited = sorted(
            (e.action, e.mount_id, e.outcome)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.outcome == "ok"))
        )
    # every session handed out was recorded, and so was its end: no lost rows
    assert audited == sorted((a, m, "ok") for m in mounted for a in ("mount", "unmount"))
    assert len(mounted) == 3 * rounds


def test_three_processes_never_exceed_the_limit(db, make_settings, backups, tmp_path):
    settings = make_settings(max_sessions=2)
    start = tmp_path / "start"
    ids = [str(backups[n]) for n in ("full", "inc1", "inc2", "other")]
    env = {**worker_env(settings), "FILERESTORE_MAX_SESSIONS": str(settings.max_sessions)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.service.cleanup_worker", "churn", str(start), *ids],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(3)
    ]
    worst = 0
    for w in workers:
        assert w.stdout is not None and w.stdout.readline().strip() == "ready"
    start.touch()
    while any(w.poll() is None for w in workers):
        with db.read() as s:
            live = s.scalar(
                select(func.count())
                .select_from(RestoreMount)
                .where(RestoreMount.status.in_(("mounting", "mounted", "unmounting")))
            )
        worst = max(worst, live or 0)
    results = [w.communicate(timeout=120)[0].split() for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0]
    mounted = sum(int(r[0]) for r in results)
    assert mounted + sum(int(r[1]) for r in results) == 30
    assert worst <= 2
    assert rows(db) == {}
    with db.read() as s:
        ok_mounts = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "mount", AuditEvent.outcome == "ok")
        )
    assert ok_mounts == mounted


def test_sessions_leak_no_descriptors(manager, backups):
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    manager.unmount(
        manager.mount(backups["inc2"], None, ANYONE).mount_id, ANYONE
    )  # warm up pools and caches
    before = fds()
    for _ in range(25):
        session = manager.mount(backups["inc2"], None, ANYONE)
        with manager.checkout(session.mount_id, ANYONE) as checkout:
            checkout.stack.fs.stat("/hello.txt")
        manager.unmount(session.mount_id, ANYONE)
    assert fds() == before
    assert manager.readers.open_count() == 0


def test_a_session_is_visible_to_its_owner_and_admins_only(manager, backups):
    alice, bob = user("alice"), user("bob")
    session = manager.mount(backups["full"], None, alice)
    for call in (
        lambda: manager.checkout(session.mount_id, bob),
        lambda: manager.get(session.mount_id, bob),
        lambda: manager.unmount(session.mount_id, bob),
    ):
        with pytest.raises(MountNotFoundError) as caught:
            call()
        assert str(caught.value) == str(
            MountNotFoundError(f"no session with id {session.mount_id} (expired or unmounted?)")
        )
    assert manager.list(bob) == []
    assert [s.mount_id for s in manager.list(alice)] == [session.mount_id]
    with manager.checkout(session.mount_id, ANYONE) as checkout:  # an admin
        assert checkout.session.owner == "alice"
    manager.unmount(session.mount_id, alice)

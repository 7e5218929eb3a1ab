"""Sessions' FUSE views (the ``session_fuse`` setting) on a real server, on SQLite and on
PostgreSQL, and the real /dev/fuse: a session gets a read-only view at its ``mount_path``
that ``diff -r`` and ``stat`` find equal to the image's source tree, and the view goes away
when the session ends: through the API, by the CLI's cleanup, by the service's own expiry,
and at reconciliation when its session row is gone or its process died."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from filerestore.db.engine import Database
from tests.api.served import OneUserSite
from tests.api.server import ROOT, Server, cli, open_session
from tests.dbfixtures import (  # noqa: F401 - fixtures
    database_url,
    fresh_pg_database,
    pg_server_url,
)
from tests.fuse.mounting import FSTYPE, mounts_at
from tests.imagebuild.restore_tree import restore_tree
from tests.jobs.conftest import build_repository

pytestmark = pytest.mark.timeout(300)
API = "/api/v1"


@dataclass
class Views(OneUserSite):
    env: dict[str, str]
    state: Path
    root: Path
    backup: int
    #: the server's database: its SQLite file in ``state`` or a PostgreSQL database
    database_url: str
    #: the repository the backups are in (removed at the end)
    repo: Path

    def mount(self) -> dict[str, Any]:
        with self.client() as c:
            return open_session(c, self.backup)

    def sql(self, statement: str, **params: Any) -> list[Any]:
        db = Database(self.database_url)
        try:
            with db.engine.begin() as conn:
                result = conn.execute(text(statement), params)
                return list(result.fetchall()) if result.returns_rows else []
        finally:
            db.dispose()

    def row(self, mount_id: str) -> tuple[str | None, int | None] | None:
        found = self.sql(
            "SELECT mount_path, fuse_pid FROM restore_mounts WHERE id = :id", id=mount_id
        )
        return None if not found else (found[0][0], found[0][1])

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(self.env, *args, timeout=120)


def _start(
    base: Path, db_url: str | None, **extra: str
) -> tuple[Server, dict[str, str], Path, int, str]:
    state = base / "state"
    state.mkdir()
    repo = ROOT / ".cache" / "jobs-repos" / f"{os.getpid()}-views-{base.name}"
    backups, tokens = build_repository(repo, state, db_url)
    env = {
        "FILERESTORE_STATE_DIR": str(state),
        "FILERESTORE_SESSION_FUSE": "true",
        "FILERESTORE_SESSION_FUSE_ROOT": str(base / "views"),
        "FILERESTORE_MAX_SESSIONS": "16",
        **extra,
    }
    if db_url:
        env["FILERESTORE_DATABASE_URL"] = db_url
    server = Server(env, workers=2, log=base / "server.log").start()
    return server, env, repo, backups["ext4"], tokens["alice"]


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for SQLite (a file in the state directory), else a fresh PostgreSQL database."""
    os.environ.pop("FILERESTORE_DATABASE_URL", None)
    if request.param == "sqlite":
        yield None
        return
    with fresh_pg_database(request.getfixturevalue("pg_server_url"), "fr_views") as url:
        yield url


def _views(base: Path, db_url: str | None, **extra: str) -> Views:
    server, env, repo, backup, token = _start(base, db_url, **extra)
    url = db_url or f"sqlite:///{base / 'state' / 'filerestore.db'}"
    return Views(server, token, env, base / "state", base / "views", backup, url, repo)


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory, database: str | None) -> Iterator[Views]:
    found = _views(tmp_path_factory.mktemp("views"), database)
    try:
        yield found
    finally:
        found.server.stop()
        _leave_nothing(found)
        shutil.rmtree(found.repo, ignore_errors=True)


def _leave_nothing(found: Views) -> None:
    """No view is left behind, whatever failed: the CLI's cleanup, then a lazy unmount of
    any filerestore mount still below the views' root (its process then exits)."""
    found.cli("cleanup", "--all", "--yes")
    root = found.root.resolve()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" ")
        point = Path(fields[4])
        if fields[fields.index("-", 6) + 1] == FSTYPE and point.parent == root:
            subprocess.run(["umount", "-l", str(point)], check=False)


def _gone(path: Path, pid: int | None, timeout: float = 30) -> None:
    """The view at ``path`` is unmounted, its directory removed and its process ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = pid is not None and Path(f"/proc/{pid}").exists() and not _zombie(pid)
        if FSTYPE not in mounts_at(path) and not path.exists() and not alive:
            return
        time.sleep(0.1)
    raise AssertionError(f"the view at {path} is still there: {mounts_at(path)}, pid {pid}")


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"


def test_a_session_has_a_view_of_its_tree_until_it_ends(views: Views) -> None:
    session = views.mount()
    path = Path(session["mount_path"])
    assert path.parent == views.root.resolve()
    assert mounts_at(path) == [FSTYPE]
    tree = restore_tree()
    diff = subprocess.run(
        ["diff", "-r", "--no-dereference", "-x", "lost+found", str(tree), str(path)],
        capture_output=True,
        text=True,
    )
    # diff compares no special files: it names each, and both sides must be the same kind
    unlike = [
        line
        for line in diff.stdout.splitlines()
        if not (
            line.startswith("File ") and line.endswith(" is a fifo") and " is a fifo while " in line
        )
    ]
    assert diff.returncode in (0, 1) and unlike == [] and not diff.stderr, diff.stdout
    for name in ("hello.txt", "docs", "link-relative", "sparse.bin"):
        # a directory's size is its filesystem's (ext4 blocks here, the host's in the tree)
        fmt = "%F|%a|%u|%g|%Y|%h" if name == "docs" else "%F|%a|%u|%g|%s|%Y|%h"
        want = subprocess.run(["stat", "-c", fmt, str(tree / name)], capture_output=True).stdout
        got = subprocess.run(["stat", "-c", fmt, str(path / name)], capture_output=True).stdout
        assert got == want, name
    with pytest.raises(OSError):
        (path / "new-file").write_text("refused")
    row = views.row(session["mount_id"])
    assert row is not None and row[0] == str(path)
    with views.client() as c:
        assert c.delete(f"{API}/restore/{session['mount_id']}").status_code == 204
    _gone(path, row[1])


def test_the_cli_cleanup_takes_views_away(views: Views) -> None:
    session = views.mount()
    path = Path(session["mount_path"])
    row = views.row(session["mount_id"])
    assert row is not None and mounts_at(path) == [FSTYPE]
    done = views.cli("cleanup", "--all", "--yes")
    assert done.returncode == 0, done.stderr
    assert session["mount_id"] in done.stdout
    _gone(path, row[1])


def test_reconciliation_takes_away_a_view_whose_session_row_is_gone(views: Views) -> None:
    session = views.mount()
    path = Path(session["mount_path"])
    row = views.row(session["mount_id"])
    assert row is not None
    # the rows a crashed worker left: the session is gone, its view is still mounted
    views.sql("DELETE FROM restore_mounts WHERE id = :id", id=session["mount_id"])
    assert mounts_at(path) == [FSTYPE]
    done = views.cli("cleanup")
    assert done.returncode == 0, done.stderr
    _gone(path, row[1])


def test_the_dead_endpoint_of_a_killed_view_is_taken_away(views: Views) -> None:
    session = views.mount()
    path = Path(session["mount_path"])
    row = views.row(session["mount_id"])
    assert row is not None and row[1] is not None
    os.kill(row[1], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not _zombie(row[1]) and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(OSError):  # "transport endpoint is not connected"
        os.listdir(path)
    done = views.cli("cleanup")
    assert done.returncode == 0, done.stderr
    assert mounts_at(path) == []
    # the session lives on, without a view
    assert views.row(session["mount_id"]) == (None, None)
    with views.client() as c:
        assert c.get(f"{API}/restore/{session['mount_id']}/files").status_code == 200
        assert c.delete(f"{API}/restore/{session['mount_id']}").status_code == 204


def test_the_service_expiry_ends_views(tmp_path: Path, database_url: str | None) -> None:  # noqa: F811
    # a database of its own (the module's server keeps running beside this one)
    os.environ.pop("FILERESTORE_DATABASE_URL", None)
    found = _views(
        tmp_path, database_url, FILERESTORE_IDLE_TIMEOUT="5", FILERESTORE_CLEANUP_INTERVAL="0.5"
    )
    try:
        session = found.mount()
        row = found.row(session["mount_id"])
        assert row is not None
        _gone(Path(session["mount_path"]), row[1])
        assert found.row(session["mount_id"]) is None
    finally:
        found.server.stop()
        _leave_nothing(found)
        shutil.rmtree(found.repo, ignore_errors=True)

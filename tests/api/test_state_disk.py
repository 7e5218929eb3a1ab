"""Issue 8, defect 6, against real servers: nobody can fill the state disk.

- a flood of requests without a valid token, with 60 KB paths, writes no row: it is
  counted in the metrics and logged at a bounded rate (before: one row each, 260 MB for
  4,000 requests);
- an authenticated refusal with a huge path writes a row cut at ``audit_text_limit``;
- audit rows older than ``audit_retention_days`` are deleted by the cleanup worker;
- below ``min_free_state_bytes`` free on the state directory's filesystem (as ``statvfs``
  says, read here independently) a mount is refused with 507 ``state_disk_full``;
- a download whose audit row cannot be written is refused before its first byte (fail
  closed), and served with ``audit_fail_open``: PostgreSQL is made to refuse audit rows by a
  trigger raising SQLSTATE 53100 (disk_full), what it raises on a full disk.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, insert, select

from filerestore.db.engine import Database
from filerestore.db.models import AuditEvent, DownloadHold, utcnow
from tests.api.server import Server
from tests.api.site import Site, running, start
from tests.dbfixtures import fresh_pg_database, pg_admin, pg_server_url  # noqa: F401
from tests.imagebuild.restore_tree import restore_tree

API = "/api/v1"
MiB = 1 << 20
FLOOD = 2000  # requests without a valid token
LONG = 60_000  # characters of each one's path
BURST = 20  # FILERESTORE_REFUSAL_LOG_BURST of the flooded server
RATE = 0.01  # FILERESTORE_REFUSAL_LOG_RATE of the flooded server


def tree_bytes(state: Path) -> int:
    return sum(p.stat().st_size for p in state.rglob("*") if p.is_file())


def refusal_lines(log: Path) -> list[dict[str, object]]:
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.startswith("{")]
    events = [json.loads(ln) for ln in lines]
    return [e for e in events if str(e.get("actor", "")).startswith("anonymous@")]


@pytest.fixture(scope="module")
def flooded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    env = {
        "FILERESTORE_REFUSAL_LOG_RATE": str(RATE),
        "FILERESTORE_REFUSAL_LOG_BURST": str(BURST),
        "FILERESTORE_AUDIT_TEXT_LIMIT": "256",
        "FILERESTORE_AUDIT_RETENTION_DAYS": "1",
        "FILERESTORE_CLEANUP_INTERVAL": "1",
    }
    with running(tmp_path_factory.mktemp("statedisk"), "flooded", env) as site:
        yield site


def test_a_flood_without_a_valid_token_writes_no_row(flooded: Site) -> None:
    before = tree_bytes(flooded.state)
    long_path = f"{API}/restore/{'m' * LONG}/files"
    started = time.monotonic()
    with httpx.Client(base_url=flooded.server.url, timeout=120) as anonymous:
        wrong = {"Authorization": "Bearer " + "x" * 64}
        for i in range(FLOOD):
            r = anonymous.get(long_path, headers=wrong if i % 2 else None)
            assert r.status_code == 401, r.text[:200]
    elapsed = time.monotonic() - started
    with flooded.client() as c:
        metrics = c.get("/metrics").text
    counted = re.search(r"^filerestore_auth_failures_total (\S+)$", metrics, re.M)
    assert counted is not None and float(counted.group(1)) == FLOOD
    assert not [r for r in flooded.rows() if r.actor.startswith("anonymous")]
    assert tree_bytes(flooded.state) - before <= 5 * MiB
    lines = refusal_lines(flooded.log)
    # the burst, then RATE lines a second: whatever the load, a bounded log
    assert 1 <= len(lines) <= BURST + math.ceil(elapsed * RATE) + 1
    assert all(len(json.dumps(e)) < 1024 for e in lines)  # each path cut at 256 characters
    suppressed = sum(int(str(e["suppressed"])) for e in lines)
    assert len(lines) + suppressed <= FLOOD  # every refusal counted once, at most


def test_an_authenticated_request_writes_a_capped_row(flooded: Site) -> None:
    mount = flooded.mount()
    hostile = "/docs" + ("/" + "n" * 250) * 15  # 3,770 bytes, every component legal
    with flooded.client() as c:
        r = c.get(f"{API}/restore/{mount}/download", params={"path": hostile})
        assert r.status_code == 404, r.text[:300]
        r = c.get(f"{API}/restore/{mount}/download-directory", params=[("path", hostile)] * 8)
        assert r.status_code == 404, r.text[:300]
    rows = [row for row in flooded.rows() if row.mount_id == mount and row.action != "mount"]
    assert {row.action for row in rows} == {"download", "archive"}, [
        (x.action, x.outcome, x.detail) for x in flooded.rows()
    ][-5:]
    for row in rows:
        assert row.path is not None and row.path.startswith(hostile[:256])
        assert re.fullmatch(r"\.\.\.\[\d+ more characters\]", row.path[256:])
        assert len(row.detail or "") <= 256 + len("...[99999 more characters]")


def test_old_audit_rows_are_deleted_by_the_cleanup_worker(flooded: Site) -> None:
    now = utcnow()
    db = Database(flooded.db_url)
    try:
        with db.write() as s:
            s.execute(
                insert(AuditEvent),
                [
                    {
                        "time": now - timedelta(days=2),
                        "actor": "old",
                        "action": "x",
                        "outcome": "ok",
                    }
                    for _ in range(500)
                ]
                + [
                    {
                        "time": now - timedelta(hours=20),
                        "actor": "recent",
                        "action": "x",
                        "outcome": "ok",
                    }
                ],
            )
    finally:
        db.dispose()
    deadline = time.monotonic() + 60  # the worker runs every second
    while time.monotonic() < deadline:
        actors = {r.actor for r in flooded.rows()}
        if "old" not in actors:
            break
        time.sleep(0.5)
    assert "old" not in actors and "recent" in actors


def test_a_mount_is_refused_while_the_state_disk_is_low(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    base = tmp_path_factory.mktemp("statedisk")
    st = os.statvfs(base)
    free = st.f_bavail * st.f_frsize
    env = {"FILERESTORE_MIN_FREE_STATE_BYTES": str(free + (1 << 40))}  # 1 TiB more than free
    site = start(base, "low", env)
    try:
        with site.client() as c:
            r = c.post(f"{API}/restore/mount", json={"backup_id": site.backup_id})
            assert r.status_code == 507, r.text
            assert r.json()["error"]["code"] == "state_disk_full"
            assert c.get(f"{API}/restore/mounts").json()["mounts"] == []
    finally:
        site.server.stop()
    assert "Traceback" not in site.log.read_text(errors="replace")


REFUSE_AUDIT = """
CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full';
END $$;
CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION refuse_audit();
"""


@pytest.fixture
def pg_database(pg_server_url: str) -> Iterator[str]:  # noqa: F811
    with fresh_pg_database(pg_server_url) as url:
        yield url


def test_a_download_whose_audit_row_cannot_be_written(
    tmp_path_factory: pytest.TempPathFactory, pg_database: str
) -> None:
    base = tmp_path_factory.mktemp("statedisk")
    closed = start(base, "closed", {}, pg_database)
    try:
        mount = closed.mount()  # its rows are written: the database refuses nothing yet
        with pg_admin(pg_database) as conn:
            conn.execute(REFUSE_AUDIT)
        # two nodes on one database: the second one serves unaudited downloads
        opened = Server(
            {
                "FILERESTORE_STATE_DIR": str(base / "open"),
                "FILERESTORE_DATABASE_URL": pg_database,
                "FILERESTORE_AUDIT_FAIL_OPEN": "true",
            },
            workers=1,
            log=base / "open.log",
        ).start()
        try:
            expected = (restore_tree() / "docs" / "readme.md").read_bytes()
            url = f"{API}/restore/{mount}/download"
            with closed.client() as c:
                assert c.get(f"{API}/restore/{mount}/files", params={"path": "/docs"}).is_success
                with c.stream("GET", url, params={"path": "/docs/readme.md"}) as r:
                    body = r.read()
                    assert r.status_code == 507, body[:300]
                assert json.loads(body)["error"]["code"] == "state_disk_full"
                r = c.get(f"{API}/restore/{mount}/download-directory", params={"path": "/docs"})
                assert r.status_code == 507, r.text[:300]
            with httpx.Client(
                base_url=opened.url,
                headers={"Authorization": f"Bearer {closed.token}"},
                timeout=120,
            ) as c:
                r = c.get(url, params={"path": "/docs/readme.md"})
                assert r.status_code == 200
                assert hashlib.sha256(r.content).digest() == hashlib.sha256(expected).digest()
        finally:
            opened.stop()
        with pg_admin(pg_database) as conn:
            conn.execute("DROP TRIGGER refuse_audit ON audit_events")
        db = Database(pg_database)
        try:
            with db.read() as s:  # no hold was left behind by the refused downloads
                assert s.scalar(select(func.count()).select_from(DownloadHold)) == 0
        finally:
            db.dispose()
        downloads = [r for r in closed.rows() if r.action in ("download", "archive")]
        assert downloads == []  # nothing was written while the database refused
        served = (base / "open.log").read_text(errors="replace")
        assert "without its audit row" in served
        assert '"action": "download", "outcome": "ok"' in served  # the event reached the log
    finally:
        closed.server.stop()
    assert "Traceback" not in closed.log.read_text(errors="replace")

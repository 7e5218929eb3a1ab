"""Concurrent downloads from several sessions are byte-exact, and a client that goes away
mid-download releases its session's download hold."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

from tests.api.conftest import API, Env

FILES = ("/docs/data.bin", "/sparse.bin", "/hello.txt", "/docs/readme.md", "/unicode/café.txt")


def test_twenty_concurrent_downloads_from_four_sessions(api: Env) -> None:
    owners = ("admin", "alice", "bob", "carol")
    mounts = {who: api.mount(who) for who in owners}
    assert len(set(mounts.values())) == 4
    expected = {p: hashlib.sha256(api.source.path(p).read_bytes()).hexdigest() for p in FILES}
    jobs = [(who, FILES[i % len(FILES)]) for i, who in enumerate(owners * 5)]
    assert len(jobs) == 20

    def fetch(job: tuple[str, str]) -> tuple[str, str, int]:
        who, path = job
        with api.client(who) as c:
            r = c.get(f"{API}/restore/{mounts[who]}/download", params={"path": path})
            return path, hashlib.sha256(r.content).hexdigest(), r.status_code

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(fetch, jobs))
    assert [(p, s) for p, _, s in results] == [(p, 200) for _, p in jobs]
    assert all(digest == expected[p] for p, digest, _ in results)


def holds(api: Env, mount_id: str) -> int:
    with sqlite3.connect(api.state_dir / "filerestore.db") as con:
        (n,) = con.execute(
            "SELECT count(*) FROM download_holds WHERE mount_id = ?", (mount_id,)
        ).fetchone()
    return int(n)


def test_disconnect_releases_the_hold(api: Env) -> None:
    mount = api.mount("dave")
    with (
        api.client("dave") as c,
        c.stream("GET", f"{API}/restore/{mount}/download", params={"path": "/big-sparse.bin"}) as r,
    ):
        assert r.status_code == 200
        stream = r.iter_raw(1 << 20)
        next(stream)
        assert holds(api, mount) == 1
        listed = c.get(f"{API}/restore/mounts").json()["mounts"]
        assert [m["downloads"] for m in listed if m["mount_id"] == mount] == [1]
        busy = c.delete(f"{API}/restore/{mount}")  # a held session is not unmounted
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "mount_state"
        # leaving the block closed the connection with most of the 5 GiB unsent
    deadline = time.monotonic() + 20
    while holds(api, mount) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert holds(api, mount) == 0
    with api.client("dave") as c:
        assert c.delete(f"{API}/restore/{mount}").status_code == 204
    with sqlite3.connect(api.state_dir / "filerestore.db") as con:
        rows = con.execute(
            "SELECT outcome, bytes FROM audit_events WHERE action='download' AND mount_id=?",
            (mount,),
        ).fetchall()
    assert len(rows) == 1 and rows[0][0] == "incomplete" and 0 < rows[0][1] < 5 << 30

"""The index through a real `filerestore serve` (two workers) on SQLite and PostgreSQL: backups
registered through the API are queued and indexed by the service's own runners; search (with
keyset pages), history and the streamed diff answer what the kernel saw in each state of the
chain (tests/imagebuild/index_chain.py), and bad requests get a 4xx with one message."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import pytest

from filerestore.catalog import add_repository
from filerestore.db import open_database
from filerestore.service.tokens import create_token
from tests.api.server import Server
from tests.imagebuild.index_chain import LATIN1, NAMES, facts, index_chain
from tests.index.conftest import make_repository, module_settings
from tests.index.kernel_diff import kernel_diff

API = "/api/v1"
DIALECTS = ("sqlite", "postgresql")


@dataclass
class Served:
    url: str
    admin: str
    alice: str
    ids: list[int]
    chain: Path

    def client(self, token: str | None = None) -> httpx.Client:
        token = self.alice if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url + API, headers=headers, timeout=120)


def _wait_indexed(c: httpx.Client, ids: list[int]) -> dict[int, Any]:
    """Poll the index states until every backup is done; a failed one fails at once.

    No deadline of its own: a hang ends at the test's pytest-timeout limit."""
    while True:
        r = c.get("/index")
        assert r.status_code == 200, r.text
        states = {b["backup_id"]: b for b in r.json()["backups"]}
        if all(states[i]["state"] == "done" for i in ids):
            return states
        assert not any(states[i]["state"] == "failed" for i in ids), states
        time.sleep(0.3)


@pytest.fixture(scope="module", params=DIALECTS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp(f"routes-{request.param}")
    with module_settings(request.param, request, tmp / "state") as settings:
        repo = make_repository("ext4", tmp / "repo")
        db = open_database(settings)
        add_repository(db, "r", str(repo))
        admin = create_token(db, "admin", admin=True)[1]
        alice = create_token(db, "alice")[1]
        db.dispose()
        env = {
            "FILERESTORE_STATE_DIR": str(settings.state_dir),
            "FILERESTORE_DATABASE_URL": settings.database_url or "",
            "FILERESTORE_INDEX_POLL_INTERVAL": "0.2",
        }
        if not settings.database_url:
            env["FILERESTORE_DATABASE_URL"] = f"sqlite:///{settings.sqlite_path}"
        server = Server(env, workers=2, log=tmp / "server.log").start()
        try:
            ids = []
            with httpx.Client(
                base_url=server.url + API, headers={"Authorization": f"Bearer {admin}"}
            ) as c:
                for name in NAMES:
                    body = {"repository": "r", "path": f"{name}.qcow2", "vm_name": "vm1"}
                    r = c.post("/backups", json={**body, "disk_name": "disk0"})
                    assert r.status_code == 201, r.text
                    ids.append(r.json()["id"])
            yield Served(server.url, admin, alice, ids, index_chain("ext4"))
        finally:
            server.stop()
            print((tmp / "server.log").read_text()[-3000:])


def test_registered_backups_are_indexed_by_the_service(served: Served) -> None:
    with served.client() as c:
        states = _wait_indexed(c, served.ids)
        counts = [states[b]["entries"] for b in served.ids]
        # the full backup's pass sees every entry the kernel saw (the root included; the
        # facts leave out /lost+found, empty here); an incremental's sees only what its
        # changed blocks hold
        assert counts[0] == len(facts(served.chain, 0)) + 1
        assert all(0 < n < counts[0] for n in counts[1:]), counts
        for backup_id in served.ids:
            one = c.get(f"/backups/{backup_id}/index").json()
            assert one["state"] == "done" and one["indexed_at"] is not None
        assert c.get("/backups/999999/index").status_code == 404
        listed = {b["id"]: b["index_state"] for b in c.get("/backups").json()["backups"]}
        assert listed == dict.fromkeys(served.ids, "done")
        assert c.get(f"/backups/{served.ids[2]}").json()["index_state"] == "done"
        jobs = c.get("/index/jobs", params={"state": "done"}).json()["jobs"]
        assert {j["backup_id"] for j in jobs} >= set(served.ids)


def _hits(c: httpx.Client, **params: Any) -> dict[str, list[int]]:
    """path -> backups holding it, over every page of two hits."""
    out: dict[str, list[int]] = {}
    cursor = None
    while True:
        paging = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = c.get("/search", params={**params, **paging})
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["hits"]) <= 2
        for hit in page["hits"]:
            assert hit["path"] not in out
            out[hit["path"]] = sorted(b["backup_id"] for v in hit["versions"] for b in v["backups"])
        if page["next_cursor"] is None:
            return out
        cursor = page["next_cursor"]


def test_search_across_backups_in_pages(served: Served) -> None:
    b0, b1, b2 = served.ids
    with served.client() as c:
        _wait_indexed(c, served.ids)
        want = {
            "/docs/report-2024.xlsx": [b0],
            "/docs/report-2024-final.xlsx": [b1, b2],
            "/docs/report-2025.xlsx": [b1, b2],
        }
        assert _hits(c, name="REPORT") == want
        assert _hits(c, glob="img_000[1-3].jpg") == {
            f"/photos/img_000{i}.jpg": [b0, b1, b2] for i in (1, 2, 3)
        }
        assert _hits(c, name="report", backup_id=[b1]) == {
            "/docs/report-2024-final.xlsx": [b1],
            "/docs/report-2025.xlsx": [b1],
        }
        assert _hits(c, name="main.c", path="/projects", kind="file") == {
            "/projects/alpha/main.c": [b0, b1],
            "/projects/beta/main.c": [b0],
            "/projects/alpha2/main.c": [b2],
        }
        assert _hits(c, name="report", vm="no-such-vm") == {}
        # a name that is not UTF-8, searched by its raw bytes
        raw = LATIN1.encode("utf-8", "surrogateescape")
        r = c.get(f"/search?name={quote_from_bytes(raw[:4])}")
        assert r.status_code == 200, r.text
        (hit,) = r.json()["hits"]
        assert hit["path_query"] == "/unicode/caf%E9-latin1.txt"
        assert hit["path"] == "/unicode/caf\\xe9-latin1.txt"
        # the size and mtime the kernel saw, in every backup
        (hit,) = c.get("/search", params={"glob": "report-2025.xlsx"}).json()["hits"]
        (version,) = hit["versions"]
        kernel = facts(served.chain, 1)["/docs/report-2025.xlsx"]
        assert version["size"] == kernel["size"]
        assert version["inode"] == kernel["inode"]


def test_versions_carry_the_fields_of_a_listing_entry(served: Served) -> None:
    """One vocabulary: a version found by search, by history and in a diff has the fields a
    browse entry of the same file has, by the same names and with the same values; the
    times and the symlink target are the kernel's."""
    _, b1, b2 = served.ids
    kernel = facts(served.chain, 1)
    with served.client() as c:
        _wait_indexed(c, served.ids)
        r = c.post("/restore/mount", json={"backup_id": b1})
        assert r.status_code in (200, 201), r.text
        mount_id = r.json()["mount_id"]
        try:
            for path in ("/docs/report-2025.xlsx", "/link"):
                r = c.get(f"/restore/{mount_id}/file-info", params={"path": path})
                assert r.status_code == 200, r.text
                entry = r.json()
                (hit,) = c.get("/search", params={"glob": path.rsplit("/", 1)[1]}).json()["hits"]
                (version,) = (v for v in hit["versions"] if b1 in _held(v))
                history = c.get(f"/backups/{b1}/history", params={"path": path}).json()
                (in_history,) = (v for v in history["versions"] if b1 in _held(v))
                shared = set(entry) - {"name", "path", "path_query", "content_type", "target_kind"}
                assert set(version) == shared | {"hash", "backups"}
                # (the access time is the one the version was first seen with)
                same = shared - {"atime_ns"}
                for v in (version, in_history):
                    assert {k: v[k] for k in same} == {k: entry[k] for k in same}, path
                    for field in ("kind", "mtime_ns", "ctime_ns", "inode", "nlink", "target"):
                        assert v[field] == kernel[path][field], (path, field)
        finally:
            c.delete(f"/restore/{mount_id}")
        r = c.get(f"/backups/{b1}/diff/{b2}", params={"path": "/docs"})
        changed = [json.loads(line) for line in r.text.splitlines()][:-1]
        assert changed, r.text
        for e in changed:
            for side in ("old", "new"):
                if e[side] is not None:
                    assert set(e[side]) == set(version), e


def _held(version: dict[str, Any]) -> list[int]:
    return [b["backup_id"] for b in version["backups"]]


def test_history_of_a_path(served: Served) -> None:
    b0, b1, b2 = served.ids
    with served.client() as c:
        _wait_indexed(c, served.ids)
        r = c.get(f"/backups/{b2}/history", params={"path": "/docs/readme.md"})
        assert r.status_code == 200, r.text
        h = r.json()
        assert [(e["event"], e["backup"]["backup_id"]) for e in h["events"]] == [
            ("appeared", b0),
            ("changed", b1),
        ]
        sizes = [facts(served.chain, s)["/docs/readme.md"]["size"] for s in (0, 1)]
        assert [v["size"] for v in h["versions"]] == sizes
        assert [[b["backup_id"] for b in v["backups"]] for v in h["versions"]] == [[b0], [b1, b2]]
        assert h["last_seen"]["backup_id"] == b2
        r = c.get(f"/backups/{b0}/history", params={"path": "/photos/img_0005.jpg"})
        assert [e["event"] for e in r.json()["events"]] == ["appeared", "vanished", "appeared"]
        r = c.get(f"/backups/{b0}/history", params={"path": "/never/there"})
        assert r.status_code == 200 and r.json()["versions"] == []


@pytest.mark.parametrize(("a", "b"), [(0, 1), (1, 2)])
def test_diff_is_streamed_as_json_lines(served: Served, a: int, b: int) -> None:
    with served.client() as c:
        _wait_indexed(c, served.ids)
        with c.stream("GET", f"/backups/{served.ids[a]}/diff/{served.ids[b]}") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("application/x-ndjson")
            lines = [json.loads(line) for line in r.iter_lines() if line]
    *entries, last = lines
    got = {(e["change"], e["path"]) for e in entries if not e["path"].startswith("/lost+found")}
    want = kernel_diff(served.chain, a, b)
    assert got == want
    totals = last["totals"]
    every = {(e["change"], e["path"]) for e in entries}
    assert (totals["added"], totals["removed"], totals["changed"]) == tuple(
        sum(1 for c, _ in every if c == k) for k in ("added", "removed", "changed")
    )


def test_diff_of_one_directory_with_contents(served: Served) -> None:
    _, b1, b2 = served.ids
    with served.client() as c:
        _wait_indexed(c, served.ids)
        r = c.get(f"/backups/{b1}/diff/{b2}", params={"path": "/photos", "content": "true"})
        assert r.status_code == 200, r.text
        *entries, _ = [json.loads(line) for line in r.text.splitlines()]
    got = {e["path"]: e for e in entries}
    want = {p for c, p in kernel_diff(served.chain, 1, 2) if p.startswith("/photos/")}
    assert set(got) == want
    old, new = facts(served.chain, 1), facts(served.chain, 2)
    for path, e in got.items():
        if e["change"] == "changed":
            assert e["content_changed"] == (old[path]["sha256"] != new[path]["sha256"]), path


def test_bad_requests_get_one_4xx_message(served: Served) -> None:
    b0 = served.ids[0]
    with served.client() as c:
        _wait_indexed(c, served.ids)
        cases: list[tuple[str, dict[str, Any], int]] = [
            ("/search", {"name": "a", "glob": "b"}, 400),
            ("/search", {"name": "a", "cursor": "garbage"}, 400),
            ("/search", {"name": "a", "cursor": "n:99999999999999999999999:1:1"}, 400),
            ("/search", {"name": "a", "limit": 0}, 400),
            ("/search", {"name": "a", "limit": 100000}, 400),
            ("/search", {"name": "a", "kind": "sock"}, 400),
            ("/search", {"name": "a", "backup_id": 0}, 400),
            ("/search", {"name": "a", "mtime_from": "yesterday"}, 400),
            (f"/backups/{b0}/history", {}, 400),
            (f"/backups/{b0}/history", {"path": "/x", "volume": "p9"}, 400),
            ("/backups/999999/history", {"path": "/x"}, 404),
            (f"/backups/{b0}/diff/999999", {}, 400),
            (f"/backups/{b0}/diff/{b0}", {"volume": "p9"}, 200),  # nothing differs
        ]
        for route, params, status in cases:
            r = c.get(route, params=params)
            assert r.status_code == status, (route, params, r.text)
            if status >= 400:
                assert r.json()["error"]["message"], r.text
        r = c.get("/search?name=a%00b")
        assert r.status_code == 400
    with served.client("") as anonymous:
        assert anonymous.get("/search", params={"name": "a"}).status_code == 401
    with served.client() as alice:
        assert alice.post(f"/backups/{b0}/index").status_code == 403
        assert alice.post("/index/jobs/1/cancel").status_code == 403


def test_index_queued_again_on_demand(served: Served) -> None:
    b0 = served.ids[0]
    with served.client(served.admin) as c:
        _wait_indexed(c, served.ids)
        r = c.post(f"/backups/{b0}/index")
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["backup_id"] == b0 and job["state"] in ("queued", "running", "done")
        # no deadline of its own: a hang ends at the test's pytest-timeout limit
        while job["state"] in ("queued", "running"):
            time.sleep(0.2)
            jobs = c.get("/index/jobs").json()["jobs"]
            job = next(j for j in jobs if j["id"] == job["id"])
        assert job["state"] == "done"
        assert c.get(f"/backups/{b0}/index").json()["state"] == "done"
        assert c.post("/index/jobs/999999/cancel").status_code == 404
        paths = httpx.get(served.url + "/openapi.json").json()["paths"]
        assert {"/api/v1/search", "/api/v1/backups/{backup_id}/history"} <= set(paths)

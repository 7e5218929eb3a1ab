"""Every endpoint's success and error cases, over HTTP against the real server; expected
values from the source tree on the host."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import zipfile
from typing import Any
from urllib.parse import quote

from tests.api.conftest import API, Env

GiB = 1 << 30


def error(r, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    if code:
        assert body["error"]["code"] == code, body
    detail: dict[str, Any] = body["error"]
    return detail


def test_health_needs_no_token(api: Env) -> None:
    r = api.client(None).get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_mount_shape_and_reuse(api: Env) -> None:
    with api.client("carol") as c:
        r = c.post(f"{API}/restore/mount", json={"backup_id": api.backups["ext4"]})
        assert r.status_code == 201, r.text
        m = r.json()
        keys = {"mount_id", "backup_id", "volume", "mount_path", "nbd_device", "filesystem_type"}
        assert keys | {"status", "created_at", "expires_at"} <= set(m)
        assert m["backup_id"] == api.backups["ext4"] and m["filesystem_type"] == "ext4"
        assert m["status"] == "mounted" and m["nbd_device"] is None and m["mount_path"] is None
        again = c.post(f"{API}/restore/mount", json={"backup_id": api.backups["ext4"]})
        assert again.status_code == 201 and again.json()["mount_id"] == m["mount_id"]
        listed = c.get(f"{API}/restore/mounts").json()["mounts"]
        assert [x["mount_id"] for x in listed] == [m["mount_id"]]
        assert c.delete(f"{API}/restore/{m['mount_id']}").status_code == 204
        error(c.delete(f"{API}/restore/{m['mount_id']}"), 404, "mount_not_found")
        error(c.get(f"{API}/restore/{m['mount_id']}/files"), 404, "mount_not_found")


def test_mount_errors(api: Env) -> None:
    with api.client("carol") as c:
        body = error(
            c.post(f"{API}/restore/mount", json={"backup_id": api.backups["demo-full"]}),
            409,
            "ambiguous_volume",
        )
        assert [x.split()[0] for x in body["choices"]] == ["p1", "p2"]
        message = body["message"]
        assert "--volume" not in message and '"volume" field' in message  # the API's own terms
        error(c.post(f"{API}/restore/mount", json={"backup_id": 999999}), 404, "backup_not_found")
        error(c.post(f"{API}/restore/mount", json={"backup_id": "x"}), 400, "invalid_parameter")
        error(c.post(f"{API}/restore/mount", json={}), 400, "invalid_parameter")
        r = c.post(
            f"{API}/restore/mount", json={"backup_id": api.backups["demo-full"], "volume": "p9"}
        )
        error(r, 404, "volume_not_found")


def test_demo_incremental_shows_changes(api: Env) -> None:
    """The incremental's ext4 partition holds demo/changes; the full one the source."""
    full = api.mount("carol", "demo-full", "p1")
    incr = api.mount("carol", "demo-incr", "p1")
    changed = (api.demo.parent / "x").parent  # the cache dir; the source is in the checkout
    del changed
    src = os.path.join(os.path.dirname(__file__), "..", "..", "demo")
    with api.client("carol") as c:
        a = c.get(f"{API}/restore/{full}/download", params={"path": "/home/alice/notes.txt"})
        b = c.get(f"{API}/restore/{incr}/download", params={"path": "/home/alice/notes.txt"})
    with open(os.path.join(src, "source/linux/home/alice/notes.txt"), "rb") as fh:
        assert a.content == fh.read()
    with open(os.path.join(src, "changes/linux/home/alice/notes.txt"), "rb") as fh:
        assert b.content == fh.read()
    ntfs = api.mount("carol", "demo-incr", "p2")
    with api.client("carol") as c:
        info = c.get(f"{API}/restore/{ntfs}/file-info", params={"path": "/Users"}).json()
    assert info["kind"] == "dir"


def test_listing_pages_match_the_tree(api: Env, ext4_mount: str) -> None:
    expected = sorted(os.listdir(api.source.path("/many")))
    got: list[str] = []
    cursor = None
    with api.client() as c:
        while True:
            params: dict[str, str | int] = {"path": "/many", "limit": 3000}
            if cursor:
                params["cursor"] = cursor
            r = c.get(f"{API}/restore/{ext4_mount}/files", params=params)
            assert r.status_code == 200, r.text
            page = r.json()
            assert page["total"] == len(expected)
            got += [e["name"] for e in page["entries"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert got == expected
        e = c.get(f"{API}/restore/{ext4_mount}/files", params={"path": "/docs"}).json()
        by_name = {x["name"]: x for x in e["entries"]}
        st = os.lstat(api.source.path("/docs/data.bin"))
        d = by_name["data.bin"]
        assert (d["kind"], d["size"], d["mode"], d["uid"], d["gid"]) == (
            "file",
            st.st_size,
            st.st_mode,
            st.st_uid,
            st.st_gid,
        )
        assert by_name["link-escape"]["target"] == "../../../../etc/passwd"
        bad = c.get(f"{API}/restore/{ext4_mount}/files", params={"path": "/", "cursor": "zz"})
        error(bad, 400, "invalid_cursor")
        error(c.get(f"{API}/restore/{ext4_mount}/files", params={"limit": 0}), 400)
        error(c.get(f"{API}/restore/{ext4_mount}/files", params={"path": "/nope"}), 404)
        error(c.get(f"{API}/restore/{ext4_mount}/files", params={"path": "/hello.txt"}), 400)


def test_recursive_listing_with_depth(api: Env, ext4_mount: str) -> None:
    expected = set()
    top = api.source.path("/docs")
    for dirpath, dirs, files in os.walk(top):
        for n in dirs + files:
            expected.add("/docs/" + os.path.relpath(os.path.join(dirpath, n), top))
    with api.client() as c:
        r = c.get(
            f"{API}/restore/{ext4_mount}/files", params={"path": "/docs", "recursive": "true"}
        )
        assert {e["path"] for e in r.json()["entries"]} == expected
        r = c.get(
            f"{API}/restore/{ext4_mount}/files",
            params={"path": "/docs", "recursive": "true", "depth": 1},
        )
        assert {e["path"] for e in r.json()["entries"]} == {"/docs/" + n for n in os.listdir(top)}


def test_file_info(api: Env, ext4_mount: str) -> None:
    st = os.lstat(api.source.path("/docs/readme.md"))
    with api.client() as c:
        info = c.get(f"{API}/restore/{ext4_mount}/file-info", params={"path": "/docs/readme.md"})
        j = info.json()
        assert (j["size"], j["mode"], j["inode"], j["nlink"]) == (
            st.st_size,
            st.st_mode,
            None if j["inode"] is None else j["inode"],
            st.st_nlink,
        )
        assert j["mtime_ns"] == st.st_mtime_ns and j["content_type"].startswith("text/markdown")
        link = c.get(f"{API}/restore/{ext4_mount}/file-info", params={"path": "/link-etc-passwd"})
        assert link.json()["kind"] == "symlink" and link.json()["target"] == "/etc/passwd"
        error(c.get(f"{API}/restore/{ext4_mount}/file-info", params={"path": "/x/y"}), 404)


def test_non_utf8_name_round_trips(api: Env, ext4_mount: str) -> None:
    with api.client() as c:
        page = c.get(f"{API}/restore/{ext4_mount}/files", params={"path": "/unicode"}).json()
        entry = next(
            e for e in page["entries"] if "latin1-caf" in e["name"] and "%" not in e["name"]
        )
        assert entry["path_query"] == "/unicode/latin1-caf%E9.txt"
        r = c.get(f"{API}/restore/{ext4_mount}/download?path={entry['path_query']}")
    with open(
        os.path.join(
            api.source.tree, b"unicode/latin1-caf\xe9.txt".decode("utf-8", "surrogateescape")
        ),
        "rb",
    ) as fh:
        assert r.status_code == 200 and r.content == fh.read()
    assert "filename*=UTF-8''latin1-caf%EF%BF%BD.txt" in r.headers["content-disposition"]


def test_download_headers_range_etag(api: Env, ext4_mount: str) -> None:
    data = api.source.path("/docs/data.bin").read_bytes()
    url = f"{API}/restore/{ext4_mount}/download"
    with api.client() as c:
        r = c.get(url, params={"path": "/docs/data.bin"})
        assert r.status_code == 200 and r.content == data
        h = r.headers
        assert h["content-length"] == str(len(data)) and h["accept-ranges"] == "bytes"
        assert h["etag"].startswith('"') and h["content-type"] == "application/octet-stream"
        assert h["content-disposition"] == (
            "attachment; filename=\"data.bin\"; filename*=UTF-8''data.bin"
        )
        etag = h["etag"]
        part = c.get(url, params={"path": "/docs/data.bin"}, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        tail = c.get(url, params={"path": "/docs/data.bin"}, headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == data[-10:]
        error(
            c.get(url, params={"path": "/docs/data.bin"}, headers={"Range": f"bytes={len(data)}-"}),
            416,
            "range_not_satisfiable",
        )
        cached = c.get(url, params={"path": "/docs/data.bin"}, headers={"If-None-Match": etag})
        assert cached.status_code == 304 and cached.content == b""
        stale = c.get(
            url,
            params={"path": "/docs/data.bin"},
            headers={"Range": "bytes=0-9", "If-Range": '"x"'},
        )
        assert stale.status_code == 200 and len(stale.content) == len(data)
        uni = c.get(url, params={"path": "/unicode/日本語のファイル.txt"})
        assert uni.headers["content-type"] == "text/plain; charset=utf-8"
        assert (
            f"filename*=UTF-8''{quote('日本語のファイル.txt')}"
            in uni.headers["content-disposition"]
        )
        assert 'filename="________.txt"' in uni.headers["content-disposition"]
        link = c.get(url, params={"path": "/link-relative"})
        assert link.content == api.source.path("/docs/readme.md").read_bytes()
        error(c.get(url, params={"path": "/docs"}), 400, "is_a_directory")
        error(c.get(url, params={"path": "/missing"}), 404, "path_not_found")
        error(c.get(url), 400, "invalid_parameter")


def test_download_directory_formats(api: Env, ext4_mount: str) -> None:
    url = f"{API}/restore/{ext4_mount}/download-directory"
    tree = api.source.path("/docs")
    with api.client() as c:
        z = c.get(url, params={"path": "/docs", "format": "zip"})
        assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
        b = c.get(f"{API}/backups/{api.backups['ext4']}").json()
        named = "_".join(x for x in (b["vm_name"], b["disk_name"], b["created_at"][:10]) if x)
        assert f'filename="{named}_docs.zip"' in z.headers["content-disposition"]
        with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
            assert zf.read("docs/data.bin") == (tree / "data.bin").read_bytes()
            assert zf.testzip() is None
        t = c.get(url, params={"path": "/docs", "format": "tar"})
        with tarfile.open(fileobj=io.BytesIO(t.content)) as tf:
            member = tf.getmember("docs/script.sh")
            assert stat.S_IMODE(member.mode) == stat.S_IMODE((tree / "script.sh").stat().st_mode)
            script = tf.extractfile(member)
            assert script is not None and script.read() == (tree / "script.sh").read_bytes()
        multi = c.get(
            url, params=[("path", "/hello.txt"), ("path", "/docs/sub"), ("format", "tar.gz")]
        )
        assert f"{named}_root-2-items.tar.gz" in multi.headers["content-disposition"]
        with tarfile.open(fileobj=io.BytesIO(multi.content), mode="r:gz") as tf:
            assert sorted(tf.getnames()) == ["hello.txt", "sub", "sub/nested.txt"]
        error(c.get(url, params={"path": "/docs", "format": "rar"}), 400, "invalid_parameter")
        error(c.get(url, params={"path": "/nope"}), 404, "path_not_found")


def test_resources_and_cleanup_status(api: Env, ext4_mount: str) -> None:
    with api.client() as c:
        res = c.get(f"{API}/restore/resources").json()
        assert res["sessions_limit"] == 32 and res["sessions_used"] >= 1
        assert res["memory_rss_bytes"] > 10 << 20
        cs = c.get(f"{API}/restore/cleanup-status").json()
        assert cs["running"] is True and cs["interval_seconds"] == 1 and cs["last_run"]


def test_idle_session_expires_and_is_cleaned(api: Env) -> None:
    """FILERESTORE_IDLE_TIMEOUT is the server's default (1 h): expire a row by hand and let
    the 1 s cleanup worker remove it."""
    import sqlite3
    import time

    mount = api.mount("dave")
    with sqlite3.connect(api.state_dir / "filerestore.db") as con:
        con.execute(
            "UPDATE restore_mounts SET expires_at='2000-01-01 00:00:00' WHERE id=?", (mount,)
        )
    deadline = time.monotonic() + 15
    with api.client("dave") as c:
        while time.monotonic() < deadline:
            if c.get(f"{API}/restore/{mount}/files").status_code == 404:
                break
            with sqlite3.connect(api.state_dir / "filerestore.db") as con:
                con.execute(
                    "UPDATE restore_mounts SET expires_at='2000-01-01 00:00:00' WHERE id=?",
                    (mount,),
                )
            time.sleep(0.5)
        error(c.get(f"{API}/restore/{mount}/files"), 404, "mount_not_found")


def test_catalog_routes(api: Env) -> None:
    with api.client() as c:
        all_ = c.get(f"{API}/backups").json()["backups"]
        assert {b["id"] for b in all_} == set(api.backups.values())
        web = c.get(f"{API}/backups", params={"vm": "web01"}).json()["backups"]
        assert {b["id"] for b in web} == {api.backups["demo-full"], api.backups["demo-incr"]}
        # an unknown repository is not found (as the CLI says), not an empty list
        error(c.get(f"{API}/backups", params={"repository": "other"}), 404)
        incr = c.get(f"{API}/backups/{api.backups['demo-incr']}").json()
        assert (
            incr["kind"] == "incremental" and incr["parent_backup_id"] == api.backups["demo-full"]
        )
        assert [x["id"] for x in incr["chain"]] == [
            api.backups["demo-incr"],
            api.backups["demo-full"],
        ]
        assert [(v["id"], v["filesystem_type"]) for v in incr["volumes"]] == [
            ("p1", "ext4"),
            ("p2", "ntfs"),
        ]
        full = c.get(f"{API}/backups/{api.backups['ext4']}").json()
        assert full["virtual_size"] == api.source.image.stat().st_size
        error(c.get(f"{API}/backups/424242"), 404, "backup_not_found")
        repos = c.get(f"{API}/repositories").json()["repositories"]
        assert [(r["name"], r["available"]) for r in repos] == [("main", True)]
        body = {"repository": "main", "path": "srv1/disk0.qcow2"}
        error(c.post(f"{API}/backups", json=body), 403, "forbidden")
    with api.client("admin") as a:
        r = a.post(f"{API}/backups", json=body)
        assert r.status_code == 201 and r.json()["id"] == api.backups["ext4"]
        error(
            a.post(f"{API}/backups", json={"repository": "main", "path": "../../etc/passwd"}), 400
        )
        error(a.post(f"{API}/backups", json={"repository": "none", "path": "x"}), 404)
        error(a.post(f"{API}/backups", json={"repository": "main", "path": "srv1/nope"}), 404)
        error(a.post(f"{API}/backups", json={"repository": "main", "path": "srv1"}), 404)
        for bad in ("a\x00b", "x" * 5000, "d/" + "n" * 256, ".", "/etc/passwd"):
            error(a.post(f"{API}/backups", json={"repository": "main", "path": bad}), 400)


def test_an_admins_changes_are_audited_with_their_outcome(api: Env, tmp_path) -> None:
    """Registering a backup and adding a repository write an audit row each: ok, or failed
    with the error's code and message."""
    import sqlite3

    missing_dir = tmp_path / "no-such-root"
    with api.client("admin") as a:
        ok = a.post(f"{API}/backups", json={"repository": "main", "path": "srv1/disk0.qcow2"})
        assert ok.status_code == 201, ok.text
        gone = a.post(f"{API}/backups", json={"repository": "main", "path": "srv1/audited"})
        assert gone.status_code == 404, gone.text
        body = {"name": "audited", "path": str(missing_dir)}
        refused = a.post(f"{API}/repositories", json=body)
        assert refused.status_code >= 400, refused.text
        code = refused.json()["error"]["code"]
    with sqlite3.connect(api.state_dir / "filerestore.db") as con:
        rows = con.execute(
            "SELECT action, outcome, backup_id, path, detail FROM audit_events"
            " WHERE action IN ('register', 'repository_add') ORDER BY id"
        ).fetchall()
    registered = [r for r in rows if r[0] == "register" and r[3] == "srv1/disk0.qcow2"]
    assert registered[-1][:3] == ("register", "ok", api.backups["ext4"])
    (not_found,) = [r for r in rows if r[3] == "srv1/audited"]
    assert not_found[:3] == ("register", "failed", None)
    assert not_found[4].startswith(f"{gone.json()['error']['code']}: ")
    (not_added,) = [r for r in rows if r[3] == str(missing_dir)]
    assert not_added[:2] == ("repository_add", "failed")
    assert not_added[4].startswith(f"{code}: ")


def test_metrics(api: Env, ext4_mount: str) -> None:
    with api.client() as c:
        c.get(f"{API}/restore/{ext4_mount}/download", params={"path": "/hello.txt"})
        text = c.get("/metrics").text
    assert "filerestore_http_requests_total" in text and "filerestore_workers" in text
    error(api.client(None).get("/metrics"), 401, "unauthenticated")


def test_audit_rows(api: Env, ext4_mount: str) -> None:
    import sqlite3

    with api.client() as c:
        r = c.get(f"{API}/restore/{ext4_mount}/download", params={"path": "/docs/readme.md"})
    digest = hashlib.sha256(api.source.path("/docs/readme.md").read_bytes()).hexdigest()
    api.client(None).get(f"{API}/restore/mounts")
    with api.client() as c:
        refused = c.get(f"{API}/restore/{ext4_mount}/file-info?path=/etc%00")
    assert refused.status_code == 400
    with sqlite3.connect(api.state_dir / "filerestore.db") as con:
        rows = con.execute(
            "SELECT actor, action, outcome, path, bytes, detail FROM audit_events"
        ).fetchall()
    assert r.status_code == 200
    assert any(
        a == "download"
        and o == "ok"
        and p == "/docs/readme.md"
        and b == len(r.content)
        and f"sha256={digest}" in (d or "")
        for _, a, o, p, b, d in rows
    )
    assert any(a == "mount" and o == "ok" for _, a, o, *_ in rows)
    # a request without a valid token is counted and logged at a bounded rate, never a row
    assert not any(a == "auth" or actor.startswith("anonymous") for actor, a, *_ in rows)
    assert any(
        actor.startswith("alice") and a == "refusal" and "path_refused" in (d or "")
        for actor, a, _, _, _, d in rows
    )


def test_audit_json_log_lines(api: Env) -> None:
    import json
    import time

    mount = api.mount("carol", "demo-full", "p2")
    with api.client("carol") as c:
        assert (
            c.get(f"{API}/restore/{mount}/download", params={"path": "/Users"}).status_code == 400
        )
        assert c.delete(f"{API}/restore/{mount}").status_code == 204
    assert api.server.log is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = []
        for line in api.server.log.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"action"' in line:
                events.append(json.loads(line))
        mine = [e for e in events if e.get("mount_id") == mount]
        if {e["action"] for e in mine} >= {"mount", "download", "unmount"}:
            break
        time.sleep(0.2)
    assert {(e["action"], e["outcome"]) for e in mine} >= {
        ("mount", "ok"),
        ("download", "failed"),
        ("unmount", "ok"),
    }
    assert all(e["actor"].startswith("carol (token:") for e in mine)

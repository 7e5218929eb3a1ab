# ruff: noqa: F811 - pytest fixtures imported from tests/dbfixtures.py are redefined as arguments
"""The index commands run as a user would (a subprocess each) on the chain of known changes
(tests/imagebuild/index_chain.py): scan queues, `index run` indexes, and search, history and
diff answer what the kernel saw; bad input is one line and a non-zero exit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cli.runner import fails, ok
from tests.dbfixtures import database_url, db, make_settings, pg_server_url, settings  # noqa: F401
from tests.imagebuild.index_chain import facts, index_chain
from tests.index.conftest import make_repository
from tests.index.kernel_diff import kernel_diff


def _json(*args: str) -> Any:
    """The one JSON document a --json command prints."""
    return json.loads(ok(*args))


# the commands are adapters over filerestore.index, whose queries are tested on both
# databases in tests/index; here SQLite keeps the subprocess count down
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_scan_index_search_history_diff(env, db, tmp_path):
    repo = make_repository("ext4", tmp_path / "repo")
    chain = index_chain("ext4")
    ok("repo", "add", "r", repo)
    assert ok("scan").decode().splitlines()[-1].startswith("queued 3 index job(s)")
    status = json.loads(ok("index", "status", "--json"))
    assert [s["state"] for s in status] == ["queued"] * 3
    ran = ok("index", "run").decode().splitlines()
    assert [line.split(":")[1].split(",")[0].strip() for line in ran] == ["done"] * 3
    assert ok("index", "run").decode().strip() == "no index job is due"
    status = json.loads(ok("index", "status", "--json"))
    assert [s["state"] for s in status] == ["done"] * 3
    b0, b1, b2 = (s["backup_id"] for s in status)
    assert "nothing to queue" in ok("index", "queue").decode()

    found = _json("search", "report", "--limit", "1", "--all", "--json")
    assert found["next_cursor"] is None
    got = {
        h["path"]: sorted(b["backup_id"] for v in h["versions"] for b in v["backups"])
        for h in found["hits"]
    }
    assert got == {
        "/docs/report-2024.xlsx": [b0],
        "/docs/report-2024-final.xlsx": [b1, b2],
        "/docs/report-2025.xlsx": [b1, b2],
    }
    page = _json("find", "--glob", "img_000?.jpg", "--limit", "2", "--json")
    assert len(page["hits"]) == 2 and page["next_cursor"]
    rest = _json(
        "search", "--glob", "img_000?.jpg", "--cursor", page["next_cursor"], "--all", "--json"
    )
    paths = [h["path"] for h in page["hits"] + rest["hits"]]
    assert sorted(paths) == [f"/photos/img_000{i}.jpg" for i in range(1, 10)]
    # one vocabulary: a version is `stat --json` of the same file in that backup, without
    # its name and path, plus its hash and backups (times in ns, `target`, ...)
    (hit,) = _json("search", "--glob", "report-2025.xlsx", "--json")["hits"]
    version = hit["versions"][0]
    entry = _json("stat", str(repo / "inc1.qcow2"), "/docs/report-2025.xlsx", "--json")
    assert set(version) == set(entry) - {"name", "path"} | {"hash", "backups"}
    assert {k: version[k] for k in entry if k in version} == {
        k: v for k, v in entry.items() if k not in ("name", "path")
    }
    assert version["mtime_ns"] == facts(chain, 1)["/docs/report-2025.xlsx"]["mtime_ns"]
    table = ok("search", "report-2025").decode().splitlines()
    assert table[0].startswith("/docs/report-2025.xlsx")
    assert f"backups {b1},{b2}" in table[1]

    h = json.loads(ok("history", str(b2), "/docs/readme.md", "--json"))
    assert [(e["event"], e["backup"]["backup_id"]) for e in h["events"]] == [
        ("appeared", b0),
        ("changed", b1),
    ]
    assert [v["size"] for v in h["versions"]] == [
        facts(chain, s)["/docs/readme.md"]["size"] for s in (0, 1)
    ]
    text = ok("history", str(b0), "photos/img_0005.jpg").decode()
    assert [line.split()[0] for line in text.splitlines() if "in backup" in line] == [
        "appeared",
        "vanished",
        "appeared",
        "last",
    ]
    assert text.splitlines()[-1].strip() == f"last seen in backup {b2}"

    d = _json("diff", str(b0), str(b1), "--json")
    got_diff = {(e["change"], e["path"]) for e in d["entries"]} - {("changed", "/lost+found")}
    assert got_diff == kernel_diff(chain, 0, 1)
    totals = d["totals"]
    assert totals["added"] == sum(1 for c, _ in got_diff if c == "added")
    human = ok("diff", str(b1), str(b2), "--path", "/photos", "--content").decode().splitlines()
    assert any(h.startswith("M /photos/img_0003.jpg") and "content differs" in h for h in human)
    assert human[-1].endswith("changed")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_bad_input_is_one_line(env, db, tmp_path):
    repo = make_repository("ext4", tmp_path / "repo")
    ok("repo", "add", "r", repo)
    ok("scan")
    assert "is not indexed" in fails(3, "history", "1", "/docs")
    ok("index", "run")
    assert "name substring or a glob" in fails(2, "search", "a", "--glob", "b")
    assert "invalid search cursor" in fails(2, "search", "a", "--cursor", "x:1")
    assert "no backup with id 99" in fails(3, "history", "99", "/docs")
    assert "no indexed volume" in fails(2, "history", "1", "/docs", "--volume", "p7")
    assert "may be compared" in fails(2, "diff", "1", "99")
    assert "no backup with id 99" in fails(3, "index", "queue", "99")
    assert "no index job with id 99" in fails(3, "index", "cancel", "99")
    fails(2, "search", "a", "--mtime-from", "yesterday")
    fails(2, "search", "a", "--limit", "0")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_index_run_waits_for_a_session_slot(env, db, tmp_path, monkeypatch):
    """`index run` opens backups in session slots, as the service's runners do: with the
    host's only slot held by a session, the job stays queued and says why."""
    from filerestore.catalog import list_backups
    from filerestore.service.principal import Principal
    from filerestore.service.sessions import SessionManager

    monkeypatch.setenv("FILERESTORE_MAX_SESSIONS", "1")
    repo = make_repository("ext4", tmp_path / "repo")
    ok("repo", "add", "r", repo)
    ok("scan")
    manager = SessionManager(db, env.model_copy(update={"max_sessions": 1}))
    alice = Principal.token(1, "alice", admin=False)
    session = manager.mount(min(b.id for b in list_backups(db)), None, alice)
    lines = ok("index", "run").decode().splitlines()
    assert lines[0].startswith("job 1: queued: session_limit: session limit reached (1 of 1")
    assert [j["state"] for j in _json("index", "jobs", "--json")] == ["queued"] * 3
    manager.unmount(session.mount_id, alice)

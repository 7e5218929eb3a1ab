# ruff: noqa: F811 - pytest fixtures imported from tests/dbfixtures.py are redefined as arguments
"""The catalog, session and database commands, run as a user would, on both databases."""

from __future__ import annotations

import json
from typing import Any

import pytest

from filerestore.service.principal import Principal
from filerestore.service.sessions import SessionManager
from tests.cli.runner import fails, ok
from tests.dbfixtures import database_url, db, make_settings, pg_server_url, settings  # noqa: F401
from tests.imagebuild.catalog_repo import make_repository, qemu_info


# the commands are adapters: their database work is tested on both databases in tests/db,
# tests/catalog and tests/restore; here SQLite keeps the subprocess count down
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_repository_scan_backups_mounts_cleanup(env, db, tmp_path):
    root = tmp_path / "repo"
    images = make_repository(root)
    assert b"added repository main (local)" in ok("repo", "add", "main", root)
    assert "already exists" in fails(1, "repo", "add", "main", root)
    assert "not mounted" in fails(6, "repo", "add", "share", root, "--kind", "nfs")
    assert "unknown repository kind" in fails(2, "repo", "add", "x", root, "--kind", "ftp")
    (listed,) = json.loads(ok("repo", "list", "--json"))
    assert (listed["name"], listed["available"], listed["root_path"]) == ("main", True, str(root))

    assert ok("scan").decode().splitlines() == [
        "main: 4 added, 0 known, 0 refused",
        "queued 4 index job(s); see `filerestore index status`",
    ]  # index_on_register: each new backup is queued once
    assert ok("scan", "main").decode().splitlines() == ["main: 0 added, 4 known, 0 refused"]
    assert "no repository named" in fails(3, "scan", "nope")
    assert "no repository named" in fails(3, "backups", "--repository", "nope")

    backups = {b["path"]: b for b in json.loads(ok("backups", "--json"))}
    assert set(backups) == {p.relative_to(root).as_posix() for p in images.values()}
    inc2 = backups["vm1/disk0-inc2.qcow2"]
    assert inc2["kind"] == "incremental"
    assert inc2["parent_backup_id"] == backups["vm1/disk0-inc1.qcow2"]["id"]
    assert inc2["virtual_size"] == qemu_info(images["inc2"])["virtual-size"]
    assert {b["status"] for b in backups.values()} == {"available"}
    assert {b["index"] for b in backups.values()} == {"queued"}  # queued by the scan
    table = ok("backups").decode().splitlines()
    assert table[0].split()[:3] == ["ID", "REPOSITORY", "PATH"] and len(table) == 5

    manager = SessionManager(db, env)
    session = manager.mount(inc2["id"], None, Principal("cli-test", "cli-test", admin=False))
    manager.readers.close_all()
    (mounted,) = json.loads(ok("mounts", "--json"))
    assert (mounted["mount_id"], mounted["status"], mounted["filesystem_type"]) == (
        session.mount_id,
        "mounted",
        "ext4",
    )
    assert ok("cleanup", "--expired").decode().splitlines() == ["removed 0 session(s)"]
    # --all ends downloads too: off a terminal it needs --yes, and says so
    assert "confirm with --yes" in fails(2, "cleanup", "--all")
    assert ok("cleanup", "--all", "--yes").decode().splitlines() == [
        "removed 1 session(s)",
        f"  {session.mount_id}",
    ]
    assert json.loads(ok("mounts", "--json")) == []


def test_db_commands(env, db):
    head = ok("db", "current").decode().split()[-1]
    assert ok("db", "downgrade", "base").decode().strip() == "database at revision base"
    assert ok("db", "current").decode().split()[1].rstrip(",") == "base"
    assert ok("db", "upgrade").decode().strip() == f"database at revision {head}"
    assert "choose one of" in fails(2, "cleanup", "--all", "--expired")


def one_json_document(out: bytes) -> Any:
    """The output of a ``--json`` command: one JSON document, indented by two spaces."""
    data = json.loads(out)
    assert out.decode() == json.dumps(data, indent=2, ensure_ascii=True) + "\n"
    return data


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_json_output_has_the_one_style(env, db, tmp_path):
    make_repository(tmp_path / "repo")
    ok("repo", "add", "main", tmp_path / "repo")
    ok("scan")
    created = one_json_document(ok("token", "create", "styled", "--json"))
    assert set(created) == {"id", "name", "admin", "created_at", "revoked_at", "token"}
    for args in (["repo", "list"], ["backups"], ["mounts"], ["token", "list"]):
        assert isinstance(one_json_document(ok(*args, "--json")), list), args
    (token,) = one_json_document(ok("token", "list", "--json"))
    assert token["name"] == "styled" and "token" not in token

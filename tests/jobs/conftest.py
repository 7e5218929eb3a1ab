"""Restore jobs end to end: a real ``filerestore serve`` (two workers, their runner threads),
a real ``sshd`` on loopback for the SFTP target, and the restore tests' ext4 image and the
ext4 image with extended attributes as backups.

Targets: ``local`` (a directory under this run's tmp), ``remote`` (SFTP to the test sshd
as the unprivileged ``frtest``, host key checked against the run's known_hosts) and
``wrong-key`` (the same server, a known_hosts file that lists another key). Expected
values come from the source trees and independent tools (stat, sha256sum, getfattr).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from filerestore import catalog
from filerestore.db.engine import Database
from filerestore.db.migrate import ensure_schema
from filerestore.service.tokens import create_token
from filerestore.settings import load_settings
from tests.api.served import Served, link_image
from tests.api.server import ROOT, Server
from tests.imagebuild.fs_xattrs import xattr_image, xattr_tree
from tests.imagebuild.qcow import to_qcow2
from tests.imagebuild.restore_tree import restore_image, restore_tree
from tests.sshserver.sshd import Sshd, start_sshd

API = "/api/v1"
TOKENS = ("admin", "alice", "bob")
#: a selection that holds every kind of entry the copy treats apart, and stays small
SELECTION = [
    "/docs",
    "/hello.txt",
    "/empty",
    "/sparse.bin",
    "/unicode",
    "/hostile",
    "/link-relative",
    "/link-absolute",
    "/link-dangling",
]
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


@dataclass
class JobsEnv(Served):
    sshd: Sshd
    tree: Path
    xattr_tree: Path
    local_root: Path
    state_dir: Path
    #: the server's settings, for the CLI
    env: dict[str, str]

    def mount(self, backup: str = "ext4", who: str = "alice") -> str:
        return self.open_mount(who, backup)

    def create(self, who: str = "alice", **body: Any) -> httpx.Response:
        with self.client(who) as c:
            return c.post(f"{API}/restore/jobs", json=body)

    def wait(self, job_id: str, who: str = "alice") -> dict[str, Any]:
        """The job once it has ended (any state but queued and running); a job that never
        ends is ended by pytest-timeout's limit, not by a clock of this helper's."""
        with self.client(who) as c:
            while True:
                job = c.get(f"{API}/restore/jobs/{job_id}").json()
                if job["status"] not in ("queued", "running"):
                    return dict(job)
                time.sleep(0.2)

    def run(self, who: str = "alice", **body: Any) -> dict[str, Any]:
        r = self.create(who, **body)
        assert r.status_code == 201, r.text
        return self.wait(r.json()["job_id"], who)

    def manifest(self, job_id: str, who: str = "alice") -> list[dict[str, Any]]:
        with self.client(who) as c:
            r = c.get(f"{API}/restore/jobs/{job_id}/manifest")
            assert r.status_code == 200, r.text
            return [json.loads(line) for line in r.text.splitlines()]

    def audit(self, action: str) -> list[dict[str, Any]]:
        db = Database(f"sqlite:///{self.state_dir / 'filerestore.db'}")
        try:
            with db.engine.connect() as conn:
                rows = conn.exec_driver_sql(
                    "SELECT actor, action, outcome, mount_id, path, bytes, detail "
                    "FROM audit_events WHERE action = ? ORDER BY id",
                    (action,),
                ).mappings()
                return [dict(r) for r in rows]
        finally:
            db.dispose()


def targets_setting(local_root: Path, sshd: Sshd, wrong_known_hosts: Path) -> str:
    remote = {
        "kind": "sftp",
        "host": sshd.host,
        "port": sshd.port,
        "username": sshd.user.pw_name,
        "path": str(sshd.area),
        "client_keys": [str(sshd.client_key)],
    }
    return json.dumps(
        [
            {"name": "local", "kind": "local", "path": str(local_root)},
            {**remote, "name": "remote", "known_hosts": str(sshd.known_hosts)},
            {**remote, "name": "wrong-key", "known_hosts": str(wrong_known_hosts)},
        ]
    )


def build_repository(
    repo: Path, state_dir: Path, database_url: str | None
) -> tuple[dict[str, int], dict[str, str]]:
    link_image(to_qcow2(restore_image(), "api-ext4"), repo / "srv1" / "disk0.qcow2")
    link_image(xattr_image("ext4"), repo / "srv3" / "xattrs.img")
    settings = load_settings(state_dir=state_dir, database_url=database_url)
    db = Database(settings.effective_database_url)
    try:
        ensure_schema(db)
        catalog.add_repository(db, "main", repo)
        backups = {
            "ext4": catalog.register_backup(db, "main", "srv1/disk0.qcow2").id,
            "xattrs": catalog.register_backup(db, "main", "srv3/xattrs.img").id,
        }
        tokens = {n: create_token(db, n, admin=n == "admin")[1] for n in TOKENS}
    finally:
        db.dispose()
    return backups, tokens


def start_server(
    base: Path, sshd: Sshd, database_url: str | None = None, workers: int = 2, **extra: str
) -> tuple[Server, dict[str, int], dict[str, str], Path, Path, dict[str, str]]:
    state_dir = base / "state"
    state_dir.mkdir()
    repo = ROOT / ".cache" / "jobs-repos" / f"{os.getpid()}-{base.name}"
    backups, tokens = build_repository(repo, state_dir, database_url)
    local_root = base / "targets"
    local_root.mkdir()
    wrong = base / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {OTHER_KEY}\n")
    env = {
        "FILERESTORE_STATE_DIR": str(state_dir),
        "FILERESTORE_MAX_SESSIONS": "32",
        "FILERESTORE_RESTORE_TARGETS": targets_setting(local_root, sshd, wrong),
        "FILERESTORE_RESTORE_JOB_POLL_INTERVAL": "0.2",
        **extra,
    }
    if database_url:
        env["FILERESTORE_DATABASE_URL"] = database_url
    server = Server(env, workers=workers, log=base / "server.log").start()
    return server, backups, tokens, local_root, repo, env


@pytest.fixture(scope="session")
def sshd() -> Iterator[Sshd]:
    server = start_sshd()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def jobs_env(tmp_path_factory: pytest.TempPathFactory, sshd: Sshd) -> Iterator[JobsEnv]:
    base = tmp_path_factory.mktemp("jobs")
    os.environ.pop("FILERESTORE_DATABASE_URL", None)
    server, backups, tokens, local_root, repo, env = start_server(base, sshd)
    try:
        yield JobsEnv(
            server,
            tokens,
            backups,
            sshd,
            restore_tree(),
            xattr_tree("ext4"),
            local_root,
            base / "state",
            env,
        )
    finally:
        server.stop()
        shutil.rmtree(repo, ignore_errors=True)
        print((base / "server.log").read_text()[-3000:])


def stat_of(path: Path) -> str:
    """``stat`` (coreutils) of one entry, not followed: type, mode, owner, size, mtime."""
    out = subprocess.run(
        ["stat", "-c", "%F|%a|%u|%g|%s|%Y", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return out.strip()


def sha256sum(path: Path) -> str:
    out = subprocess.run(["sha256sum", str(path)], capture_output=True, check=True).stdout
    return out.split()[0].decode()

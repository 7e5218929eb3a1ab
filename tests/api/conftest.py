"""One real server for the API tests, over a repository holding two backups:

- ``ext4``: the restore tests' ext4 image (standard tree with the 5 GiB sparse file and a
  10,000-entry directory, verified against its tree by a kernel loop mount) as an
  uncompressed qcow2 made by qemu-img;
- ``demo full`` and ``demo incr``: the demo repository built by scripts/build_demo.py (GPT
  with ext4 and NTFS partitions, and an incremental), so a mount without a volume is
  ambiguous;
- ``broken``: an ext4 with entries no restore can write or read
  (tests/imagebuild/broken_entries.py), as a qcow2 made by qemu-img.

Expected values come from the source trees on the host, never from the server.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from filerestore import catalog
from filerestore.db.engine import Database
from filerestore.db.migrate import ensure_schema
from filerestore.service.tokens import create_token
from filerestore.settings import load_settings
from tests.api.served import Served, link_image
from tests.api.server import ROOT, Server
from tests.imagebuild.broken_entries import broken_entries_image
from tests.imagebuild.demo_repo import demo_repo
from tests.imagebuild.qcow import to_qcow2
from tests.imagebuild.restore_tree import Source, restore_image, restore_tree

API = "/api/v1"
TOKEN_NAMES = ("admin", "alice", "bob", "carol", "dave")


@dataclass
class Env(Served):
    source: Source
    demo: Path
    state_dir: Path
    repo: Path

    def mount(self, who: str = "alice", backup: str = "ext4", volume: str | None = None) -> str:
        return self.open_mount(who, backup, volume)


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    source = Source(restore_tree(), restore_image())
    qcow = to_qcow2(source.image, "api-ext4")
    demo = demo_repo()
    base = tmp_path_factory.mktemp("api")
    # the repository sits beside the image cache so the images can be hard links
    repo = ROOT / ".cache" / "api-repos" / f"{os.getpid()}-{base.name}"
    link_image(qcow, repo / "srv1" / "disk0.qcow2")
    link_image(to_qcow2(broken_entries_image(), "api-broken"), repo / "srv2" / "disk0.qcow2")
    for name in ("disk0-full.qcow2", "disk0-incr1.qcow2"):
        link_image(demo / "web01" / name, repo / "web01" / name)
    state_dir = base / "state"
    settings = load_settings(state_dir=state_dir)
    state_dir.mkdir()
    db = Database(settings.effective_database_url)
    ensure_schema(db)
    catalog.add_repository(db, "main", repo)

    def register(rel: str, vm: str) -> int:
        return catalog.register_backup(db, "main", rel, vm_name=vm, disk_name="disk0").id

    backups = {
        "ext4": register("srv1/disk0.qcow2", "srv1"),
        "demo-full": register("web01/disk0-full.qcow2", "web01"),
        "demo-incr": register("web01/disk0-incr1.qcow2", "web01"),
        "broken": register("srv2/disk0.qcow2", "srv2"),
    }
    tokens = {n: create_token(db, n, admin=n == "admin")[1] for n in TOKEN_NAMES}
    db.dispose()
    env = {
        "FILERESTORE_STATE_DIR": str(state_dir),
        "FILERESTORE_MAX_SESSIONS": "32",
        "FILERESTORE_MAX_DOWNLOADS_PER_SESSION": "8",
        "FILERESTORE_CLEANUP_INTERVAL": "1",
        # one local restore target (the page's "Restore to...")
        "FILERESTORE_RESTORE_TARGETS": json.dumps(
            [{"name": "local", "kind": "local", "path": str(base / "targets")}]
        ),
        "FILERESTORE_RESTORE_JOB_POLL_INTERVAL": "0.2",
    }
    (base / "targets").mkdir()
    env.pop("FILERESTORE_DATABASE_URL", None)
    try:
        with Server(env, workers=2, log=base / "server.log") as server:
            yield Env(server, tokens, backups, source, demo, state_dir, repo)
    finally:
        shutil.rmtree(repo, ignore_errors=True)


@pytest.fixture(scope="session")
def ext4_mount(api: Env) -> str:
    """alice's session on the ext4 backup."""
    return api.mount("alice")

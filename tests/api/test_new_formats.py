"""Against a real server: a repository holding the GPT + ext4 disk of the CLI tests as a
stream-optimized VMDK, a VHDX differencing chain and a QCOW2 with an external data file is
scanned (each with its kind and parent; the data file is no backup), and each disk is
described, mounted, listed and a file downloaded, compared with the recipe's source tree.

The images are the whole-stack tests' cached conversions (qemu-img), hard-linked into the
repository; the VHDX child is built byte by byte over a base whose copy of the downloaded
file is zeroed, so only a chain read through the child gives the file's bytes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from filerestore import catalog
from filerestore.db.engine import Database
from filerestore.db.migrate import ensure_schema
from filerestore.service.tokens import create_token
from filerestore.settings import load_settings
from tests.api.server import ROOT, Server, api_client
from tests.imagebuild import data_file as D
from tests.imagebuild import formats as F
from tests.imagebuild import gpt_ext4 as images
from tests.imagebuild.formats_ext4 import FILE, vhdx_chain
from tests.imagebuild.sparse import copy_sparse

API = "/api/v1"
TOPS = {"vmware/disk.vmdk": "vmdk", "hyperv/child.vhdx": "vhdx", "kvm/disk.qcow2": "qcow2"}


@dataclass
class Site:
    server: Server
    token: str
    tree: Path

    def client(self) -> httpx.Client:
        return api_client(self.server.url, self.token)


def _place(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # the cache and the repository share a filesystem in CI
    except OSError:
        copy_sparse(src, dst)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    ext4 = images.single_ext4()
    # the same conversions as tests/restore/test_stack_formats.py and test_stack_data_file.py
    vmdk = F.convert(
        ext4.image, "vmdk", ["subformat=streamOptimized"], "stack-vmdk-streamOptimized"
    )
    child = vhdx_chain(ext4)
    qcow2 = D.convert(ext4.image, "stack-data-file")
    base = tmp_path_factory.mktemp("formats")
    repo = ROOT / ".cache" / "api-repos" / f"formats-{os.getpid()}-{base.name}"
    _place(vmdk, repo / "vmware" / "disk.vmdk")
    _place(child, repo / "hyperv" / "child.vhdx")
    _place(child.parent / "base.vhdx", repo / "hyperv" / "base.vhdx")
    _place(qcow2, repo / "kvm" / "disk.qcow2")
    _place(qcow2.parent / "disk-data.raw", repo / "kvm" / "disk-data.raw")
    state_dir = base / "state"
    state_dir.mkdir()
    db = Database(load_settings(state_dir=state_dir).effective_database_url)
    ensure_schema(db)
    catalog.add_repository(db, "main", repo)
    report = catalog.scan_repository(db, "main")
    assert report.errors == []
    token = create_token(db, "alice")[1]
    db.dispose()
    env = {"FILERESTORE_STATE_DIR": str(state_dir)}
    try:
        with Server(env, workers=1, log=base / "server.log") as server:
            yield Site(server, token, ext4.tree(0))
    finally:
        shutil.rmtree(repo, ignore_errors=True)


def test_scan_found_each_format_with_its_kind_and_parent(site: Site) -> None:
    with site.client() as c:
        r = c.get(f"{API}/backups")
        assert r.status_code == 200, r.text
        found = {b["path"]: b for b in r.json()["backups"]}
    assert sorted(found) == sorted([*TOPS, "hyperv/base.vhdx"])  # no kvm/disk-data.raw
    kinds = {path: b["kind"] for path, b in found.items()}
    assert kinds == {path: "full" for path in found} | {"hyperv/child.vhdx": "incremental"}
    assert found["hyperv/child.vhdx"]["parent_backup_id"] == found["hyperv/base.vhdx"]["id"]


@pytest.mark.parametrize("path", sorted(TOPS))
def test_each_format_is_described_mounted_listed_and_downloaded(site: Site, path: str) -> None:
    with site.client() as c:
        backup = next(b for b in c.get(f"{API}/backups").json()["backups"] if b["path"] == path)
        detail = c.get(f"{API}/backups/{backup['id']}")
        assert detail.status_code == 200, detail.text
        volumes = detail.json()["volumes"]
        assert [(v["id"], v["filesystem_type"]) for v in volumes] == [("p1", "ext4")]
        r = c.post(f"{API}/restore/mount", json={"backup_id": backup["id"], "volume": None})
        assert r.status_code == 201, r.text
        mount = r.json()
        assert (mount["volume"], mount["filesystem_type"]) == ("p1", "ext4")
        listing = c.get(f"{API}/restore/{mount['mount_id']}/files", params={"path": "/docs"})
        assert listing.status_code == 200, listing.text
        names = sorted(e["name"] for e in listing.json()["entries"])
        assert names == sorted(os.listdir(site.tree / "docs"))
        got = c.get(f"{API}/restore/{mount['mount_id']}/download", params={"path": f"/{FILE}"})
        assert got.status_code == 200, got.text
        assert got.content == (site.tree / FILE).read_bytes()
        assert c.delete(f"{API}/restore/{mount['mount_id']}").status_code == 204

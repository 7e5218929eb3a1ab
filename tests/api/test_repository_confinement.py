"""Against a real server: files of a repository are opened only inside it, host failures are
503 and not "not found", and image metadata stays within its budget.

One server (one worker, so its per-process description cache is the one asked) over two
repositories: ``main`` in a plain directory, and ``flaky`` on an ext4 filesystem behind a
loop device whose storage is cut during the test (EIO from the kernel). Images are the
catalog tests' ext4 (made by mke2fs -d, checked with debugfs); the outside image is the same
filesystem with the file's bytes changed, converted by qemu-img, so leaked bytes would show.
"""

from __future__ import annotations

import os
import shutil
import subprocess
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
from tests.imagebuild.catalog_repo import FILES, ext4_qcow2
from tests.imagebuild.deep_chain import deep_sparse_chain
from tests.imagebuild.eio import FailingRepository, failing_repository
from tests.imagebuild.sparse import copy_sparse

API = "/api/v1"
INSIDE = FILES["hello.txt"]
OUTSIDE = b"OUTSIDE THE REPOSITORY"[: len(INSIDE) - 1] + b"\n"


def outside_image(dest: Path) -> Path:
    """The catalog ext4 with hello.txt's bytes replaced (same length), via qemu-img."""
    raw = dest.with_suffix(".work.raw")
    subprocess.run(["qemu-img", "convert", "-O", "raw", ext4_qcow2(), raw], check=True)
    data = raw.read_bytes()
    assert data.count(INSIDE) == 1 and len(OUTSIDE) == len(INSIDE)
    raw.write_bytes(data.replace(INSIDE, OUTSIDE))
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, dest], check=True)
    raw.unlink()
    return dest


def link_or_sparse_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        subprocess.run(["cp", "--sparse=always", src, dst], check=True)


@dataclass
class Site:
    server: Server
    admin: str
    user: str
    repo: Path
    outside: Path
    flaky: FailingRepository
    backups: dict[str, int]

    def client(self, token: str) -> httpx.Client:
        return api_client(self.server.url, token)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("confine")
    repo = ROOT / ".cache" / "api-repos" / f"confine-{os.getpid()}-{base.name}"
    outside = base / "outside"
    (repo / "srv").mkdir(parents=True)
    (repo / "deep").mkdir()
    outside.mkdir()
    copy_sparse(ext4_qcow2(), repo / "srv" / "disk0.qcow2")
    copy_sparse(ext4_qcow2(), repo / "srv" / "victim.qcow2")
    outside_image(outside / "disk0.qcow2")
    for f in deep_sparse_chain().iterdir():
        link_or_sparse_copy(f, repo / "deep" / f.name)
    state = base / "state"
    state.mkdir()
    settings = load_settings(state_dir=state)
    db = Database(settings.effective_database_url)
    ensure_schema(db)
    with failing_repository(base, {"disk0.qcow2": ext4_qcow2().read_bytes()}) as flaky:
        catalog.add_repository(db, "main", repo)
        catalog.add_repository(db, "flaky", flaky.root)
        backups = {
            name: catalog.register_backup(db, repo_name, rel).id
            for name, repo_name, rel in [
                ("disk0", "main", "srv/disk0.qcow2"),
                ("victim", "main", "srv/victim.qcow2"),
                ("flaky", "flaky", "disk0.qcow2"),
            ]
        }
        admin = create_token(db, "admin", admin=True)[1]
        user = create_token(db, "user")[1]
        db.dispose()
        env = {
            "FILERESTORE_STATE_DIR": str(state),
            # the deep chain's working set is about 5 MiB: over this budget
            "FILERESTORE_IMAGE_METADATA_BUDGET": str(1 << 20),
        }
        try:
            with Server(env, workers=1, log=base / "server.log") as server:
                yield Site(server, admin, user, repo, outside, flaky, backups)
        finally:
            shutil.rmtree(repo, ignore_errors=True)


def error_code(r: httpx.Response) -> str:
    return str(r.json()["error"]["code"])


def test_registering_a_link_out_of_the_repository_is_refused(site: Site) -> None:
    (site.repo / "evil.qcow2").symlink_to(site.outside / "disk0.qcow2")
    (site.repo / "evil-dir").symlink_to(site.outside)
    with site.client(site.admin) as c:
        for path in ("evil.qcow2", "evil-dir/disk0.qcow2"):
            r = c.post(f"{API}/backups", json={"repository": "main", "path": path})
            assert r.status_code == 422, r.text
            assert error_code(r) == "outside_repository"
            assert str(site.outside) not in r.text and str(site.repo) not in r.text
        names = {b["path"] for b in c.get(f"{API}/backups").json()["backups"]}
    assert not names & {"evil.qcow2", "evil-dir/disk0.qcow2"}


def test_a_backup_replaced_by_a_link_outside_is_never_served(site: Site) -> None:
    with site.client(site.user) as c:
        victim = site.backups["victim"]
        # a session opened before the swap keeps reading the file it opened: inside bytes
        before = c.post(f"{API}/restore/mount", json={"backup_id": victim})
        assert before.status_code == 201, before.text
        mount_id = before.json()["mount_id"]
        image = site.repo / "srv" / "victim.qcow2"
        image.unlink()
        image.symlink_to(site.outside / "disk0.qcow2")
        detail = c.get(f"{API}/backups/{victim}")
        assert detail.status_code == 200 and detail.json()["status"] == "refused"
        r = c.post(f"{API}/restore/mount", json={"backup_id": victim, "volume": "disk"})
        assert r.status_code == 422, r.text
        assert error_code(r) == "outside_repository"
        assert str(site.outside) not in r.text
        for _ in range(5):
            got = c.get(f"{API}/restore/{mount_id}/download", params={"path": "/hello.txt"})
            assert OUTSIDE not in got.content
            if got.status_code == 200:
                assert got.content == INSIDE
            else:
                assert got.status_code == 422 and error_code(got) == "outside_repository"


def test_a_failing_disk_is_503_and_detail_is_not_reopened(site: Site) -> None:
    with site.client(site.user) as c:
        flaky = site.backups["flaky"]
        first = c.get(f"{API}/backups/{flaky}")
        assert first.status_code == 200, first.text
        assert first.json()["volumes"]
        site.flaky.fail()
        # the chain's files are unchanged: the detail is answered without opening them
        again = c.get(f"{API}/backups/{flaky}")
        assert again.status_code == 200, again.text
        assert again.json()["volumes"] == first.json()["volumes"]
        r = c.post(f"{API}/restore/mount", json={"backup_id": flaky})
        assert r.status_code == 503, r.text
        assert error_code(r) == "repository_io"
        assert "Input/output error" in r.text
        assert str(site.flaky.root) not in r.text


def test_a_chain_over_the_metadata_budget_is_refused_by_name(site: Site) -> None:
    with site.client(site.admin) as c:
        r = c.post(f"{API}/backups", json={"repository": "main", "path": "deep/layer63.qcow2"})
        assert r.status_code == 422, r.text
        assert error_code(r) == "metadata_budget"
        assert str(site.repo) not in r.text
        ok = c.get(f"{API}/backups/{site.backups['disk0']}")  # a small chain fits
        assert ok.status_code == 200 and ok.json()["volumes"]

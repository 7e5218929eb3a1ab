# ruff: noqa: F811 - pytest fixtures imported from tests/s3server/fixtures.py are arguments
"""The page with an S3 repository beside a local one: the same backup image in a host
directory and in a bucket (moto's server, a process of its own, through the latency proxy),
set up as an operator would with the CLI (``repo add``, ``scan``, ``token create``).

The repositories view shows both with their kind, location and state; the S3 backup is
opened, browsed and downloaded exactly like the local one, compared with the source tree;
when the object store stops answering, the view says the S3 repository is unavailable and
why, and the local one stays available.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.server import Server, run_cli
from tests.imagebuild.qcow import to_qcow2
from tests.imagebuild.restore_tree import restore_image, restore_tree
from tests.imagebuild.sparse import copy_sparse
from tests.s3server.fixtures import moto  # noqa: F401
from tests.s3server.servers import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    boto_client,
    start_proxy,
)
from tests.s3server.servers import Server as S3Server
from tests.web.conftest import shot, wait_for_service_worker

BUCKET = "webpage"
PREFIX = "nightly"


@dataclass
class Site:
    server: Server
    proxy: S3Server
    token: str
    admin_token: str  # an operator's: only admins see where a repository is (issue 8, defect 8)
    backups: dict[str, int]  # repository name -> its one backup's id
    tree: Path

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, moto: S3Server) -> Iterator[Site]:
    work = tmp_path_factory.mktemp("s3page")
    image = to_qcow2(restore_image(), "api-ext4")
    local = work / "local"
    (local / "srv1").mkdir(parents=True)
    copy_sparse(image, local / "srv1" / "disk0.qcow2")  # a link out of the root: refused
    s3 = boto_client(moto)
    s3.create_bucket(Bucket=BUCKET)
    s3.upload_file(str(image), BUCKET, f"{PREFIX}/srv9/disk0.qcow2")
    proxy = start_proxy(moto)
    config = work / "filerestore.toml"
    config.write_text('[s3_credentials.offsite]\nenv_prefix = "WEBPAGE_"\n')
    env = {
        "FILERESTORE_STATE_DIR": str(work / "state"),
        "FILERESTORE_CONFIG": str(config),
        "FILERESTORE_S3_CONNECT_TIMEOUT": "1",
        "FILERESTORE_S3_REQUEST_TIMEOUT": "3",
        "FILERESTORE_S3_RETRIES": "1",
        "WEBPAGE_ACCESS_KEY_ID": ACCESS_KEY,
        "WEBPAGE_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    run_cli(env, "repo", "add", "disks", str(local))
    run_cli(env, "repo", "add", "offsite", f"s3://{BUCKET}/{PREFIX}", "--endpoint", proxy.endpoint,
         "--region", REGION)  # fmt: skip
    run_cli(env, "scan")
    backups = {b["repository"]: int(b["id"]) for b in json.loads(run_cli(env, "backups", "--json"))}
    token = run_cli(env, "token", "create", "alice").strip()
    admin_token = run_cli(env, "token", "create", "ops", "--admin").strip()
    try:
        with Server(env, workers=2, log=work / "server.log") as server:
            yield Site(server, proxy, token, admin_token, backups, restore_tree())
    finally:
        proxy.stop()


def sign_in(page, site: Site, token: str | None = None) -> None:
    page.goto(site.url + "/")
    page.fill("#token", token or site.token)
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("tr.backup")


def repositories_shown(page) -> dict[str, list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        "tr.repository", "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
    )
    return {row[0]: row[1:] for row in rows}


def test_repositories_view_shows_the_bucket_beside_the_directory(page, site: Site) -> None:
    assert set(site.backups) == {"disks", "offsite"}
    sign_in(page, site, site.admin_token)
    page.click("nav a[data-nav=repositories]")
    page.wait_for_selector("tr.repository[data-repository=offsite]")
    shown = repositories_shown(page)
    assert set(shown) == {"disks", "offsite"}
    kind, where, held, status, _ = shown["offsite"]
    assert kind == "S3 bucket"
    assert where.splitlines()[0].rstrip("/") == f"s3://{BUCKET}/{PREFIX}"
    assert site.proxy.endpoint in where and REGION in where
    assert (held, status) == ("1", "available")
    kind, where, held, status, _ = shown["disks"]
    assert (kind, held, status) == ("Directory", "1", "available")
    assert ACCESS_KEY not in page.content() and SECRET_KEY not in page.content()
    shot(page, "20-repositories")


def test_a_user_sees_the_repositories_but_not_where_they_are(page, site: Site) -> None:
    sign_in(page, site)  # alice, not an admin
    page.click("nav a[data-nav=repositories]")
    page.wait_for_selector("tr.repository[data-repository=offsite]")
    shown = repositories_shown(page)
    kind, where, held, status, _ = shown["offsite"]
    assert (kind, where, held, status) == ("S3 bucket", "<repository offsite>", "1", "available")
    assert BUCKET not in page.content() and site.proxy.endpoint not in page.content()


def test_an_s3_backup_is_browsed_and_downloaded_like_a_local_one(page, site: Site) -> None:
    sign_in(page, site)
    listings = {}
    for repository in ("disks", "offsite"):
        page.click("nav a[data-nav=backups]")
        page.click(f"tr.backup[data-backup-id='{site.backups[repository]}'] button")
        page.wait_for_selector(".listing[data-state=ready][data-path='/']")
        listings[repository] = page.eval_on_selector_all(
            ".frow[data-path]", "els => els.map(e => e.dataset.path)"
        )
    top = {"/" + e.name for e in os.scandir(site.tree)}
    assert top <= set(listings["offsite"])
    assert listings["offsite"] == listings["disks"]
    shot(page, "21-browse-s3")

    wait_for_service_worker(page)
    page.click(".frow[data-path='/docs'] a.label")
    page.wait_for_selector(".listing[data-state=ready][data-path='/docs']")
    with page.expect_download() as info:
        page.click(".frow[data-path='/docs/data.bin'] button.act")
    got = Path(info.value.path()).read_bytes()
    assert got == (site.tree / "docs" / "data.bin").read_bytes()


def test_the_s3_backup_is_indexed_and_found_by_the_search_box(page, site: Site) -> None:
    """The scan queued both backups' index jobs; the service's runners index the S3 one
    through the bucket as they index the local one, and the search box finds the file in
    both."""
    ids = sorted(site.backups.values())
    headers = {"Authorization": f"Bearer {site.token}"}
    with httpx.Client(base_url=site.url + "/api/v1", headers=headers, timeout=60) as c:
        # no deadline of its own: a hang ends at the test's pytest-timeout limit
        while True:
            states = {b["backup_id"]: b for b in c.get("/index").json()["backups"]}
            if all(states[i]["state"] == "done" for i in ids):
                break
            assert not any(states[i]["state"] == "failed" for i in ids), states
            time.sleep(0.5)
    entries = sum(1 for _ in site.tree.rglob("*"))
    for i in ids:  # every entry of the tree, its root and lost+found
        assert states[i]["entries"] >= entries + 1, states
    sign_in(page, site)
    page.click("nav a[data-nav=search]")
    page.fill("input[name=q]", "data.bin")
    page.click("form.search-form button[type=submit]")
    page.wait_for_selector(".search-results[data-state=ready]")
    held = page.eval_on_selector_all(
        ".hit[data-path='/docs/data.bin'] li.held", "els => els.map(e => e.dataset.backupId)"
    )
    assert sorted(int(i) for i in held) == ids


def test_repositories_view_fits_a_narrow_window(browser, site: Site) -> None:
    context = browser.new_context(viewport={"width": 420, "height": 860})
    try:
        page = context.new_page()
        sign_in(page, site)
        assert page.evaluate("document.documentElement.scrollWidth") <= 420
        page.click("nav a[data-nav=repositories]")
        page.wait_for_selector("tr.repository[data-repository=offsite]")
        assert page.evaluate("document.documentElement.scrollWidth") <= 420
        fits = (
            "t => t.getBoundingClientRect().right <= t.parentElement.getBoundingClientRect().right"
        )
        assert page.eval_on_selector("table[aria-label=Repositories]", fits)  # no hidden column
        assert page.is_visible("tr.repository[data-repository=offsite] .badge-bad, "
                               "tr.repository[data-repository=offsite] .badge-ok")  # fmt: skip
        shot(page, "23-repositories-narrow")
    finally:
        context.close()


def test_an_unreachable_store_is_shown_unavailable(page, site: Site) -> None:
    """Last in this module: it stops the proxy the S3 repository is reached through."""
    site.proxy.stop()
    sign_in(page, site)
    page.click("nav a[data-nav=repositories]")
    page.wait_for_selector("tr.repository[data-repository=offsite]")
    shown = repositories_shown(page)
    status = shown["offsite"][3]
    assert status.splitlines()[0] == "unavailable"
    assert len(status.splitlines()) > 1  # the reason, on its own line
    assert shown["disks"][3] == "available"
    shot(page, "22-repositories-s3-down")

"""The page's "Restore to...": a selection restored as a job into the server's configured
local target, followed in the dialog to its end, and checked against the source tree with
stat and sha256sum (tests/jobs/treecheck.py); a destination leaving the target is refused
in the dialog, by name."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.api.conftest import Env
from tests.jobs.treecheck import compare
from tests.web.conftest import shot, sign_in, unmount_all


def _targets(api: Env) -> Path:
    return api.state_dir.parent / "targets"


def test_a_selection_is_restored_to_a_target_from_the_page(page, api: Env) -> None:
    unmount_all(api)
    sign_in(page, api)
    page.click(f"tr.backup[data-backup-id='{api.backups['ext4']}'] button")
    page.wait_for_selector(".listing[data-state=ready][data-path='/']")
    page.click(".frow[data-path='/docs'] input[type=checkbox]")
    page.click(".frow[data-path='/hello.txt'] input[type=checkbox]")
    page.click(".tray button[data-action=restore-to]")
    page.wait_for_selector("#restore-target option[value=local]", state="attached")
    # a destination that leaves the target: refused by name, the dialog stays open
    page.fill("#restore-destination", "../outside")
    page.click("dialog .dlg-foot .btn-primary")
    alert = page.wait_for_selector("dialog .alert-error")
    assert "destination_escape" in alert.inner_text()
    assert not (_targets(api).parent / "outside").exists()
    page.fill("#restore-destination", "from-page")
    page.check("dialog input[name=policy][value=rename]")
    shot(page, "10-restore-dialog")
    page.click("dialog .dlg-foot .btn-primary")
    status = page.wait_for_selector("dialog [data-job-status=completed]", timeout=120_000)
    text = status.inner_text()
    assert text.startswith("Restored to local:from-page")
    shot(page, "11-restore-done")
    dest = _targets(api) / "from-page"
    assert compare(api.source.tree, dest, ["/docs", "/hello.txt"]) >= 5
    docs = api.source.tree / "docs"
    # "files" are regular files and symbolic links (/hello.txt is one)
    kinds = [(Path(d) / f).lstat().st_mode for d, _, fs in os.walk(docs) for f in fs]
    files = 1 + sum(stat.S_ISREG(m) or stat.S_ISLNK(m) for m in kinds)
    assert f"{files} of {files} files" in text
    # the job is the API's too, with the same outcome
    job_id = status.get_attribute("data-job-id")
    with api.client() as c:
        job = c.get(f"/api/v1/restore/jobs/{job_id}").json()
    assert job["status"] == "completed" and job["policy"] == "rename"
    assert job["destination"] == "from-page"
    page.click("dialog .dlg-foot .btn-primary")
    page.wait_for_selector("dialog", state="detached")

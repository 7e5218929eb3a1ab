"""The page's search box in Chromium against a real server: the demo's full and incremental
backups are indexed by the service's own runner (queued through the API), a search shows
each file once with its versions and the backups holding them, and a version's Restore
button opens that backup at the file's folder. Expected values come from the demo's
committed trees (demo/source and demo/changes), never from the server."""

from __future__ import annotations

import time

from tests.api.conftest import API, Env
from tests.web.conftest import ROOT, shot, sign_in, unmount_all

DEMO = ROOT / "demo"


def _index_demo(api: Env) -> None:
    ids = [api.backups["demo-full"], api.backups["demo-incr"]]
    with api.client("admin") as c:
        for backup_id in ids:
            assert c.post(f"{API}/backups/{backup_id}/index").status_code == 202
        # no deadline of its own: a hang ends at the test's pytest-timeout limit
        while True:
            states = {b["backup_id"]: b["state"] for b in c.get(f"{API}/index").json()["backups"]}
            if all(states[i] == "done" for i in ids):
                return
            assert "failed" not in {states[i] for i in ids}, states
            time.sleep(0.5)


def test_search_box_versions_and_restore(page, api: Env):
    _index_demo(api)
    unmount_all(api)
    sign_in(page, api)
    page.click("nav a[data-nav=search]")
    page.fill("input[name=q]", "NOTES")  # any case
    page.click("form.search-form button[type=submit]")
    page.wait_for_selector(".search-results[data-state=ready]")
    shot(page, "20-search")
    hits = page.eval_on_selector_all(".hit", "els => els.map(e => e.dataset.path)")
    assert hits == ["/home/alice/notes.txt"]
    hit = ".hit[data-path='/home/alice/notes.txt']"
    versions = page.eval_on_selector_all(
        f"{hit} tr.version",
        "rows => rows.map(r => [...r.querySelectorAll('li.held')].map(l => l.dataset.backupId))",
    )
    full, incr = str(api.backups["demo-full"]), str(api.backups["demo-incr"])
    # the incremental changed notes.txt (demo/changes): one version in each backup
    assert versions == [[full], [incr]]
    sizes = page.eval_on_selector_all(
        f"{hit} tr.version td.num", "els => els.map(e => e.innerText.trim())"
    )
    want = [
        (DEMO / tree / "linux/home/alice/notes.txt").stat().st_size
        for tree in ("source", "changes")
    ]
    assert [s.replace("\u00a0", " ") for s in sizes] == [f"{n} B" for n in want]

    # a glob over the NTFS volume: one version, held by both backups
    page.fill("input[name=q]", "report.*")
    page.click("form.search-form button[type=submit]")
    page.wait_for_selector(".hit[data-path='/Users/Bob/Documents/report.txt']")
    held = page.eval_on_selector_all(
        ".hit[data-path='/Users/Bob/Documents/report.txt'] li.held",
        "els => els.map(e => e.dataset.backupId)",
    )
    assert held == [full, incr]

    page.fill("input[name=q]", "no-such-file-anywhere")
    page.click("form.search-form button[type=submit]")
    page.wait_for_selector(".search-results[data-state=ready] .empty")

    # Restore the old version of notes.txt: the full backup opens at /home/alice
    page.fill("input[name=q]", "notes")
    page.click("form.search-form button[type=submit]")
    page.wait_for_selector(f"{hit} li.held[data-backup-id='{full}'] button")
    modified = page.eval_on_selector_all(
        f"{hit} tr.version", "rows => rows.map(r => r.querySelectorAll('td')[2].innerText.trim())"
    )
    page.click(f"{hit} li.held[data-backup-id='{full}'] button")
    page.wait_for_selector(".listing[data-state=ready][data-path='/home/alice']")
    # the index's version shows the modification time the browsed entry (read from the
    # filesystem, not the index) shows
    listed = page.inner_text(".frow[data-path='/home/alice/notes.txt'] .c-mtime").strip()
    assert modified[0] == listed and listed[:2] == "20", (modified, listed)
    shown = page.eval_on_selector_all(".frow[data-path]", "els => els.map(e => e.dataset.path)")
    want_names = sorted(p.name for p in (DEMO / "source/linux/home/alice").iterdir())
    assert sorted(p.rsplit("/", 1)[-1] for p in shown) == want_names
    with api.client("alice") as c:
        mounts = c.get(f"{API}/restore/mounts").json()["mounts"]
    assert [(m["backup_id"], m["volume"]) for m in mounts] == [(api.backups["demo-full"], "p1")]
    # the file's details show its history across the disk's backups, from the index
    page.click(".frow[data-path='/home/alice/notes.txt'] .meta >> nth=0")
    page.click(".details button:has-text('History')")
    page.wait_for_selector(".details .history[data-state=ready]")
    shot(page, "21-history")
    held = page.eval_on_selector_all(
        ".details .history tr.version",
        "rows => rows.map(r => [...r.querySelectorAll('li.held')].map(l => l.dataset.backupId))",
    )
    assert held == [[full], [incr]]
    events = page.eval_on_selector_all(
        ".details .history ul.events li", "els => els.map(e => e.innerText)"
    )
    assert events == [f"appeared in backup #{full}", f"changed in backup #{incr}"]


def test_compare_two_backups(page, api: Env):
    _index_demo(api)
    sign_in(page, api)
    incr = api.backups["demo-incr"]
    page.click(f"tr.backup[data-backup-id='{incr}'] a.compare-link")
    page.wait_for_selector(".compare[data-state=ready]")
    shot(page, "22-compare")
    got = set(
        page.eval_on_selector_all(
            "tr.change", "rows => rows.map(r => r.dataset.change + ' ' + r.dataset.path)"
        )
    )
    # what the demo's incremental did (demo/changes, demo/deleted.txt), per volume's tree
    changed = {
        "/" + p.relative_to(DEMO / "changes" / tree).as_posix()
        for tree in ("linux", "windows")
        for p in (DEMO / "changes" / tree).rglob("*")
        if p.is_file()
    }
    for path in changed:
        tree = "linux" if (DEMO / "changes/linux" / path.lstrip("/")).exists() else "windows"
        existed = (DEMO / "source" / tree / path.lstrip("/")).exists()
        assert f"{'changed' if existed else 'added'} {path}" in got, (path, got)
    for rel in (DEMO / "deleted.txt").read_text().split():
        path = "/" + rel.split("/", 1)[1]
        assert f"removed {path}" in got, (path, got)

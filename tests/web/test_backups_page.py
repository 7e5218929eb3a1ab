"""End-to-end, in Chromium against a real server: the backups list (groups, order, filter,
counts), the volume picker with session reuse, and the sessions page; expected values from
the API, sfdisk and blkid."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from tests.api.conftest import API, Env
from tests.imagebuild.qcow import qemu_raw
from tests.web.browsing import mount_id_from_url, open_backup, rows_shown, wait_listing
from tests.web.conftest import ROOT, shot, sign_in, unmount_all


def test_backups_grouped_newest_first_and_filtered(page, api: Env):
    sign_in(page, api)
    with api.client("alice") as c:
        listed = c.get(f"{API}/backups").json()["backups"]
    groups = page.eval_on_selector_all("tr.group td", "els => els.map(e => e.innerText)")
    vms = sorted({b["vm_name"] for b in listed})
    assert [g.split("·")[0].strip() for g in groups] == vms
    # within a VM and disk, newest first; the incremental is marked so
    ids = [
        int(i)
        for i in page.eval_on_selector_all("tr.backup", "els => els.map(e => e.dataset.backupId)")
    ]
    demo = [ids.index(api.backups["demo-incr"]), ids.index(api.backups["demo-full"])]
    assert demo == sorted(demo), "the incremental (made after the full) must come first"
    incr = page.inner_text(f"tr.backup[data-backup-id='{api.backups['demo-incr']}']")
    full = page.inner_text(f"tr.backup[data-backup-id='{api.backups['demo-full']}']")
    assert "INCREMENTAL" in incr and "FULL" in full
    # virtual size: the demo disk's raw size as qemu-img converts it
    raw_size = qemu_raw(api.demo / "web01" / "disk0-full.qcow2").stat().st_size
    assert f"{raw_size / 2**20:.1f} MiB" in full
    shot(page, "03-backups")
    page.fill("[data-filter]", "srv1")
    page.wait_for_function("() => document.querySelectorAll('tr.backup').length === 1")
    assert page.get_attribute("tr.backup", "data-backup-id") == str(api.backups["ext4"])
    page.fill("[data-filter]", "no-such-vm")
    page.wait_for_selector("text=No backup matches the filter")


def test_backups_list_sorts_within_each_disk(page, api: Env):
    """Issue 14, item 6: the backups list can be sorted (within each VM's disk)."""
    sign_in(page, api)
    full, incr = api.backups["demo-full"], api.backups["demo-incr"]
    with api.client("alice") as c:
        made = {b["id"]: b["created_at"] for b in c.get(f"{API}/backups").json()["backups"]}
    assert made[incr] > made[full]  # the catalog's dates: the incremental is newer

    def order() -> list[int]:
        ids = page.eval_on_selector_all("tr.backup", "els => els.map(e => +e.dataset.backupId)")
        return [i for i in ids if i in (full, incr)]

    assert order() == [incr, full]  # default: newest first
    page.click("thead button[data-sort=created]")  # oldest first
    page.wait_for_selector("th[aria-sort=ascending] button[data-sort=created]")
    assert order() == [full, incr]
    page.click("thead button[data-sort=kind]")  # full before incremental
    page.wait_for_selector("th[aria-sort=ascending] button[data-sort=kind]")
    assert order() == [full, incr]
    page.click("thead button[data-sort=kind]")
    page.wait_for_selector("th[aria-sort=descending] button[data-sort=kind]")
    assert order() == [incr, full]


def _blkid_type(raw: Path, offset: int) -> str:
    out = subprocess.run(
        ["blkid", "-p", "-O", str(offset), "-o", "value", "-s", "TYPE", str(raw)],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_volume_picker_and_session_reuse(page, api: Env):
    unmount_all(api)
    sign_in(page, api)
    open_backup(page, api.backups["demo-full"])
    page.wait_for_selector("dialog tr.opt")
    shot(page, "04-volume-picker")
    raw = qemu_raw(api.demo / "web01" / "disk0-full.qcow2")
    table = json.loads(
        subprocess.run(
            ["sfdisk", "--json", str(raw)], capture_output=True, text=True, check=True
        ).stdout
    )["partitiontable"]
    options = page.eval_on_selector_all(
        "dialog tr.opt", "els => els.map(e => [...e.cells].map(c => c.innerText.trim()))"
    )
    assert len(options) == len(table["partitions"]) == 2
    for (vol, label, fs, size), part in zip(options, table["partitions"], strict=True):
        assert vol == f"p{part['node'][-1]}"
        assert label.startswith(part["name"])
        assert fs == _blkid_type(raw, part["start"] * 512).replace("vfat", "fat")
        assert size == f"{part['size'] * 512 / 2**20:.1f} MiB"
    # keyboard: the second volume, chosen with the arrow key and Enter
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    wait_listing(page, "/")
    first = mount_id_from_url(page)
    top = sorted(os.listdir(ROOT / "demo" / "source" / "windows"))
    shown = [p.lstrip("/") for p in rows_shown(page)]
    for name in top:
        assert name in shown
    # the same backup and volume again: the open session is reused, not a second one made
    page.click("nav a[data-nav=backups]")
    open_backup(page, api.backups["demo-full"])
    page.click("dialog tr.opt[data-volume='p2']")
    page.wait_for_selector(".toast:has-text('Session reused')")
    wait_listing(page, "/")
    assert mount_id_from_url(page) == first
    with api.client("alice") as c:
        mine = [
            m
            for m in c.get(f"{API}/restore/mounts").json()["mounts"]
            if m["backup_id"] == api.backups["demo-full"]
        ]
    assert [m["mount_id"] for m in mine] == [first]


def test_sessions_page_lists_expiry_and_closes(page, api: Env):
    unmount_all(api)
    mount = api.mount("alice")
    sign_in(page, api)
    page.click("nav a[data-nav=sessions]")
    row = page.wait_for_selector(f"tr[data-mount-id='{mount}']")
    cells = row.eval_on_selector_all("td", "els => els.map(e => e.innerText.trim())")
    with api.client("alice") as c:
        info = next(
            m for m in c.get(f"{API}/restore/mounts").json()["mounts"] if m["mount_id"] == mount
        )
    assert cells[1] == info["volume"]
    assert re.fullmatch(r"in \d+ (min|h \d+ min)", cells[5]), cells[5]
    shot(page, "09-sessions")
    row.query_selector("button:has-text('Close')").click()
    page.click("dialog .dlg-foot .btn-primary")
    page.wait_for_selector(f"tr[data-mount-id='{mount}']", state="detached")
    with api.client("alice") as c:
        assert mount not in [m["mount_id"] for m in c.get(f"{API}/restore/mounts").json()["mounts"]]


def test_owner_names_counts_and_toasts_clear_of_the_buttons(page, api: Env):
    """Issue 14, item 6: the owner is the token's name; "1 VM" not "1 VMs"; the per-worker
    figures say so; a toast does not cover the toolbar's buttons."""
    unmount_all(api)
    mount = api.mount("alice")
    sign_in(page, api)
    with api.client("alice") as c:
        backups = c.get(f"{API}/backups").json()["backups"]
    vms = {b["vm_name"] for b in backups}
    n_b, n_vm = len(backups), len(vms)
    expected = f"{n_b} backup{'' if n_b == 1 else 's'} · {n_vm} VM{'' if n_vm == 1 else 's'}"
    assert page.inner_text(".count") == expected
    page.click("nav a[data-nav=sessions]")
    row = page.wait_for_selector(f"tr[data-mount-id='{mount}']")
    assert row.eval_on_selector("td.c-owner", "e => e.innerText.trim()") == "alice"
    assert page.is_visible("text=Readers open (this worker)")

    page.goto(f"{api.url}/#/browse/{mount}?path=/")
    wait_listing(page, "/")
    page.evaluate(
        "import('/static/ui.js')"
        ".then(m => m.toast('error', 'A long failure title', 'x'.repeat(300)))"
    )
    toast = page.wait_for_selector(".toast").bounding_box()
    assert toast is not None
    for selector in (
        ".session-bar a:has-text('All sessions')",
        ".session-bar button:has-text('Close session')",
        "button[aria-label='Reload this folder']",
    ):
        button = page.locator(selector).bounding_box()
        assert button is not None, selector
        apart = (
            toast["x"] + toast["width"] <= button["x"]
            or button["x"] + button["width"] <= toast["x"]
            or toast["y"] + toast["height"] <= button["y"]
            or button["y"] + button["height"] <= toast["y"]
        )
        assert apart, (selector, toast, button)
    shot(page, "toast-clear-of-buttons")

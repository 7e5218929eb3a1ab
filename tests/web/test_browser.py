"""End-to-end: the web page in Chromium against a real server; expected values from the trees."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.api.conftest import API, Env
from tests.imagebuild.qcow import qemu_raw
from tests.web.conftest import ROOT, shot, sign_in, unmount_all, wait_for_service_worker


def rows_shown(page) -> list[str]:
    shown: list[str] = page.eval_on_selector_all(
        ".frow[data-path]", "els => els.map(e => e.dataset.path)"
    )
    return shown


def open_backup(page, backup_id: int) -> None:
    page.click(f"tr.backup[data-backup-id='{backup_id}'] button")


def wait_listing(page, path: str) -> None:
    """Until the first page of ``path`` is drawn."""
    page.wait_for_selector(f".listing[data-state=ready][data-path='{path}']")


def browse_ext4_root(page, api: Env) -> None:
    """With no sessions left over: sign in and open the ext4 backup at its root (it holds
    one filesystem: no volume picker)."""
    unmount_all(api)
    sign_in(page, api)
    open_backup(page, api.backups["ext4"])
    wait_listing(page, "/")


def mount_id_from_url(page) -> str:
    m = re.search(r"#/browse/([^?]+)", page.url)
    assert m, page.url
    return m.group(1)


def test_invalid_token_is_refused_readably(page, api: Env):
    page.goto(api.url + "/")
    shot(page, "01-signin")
    page.fill("#token", "fr_0_this-is-not-a-token")
    page.click("form.signin button[type=submit]")
    alert = page.wait_for_selector("#signin-error .alert-error")
    text = alert.inner_text()
    assert "not accepted" in text
    assert "401" in text
    assert page.evaluate("sessionStorage.getItem('filerestore.token')") is None
    assert page.is_hidden("#topbar")
    shot(page, "02-signin-refused")


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


def test_browse_download_archive_and_close(page, api: Env, tmp_path):
    tree = api.source.tree
    browse_ext4_root(page, api)
    mount = mount_id_from_url(page)
    # folders first, then files, each by name as the tree has them
    shown = rows_shown(page)
    keys = [
        (not e.is_dir(follow_symlinks=False), e.name.casefold(), e.name) for e in os.scandir(tree)
    ]
    keys.append((False, "lost+found", "lost+found"))  # made by mke2fs, not in the tree
    expected = ["/" + name for _, _, name in sorted(keys)]
    assert shown == expected[: len(shown)]
    # a symlink shows its target
    link = page.inner_text(".frow[data-path='/link-relative'] .target")
    assert link == "→ " + os.readlink(tree / "link-relative")
    # details of a file: size and mode as the tree has them
    page.click(".frow[data-path='/hello.txt'] .meta >> nth=0")
    st = os.lstat(tree / "hello.txt")
    page.wait_for_selector(f".details dd:text-is('{st.st_size} bytes')")
    assert stat.filemode(st.st_mode) in page.inner_text(".details dl")
    shot(page, "05-browse-root")

    # three levels down: a click, a click, then the keyboard
    page.click(".frow[data-path='/level00'] a.label")
    wait_listing(page, "/level00")
    page.click(".frow[data-path='/level00/level01'] a.label")
    wait_listing(page, "/level00/level01")
    page.focus(".rows")
    page.keyboard.press("Home")
    page.keyboard.press("Enter")
    wait_listing(page, "/level00/level01/level02")
    crumbs = page.inner_text(".crumbs").split()
    assert [c for c in crumbs if c != "/"] == ["level00", "level01", "level02"]
    assert rows_shown(page) == ["/level00/level01/level02/level03"]
    page.keyboard.press("Backspace")
    wait_listing(page, "/level00/level01")
    page.click(".crumbs a[aria-label='Root folder']")
    wait_listing(page, "/")

    # download one file (streamed by the service worker) and compare its bytes with the tree
    wait_for_service_worker(page)
    page.click(".frow[data-path='/docs'] a.label")
    wait_listing(page, "/docs")
    with page.expect_download() as info:
        page.click(".frow[data-path='/docs/data.bin'] button.act")
    dl = info.value
    assert dl.suggested_filename == "data.bin"
    assert Path(dl.path()).read_bytes() == (tree / "docs" / "data.bin").read_bytes()
    done = page.wait_for_selector(".downloads .dl.done:has-text('saved to the browser')")
    size = (tree / "docs" / "data.bin").stat().st_size  # the panel says how much came
    assert done.inner_text().split("·")[0].strip().endswith(_shown_bytes(size))

    # multi-select across two folders, then one ZIP
    page.click(".frow[data-path='/docs/readme.md'] input[type=checkbox]")
    page.click(".frow[data-path='/docs/sub'] input[type=checkbox]")
    page.click(".crumbs a[aria-label='Root folder']")
    wait_listing(page, "/")
    page.click(".frow[data-path='/unicode'] a.label")
    wait_listing(page, "/unicode")
    page.click(".frow[data-path='/unicode/café.txt'] input[type=checkbox]")
    assert "3 selected" in page.inner_text(".tray")
    page.click(".tray button:has-text('Download ZIP')")
    page.wait_for_function(
        "() => { const b = document.querySelector(\"dialog [data-total='files']\");"
        " return b && !b.textContent.endsWith('+'); }"
    )
    picked = [tree / "docs" / "readme.md", tree / "docs" / "sub", tree / "unicode" / "café.txt"]
    files = [p for p in picked if p.is_file()] + [
        Path(d) / f for p in picked if p.is_dir() for d, _, fs in os.walk(p) for f in fs
    ]
    assert page.inner_text("dialog [data-total='files']") == str(len(files))
    total = sum(f.stat().st_size for f in files)
    assert total < 1024
    assert page.inner_text("dialog [data-total='bytes']") == f"{total} B"
    shot(page, "06-archive-dialog")
    with page.expect_download() as info:
        page.click("dialog .dlg-foot .btn-primary")
    dl = info.value
    assert dl.suggested_filename.endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(Path(dl.path()).read_bytes())) as z:
        names = set(z.namelist())
        assert names == {"readme.md", "sub/", "sub/nested.txt", "café.txt"}
        assert z.read("readme.md") == (tree / "docs" / "readme.md").read_bytes()
        assert z.read("sub/nested.txt") == (tree / "docs" / "sub" / "nested.txt").read_bytes()
        assert z.read("café.txt") == (tree / "unicode" / "café.txt").read_bytes()
    page.wait_for_selector(".downloads .dl.done:has-text('saved to the browser') >> nth=1")

    # close the session from the page
    page.click("button:has-text('Close session')")
    page.click("dialog .dlg-foot .btn-primary")
    page.wait_for_selector(".toast:has-text('Session closed')")
    page.wait_for_url(re.compile(r"#/sessions$"))
    with api.client("alice") as c:
        left = [m["mount_id"] for m in c.get(f"{API}/restore/mounts").json()["mounts"]]
    assert mount not in left
    assert page.query_selector(f"tr[data-mount-id='{mount}']") is None


def test_ten_thousand_entries_scroll_filter_and_sort(page, api: Env):
    names = sorted(os.listdir(api.source.tree / "many"))
    assert len(names) == 10_000
    browse_ext4_root(page, api)
    page.click(".frow[data-path='/many'] a.label")
    wait_listing(page, "/many")
    assert "10,000 items" in page.inner_text(".status-line")
    assert rows_shown(page)[:5] == [f"/many/{n}" for n in names[:5]]
    # virtualised: a screenful of rows in the DOM, not ten thousand
    assert page.eval_on_selector_all(".frow", "els => els.length") < 120
    shot(page, "07-large-directory")
    page.focus(".rows")
    page.keyboard.press("End")
    page.wait_for_selector(f".frow.active[data-path='/many/{names[-1]}']")
    tail = rows_shown(page)
    assert tail == [f"/many/{n}" for n in names[-len(tail) :]]
    page.wait_for_function("() => !document.querySelector('.status-line .spinner')")
    assert "loaded" not in page.inner_text(".status-line")  # every page fetched
    page.keyboard.press("Home")
    page.wait_for_selector(f".frow.active[data-path='/many/{names[0]}']")
    # the name filter for the current directory
    page.fill("[data-filter]", "FILE0999")
    matching = [n for n in names if "file0999" in n.lower()]
    page.wait_for_function(
        f"() => document.querySelectorAll('.frow[data-path]').length === {len(matching)}"
    )
    assert rows_shown(page) == [f"/many/{n}" for n in matching]
    assert f"{len(matching)} match" in page.inner_text(".status-line")
    page.fill("[data-filter]", "")
    # sorted by name, descending
    page.click(".cols button.sort:has-text('Name')")
    page.wait_for_selector(f".frow[data-path='/many/{names[-1]}'][aria-rowindex='2']")
    assert rows_shown(page)[:3] == [f"/many/{n}" for n in names[::-1][:3]]


def test_api_errors_are_shown(page, api: Env):
    unmount_all(api)
    sign_in(page, api)
    mount = api.mount("alice")
    page.goto(f"{api.url}/#/browse/{mount}?path=/no/such/dir")
    alert = page.wait_for_selector(".list-message .alert-error")
    text = alert.inner_text()
    assert "/no/such/dir could not be listed" in text
    assert "HTTP 404" in text
    shot(page, "08-error")
    page.goto(f"{api.url}/#/browse/00000000-not-a-session?path=/")
    alert = page.wait_for_selector(".list-message .alert-error")
    assert "HTTP 404" in alert.inner_text()
    # a download from a session closed meanwhile fails on the page, readably
    page.goto(f"{api.url}/#/browse/{mount}?path=/")
    wait_listing(page, "/")
    wait_for_service_worker(page)
    with api.client("alice") as c:
        assert c.delete(f"{API}/restore/{mount}").status_code == 204
    page.click(".frow[data-path='/hello.txt'] button.act")
    failed = page.wait_for_selector(".downloads .dl.failed .alert-error")
    assert "mount_not_found" in failed.inner_text() or "not_found" in failed.inner_text()
    shot(page, "08-download-error")


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


@pytest.mark.parametrize("width", [420, 800])
def test_narrow_window(browser, api: Env, width: int):
    unmount_all(api)
    context = browser.new_context(viewport={"width": width, "height": 860}, accept_downloads=True)
    try:
        page = context.new_page()
        sign_in(page, api)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        shot(page, f"10-narrow-{width}-backups")
        open_backup(page, api.backups["ext4"])
        wait_listing(page, "/")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert page.is_visible(".frow[data-path='/docs'] a.label")
        shot(page, f"10-narrow-{width}-browse")
        # the details pane is an overlay here: a file's name opens it, its close button shuts it
        page.click(".frow[data-path='/hello.txt'] .label")
        page.wait_for_selector(".details dd:text-is('13 bytes')")
        assert page.is_visible(".details")
        shot(page, f"10-narrow-{width}-details")
        page.click(".details .close-pane")
        assert page.is_hidden(".details")
    finally:
        context.close()


def _shown_bytes(n: int) -> str:
    """A byte count as the page shows it (binary units, 3 significant digits)."""
    if n < 1024:
        return f"{n} B"
    value, unit = float(n), 0
    while value >= 1024 and unit < 5:
        value /= 1024
        unit += 1
    digits = 2 if value < 10 else 1 if value < 100 else 0
    return f"{value:.{digits}f} {['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'][unit]}"


def test_directory_download_shows_totals_then_tar_gz(buffered_page, api: Env):
    """Without a service worker: the page reads the downloads itself, then saves them."""
    page = buffered_page
    tree = api.source.tree
    browse_ext4_root(page, api)
    # a 32 MiB file: the page folds the stream into blob parts every 16 MiB
    with page.expect_download() as info:
        page.click(".frow[data-path='/sparse.bin'] button.act")
    assert Path(info.value.path()).read_bytes() == (tree / "sparse.bin").read_bytes()
    page.wait_for_selector(".downloads .dl.done:has-text('saved')")
    assert page.evaluate("navigator.serviceWorker.controller") is None
    page.click(".frow[data-path='/docs'] .meta >> nth=0")
    page.click(".details button:has-text('TAR.GZ')")
    files, dirs, links, size = 0, 1, 0, 0
    for d, subdirs, names in os.walk(tree / "docs"):
        dirs += len(subdirs)
        for n in names:
            st = os.lstat(Path(d) / n)
            if stat.S_ISREG(st.st_mode):
                files, size = files + 1, size + st.st_size
            elif stat.S_ISLNK(st.st_mode):
                links += 1
    page.wait_for_function(
        "() => { const b = document.querySelector(\"dialog [data-total='bytes']\");"
        " return b && !b.textContent.endsWith('+'); }"
    )
    assert page.inner_text("dialog [data-total='files']") == str(files)
    assert page.inner_text("dialog [data-total='bytes']") == _shown_bytes(size)
    assert page.inner_text("dialog [data-total='dirs']") == str(dirs)
    # the format chosen with the button is not asked again; the archive's top name is relative
    assert page.locator("dialog input[type=radio]").count() == 0
    assert page.inner_text("dialog .dlg-foot .btn-primary") == "Download TAR.GZ"
    assert page.inner_text("dialog .sel-list .p") == "docs/"
    with page.expect_download() as info:
        page.click("dialog .dlg-foot .btn-primary")
    dl = info.value
    with api.client() as c:  # named from the backup: VM, disk, its date, then the path
        b = c.get(f"{API}/backups/{api.backups['ext4']}").json()
    named = [b["vm_name"], b["disk_name"], b["created_at"][:10], "docs"]
    assert dl.suggested_filename == "_".join(n for n in named if n) + ".tar.gz"
    with tarfile.open(dl.path(), "r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        for d, subdirs, names in os.walk(tree / "docs"):
            for n in subdirs + names:
                src = Path(d) / n
                m = members.pop(str(src.relative_to(tree)))
                if src.is_symlink():
                    assert m.issym() and m.linkname == os.readlink(src)
                elif src.is_file():
                    data = tar.extractfile(m)
                    assert data is not None and data.read() == src.read_bytes()
                else:
                    assert m.isdir()
        assert set(members) == {"docs"}


def test_revoked_token_returns_to_sign_in(page, api: Env):
    sign_in(page, api, who="dave")
    subprocess.run(
        [str(Path(sys.executable).parent / "filerestore"), "token", "revoke", "dave"],
        env={**os.environ, "FILERESTORE_STATE_DIR": str(api.state_dir)},
        check=True,
        capture_output=True,
    )
    page.click("button:has-text('Refresh')")
    notice = page.wait_for_selector("#signin-error .alert-error")
    assert "no longer accepted" in notice.inner_text()
    assert page.evaluate("sessionStorage.getItem('filerestore.token')") is None


def test_keyboard_selection_and_empty_folder(page, api: Env):
    tree = api.source.tree
    browse_ext4_root(page, api)
    page.focus(".rows")
    page.keyboard.press("Home")
    page.keyboard.press("Space")  # docs, the first folder
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")  # level00
    assert "2 selected" in page.inner_text(".tray")
    assert page.is_checked(".frow[data-path='/docs'] input[type=checkbox]")
    assert page.is_checked(".frow[data-path='/level00'] input[type=checkbox]")
    page.keyboard.press("Escape")
    assert page.is_hidden(".tray")
    empty = [p for p in (tree / "hostile").iterdir() if p.is_dir() and not any(p.iterdir())]
    assert empty
    page.goto(f"{api.url}/#/browse/{mount_id_from_url(page)}?path=/hostile/{empty[0].name}")
    page.wait_for_selector("text=This folder is empty.")


def test_sort_by_size_and_modified_time(page, api: Env):
    tree = api.source.tree
    browse_ext4_root(page, api)
    others = []
    for e in os.scandir(tree):
        st = e.stat(follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            # mke2fs -d copies whole seconds
            others.append((st.st_size, st.st_mtime_ns // 10**9, e.name.casefold(), e.name))

    def files_shown() -> list[str]:
        kinds = page.eval_on_selector_all(".frow[data-path]", "els => els.map(e => e.dataset.kind)")
        return [p.lstrip("/") for p, k in zip(rows_shown(page), kinds, strict=True) if k != "dir"]

    page.click(".cols button.sort:has-text('Size')")  # largest first
    page.wait_for_selector(".cols [aria-sort=descending] button:has-text('Size')")
    wait_listing(page, "/")
    by_size = sorted(others, key=lambda o: (o[0], o[2], o[3]), reverse=True)
    assert files_shown() == [o[3] for o in by_size]
    page.click(".cols button.sort:has-text('Modified')")  # newest first
    page.wait_for_selector(".cols [aria-sort=descending] button:has-text('Modified')")
    wait_listing(page, "/")
    by_time = sorted(others, key=lambda o: (o[1], o[2], o[3]), reverse=True)
    assert files_shown() == [o[3] for o in by_time]
    page.click(".cols button.sort:has-text('Modified')")  # oldest first
    page.wait_for_selector(".cols [aria-sort=ascending] button:has-text('Modified')")
    wait_listing(page, "/")
    assert files_shown() == [o[3] for o in reversed(by_time)]


def test_awkward_names_download_byte_exact(page, api: Env):
    """Names that are not UTF-8, or start with a dash or a space, travel as path_query."""
    tree = api.source.tree
    browse_ext4_root(page, api)
    wait_for_service_worker(page)
    cases = [
        ("unicode", os.fsdecode(b"latin1-caf\xe9.txt"), "latin1-caf\\xe9.txt"),
        ("unicode", "emoji-😀.txt", "emoji-😀.txt"),
        ("hostile", "--help", "--help"),
        ("hostile", " leading space", " leading space"),
    ]
    for folder, name, shown in cases:
        page.goto(f"{api.url}/#/browse/{mount_id_from_url(page)}?path=/{folder}")
        wait_listing(page, f"/{folder}")
        row = page.locator(".frow[data-kind=file]").filter(
            has=page.locator(".label", has_text=re.compile("^" + re.escape(shown) + "$"))
        )
        assert row.count() == 1, shown
        with page.expect_download() as info:
            row.locator("button.act").click()
        expected = (tree / folder / name).read_bytes()
        assert Path(info.value.path()).read_bytes() == expected, shown


def test_symlink_details_download_target(page, api: Env):
    tree = api.source.tree
    browse_ext4_root(page, api)
    wait_for_service_worker(page)
    page.click(".frow[data-path='/link-relative'] .meta >> nth=0")
    target = os.readlink(tree / "link-relative")
    page.wait_for_selector(f".details dd .mono:text-is('{target}')")
    with page.expect_download() as info:
        page.click(".details button:has-text('Target file')")
    assert Path(info.value.path()).read_bytes() == (tree / "link-relative").read_bytes()
    # a link to a folder opens as that folder
    page.click(".frow[data-path='/link-to-dir'] .meta >> nth=0")
    page.click(".details a:has-text('Open as folder')")
    wait_listing(page, "/link-to-dir")
    expected = sorted(os.listdir(tree / "link-to-dir"), key=lambda n: n.casefold())
    assert sorted(p.rsplit("/", 1)[1] for p in rows_shown(page)) == sorted(expected)


def test_first_click_after_sort_or_reload_picks_the_row_clicked(page, api: Env):
    """Issue 14, item 1: the first click after a sort or Reload selected row 0."""
    browse_ext4_root(page, api)
    names = set(os.listdir(api.source.tree))
    for step in ("sort", "reload", "sort"):
        if step == "sort":
            page.click(".cols button.sort:has-text('Name')")
        else:
            page.click("button[aria-label='Reload this folder']")
        wait_listing(page, "/")
        shown = rows_shown(page)
        assert names <= {p.lstrip("/") for p in shown}  # the source tree's root is listed
        target = shown[3]
        page.click(f".frow[data-path='{target}'] .meta.c-mode")
        active = page.eval_on_selector(".frow.active", "e => e.dataset.path")
        assert active == target, (step, active, target)


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


def test_a_streamed_download_that_fails_shows_as_failed_with_the_reason(page, api: Env):
    """Issue 14, item 2: a download the server refuses after the page's checks (here: the
    dangling link's target, which the page no longer offers, asked through the page's own
    download function) was shown as streaming, its bar full."""
    browse_ext4_root(page, api)
    wait_for_service_worker(page)
    mount = mount_id_from_url(page)
    with api.client() as c:  # what the API answers for that download
        r = c.get(f"{API}/restore/{mount}/download", params={"path": "/link-dangling"})
    assert r.status_code == 404
    reason = r.json()["error"]["message"]
    page.evaluate(
        """id => Promise.all([import('/static/api.js'), import('/static/downloads.js')])
            .then(([a, d]) => {
                d.download('link-dangling', a.api.download(id, '/link-dangling'));
            })""",
        mount,
    )
    failed = page.wait_for_selector(".downloads .dl.failed .alert-error")
    assert reason in failed.inner_text()
    assert page.locator(".downloads .dl.done").count() == 0
    shot(page, "download-failed")


def test_link_details_offer_what_the_target_allows(page, api: Env):
    """Issue 14, item 6: a dangling link says so and offers nothing that cannot work."""
    tree = api.source.tree
    browse_ext4_root(page, api)
    cases = {"link-dangling": "dangling", "link-to-dir": "dir", "link-relative": "file"}
    for name, kind in cases.items():
        target = tree / os.readlink(tree / name)
        expected = "dir" if target.is_dir() else "file" if target.is_file() else "dangling"
        assert expected == kind  # the source tree agrees
        page.click(f".frow[data-path='/{name}'] .meta >> nth=0")
        page.wait_for_selector(f".details .name:text-is('{name}')")
        if kind == "dangling":
            page.wait_for_selector(".details [data-link=dangling]")
        elif kind == "dir":
            page.wait_for_selector(".details a:has-text('Open as folder')")
        else:
            page.wait_for_selector(".details button:has-text('Target file')")
        assert page.locator(".details button:has-text('Target file')").count() == (kind == "file")
        assert page.locator(".details a:has-text('Open as folder')").count() == (kind == "dir")
        assert page.locator(".details button:has-text('ZIP')").count() == (kind == "dir")


def test_double_click_previews_text_and_images_and_refuses_binary(page, api: Env):
    """Issue 14, item 5: a bounded, sandboxed preview. Expected text from the source tree;
    the image's size from its PNG header (IHDR), read from the demo's source file."""
    tree = api.source.tree
    browse_ext4_root(page, api)
    page.dblclick(".frow[data-path='/hello.txt'] .meta >> nth=0")
    text = page.wait_for_selector("dialog pre[data-preview=text]")
    assert text.text_content() == (tree / "hello.txt").read_text()
    assert page.locator("dialog pre[data-preview=text] *").count() == 0  # text, not markup
    page.click("dialog .dlg-foot button:has-text('Close')")
    page.dblclick(".frow[data-path='/sparse.bin'] .meta >> nth=0")  # zeros: binary
    page.wait_for_selector("dialog [data-preview=none]:has-text('binary')")
    page.click("dialog .dlg-foot button:has-text('Close')")

    png = ROOT / "demo/source/windows/Users/Bob/Pictures/gradient.png"
    width, height = struct.unpack(">II", png.read_bytes()[16:24])
    mount = api.mount("alice", backup="demo-full", volume="p2")
    page.goto(f"{api.url}/#/browse/{mount}?path=/Users/Bob/Pictures")
    wait_listing(page, "/Users/Bob/Pictures")
    page.dblclick(".frow[data-path='/Users/Bob/Pictures/gradient.png'] .meta >> nth=0")
    page.wait_for_function(
        "() => { const i = document.querySelector('dialog img[data-preview=image]');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    size = page.eval_on_selector(
        "dialog img[data-preview=image]", "i => [i.naturalWidth, i.naturalHeight]"
    )
    assert size == [width, height]
    assert page.eval_on_selector("dialog img", "i => i.src").startswith("blob:")
    shot(page, "preview-image")


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

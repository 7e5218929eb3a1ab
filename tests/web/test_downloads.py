"""End-to-end, in Chromium against a real server: downloads of files, links and archives, their
totals and failures, and previews; expected bytes from the trees."""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import tarfile
import zipfile
from pathlib import Path

from tests.api.conftest import API, Env
from tests.web.browsing import browse_ext4_root, mount_id_from_url, rows_shown, wait_listing
from tests.web.conftest import ROOT, shot, wait_for_service_worker


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

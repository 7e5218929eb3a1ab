"""End-to-end, in Chromium against a real server: browsing a listing (10,000 entries, filter,
sort, keyboard, clicks, narrow windows) and the errors it shows; expected values from the trees."""

from __future__ import annotations

import os
import stat

import pytest

from tests.api.conftest import API, Env
from tests.web.browsing import (
    browse_ext4_root,
    mount_id_from_url,
    open_backup,
    rows_shown,
    wait_listing,
)
from tests.web.conftest import shot, sign_in, unmount_all, wait_for_service_worker


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

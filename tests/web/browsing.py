"""Steps the page tests share: signing in and opening a backup, waiting for a listing, reading
the rows drawn and the session in the page's address."""

from __future__ import annotations

import re

from tests.api.conftest import Env
from tests.web.conftest import sign_in, unmount_all


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

"""End-to-end, in Chromium against a real server: a token that is refused, or revoked while the
page is open, leads back to the sign-in form with a readable reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.api.conftest import Env
from tests.web.conftest import shot, sign_in


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

"""The web page driven in Debian's Chromium (Playwright), against a real ``filerestore serve``.

The server, its repository and its tokens are the API tests' (``api`` fixture in
tests/api/conftest.py): an ext4 backup of the restore tests' tree (with a 10,000-entry
directory) and the demo's full + incremental backups of a two-volume GPT disk. Expected
values come from the source trees on the host, never from the page or the server.

``playwright install`` cannot download a browser here: the system Chromium is launched by
path. Screenshots of the main screens go to ``test-artifacts/screenshots/`` (gitignored).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.api.conftest import API, Env, api  # noqa: F401 - the shared server fixture

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test dependency")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run scripts/install (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Problems:
    """Uncaught script errors on the page: any one fails the test."""

    def __init__(self) -> None:
        self.errors: list[str] = []


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


def _page(browser: object, request: pytest.FixtureRequest, **options: object) -> Iterator[object]:
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1280, "height": 800}, accept_downloads=True, **options
    )
    context.set_default_timeout(20_000)
    pg = context.new_page()
    problems = Problems()
    pg.on("pageerror", lambda exc: problems.errors.append(str(exc)))
    pg.on(
        "console",
        lambda msg: (
            problems.errors.append(msg.text) if "Content Security Policy" in msg.text else None
        ),
    )
    try:
        yield pg
        if request.node.stash.get(FAILED, False):
            shot(pg, f"failed-{request.node.name}")
    finally:
        context.close()
    assert not problems.errors, f"uncaught errors on the page: {problems.errors}"


@pytest.fixture
def page(browser: object, request: pytest.FixtureRequest) -> Iterator[object]:
    """A page whose downloads stream through its service worker."""
    yield from _page(browser, request)


@pytest.fixture
def buffered_page(browser: object, request: pytest.FixtureRequest) -> Iterator[object]:
    """A page without service workers: downloads are read by the page, then saved."""
    yield from _page(browser, request, service_workers="block")


def wait_for_service_worker(page: object) -> None:
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")  # type: ignore[attr-defined]


def shot(page: object, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))  # type: ignore[attr-defined]
    return path


def sign_in(page: object, env: Env, who: str = "alice") -> None:
    page.goto(env.url + "/")  # type: ignore[attr-defined]
    page.fill("#token", env.tokens[who])  # type: ignore[attr-defined]
    page.click("form.signin button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("tr.backup")  # type: ignore[attr-defined]


def unmount_all(env: Env) -> None:
    """Close every session, so each test starts from none (admin sees all)."""
    with env.client("admin") as c:
        for m in c.get(f"{API}/restore/mounts").json()["mounts"]:
            c.delete(f"{API}/restore/{m['mount_id']}")

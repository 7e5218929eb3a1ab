"""`filerestore serve --demo`, the README's first command: from an empty state directory it
builds the demo repository (scripts/build_demo.py), registers it, prints the URL and an
admin token, and serves the demo backups."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.api.server import CLI, ROOT
from tests.processes import free_port

# the server builds the demo repository itself (scripts/build_demo.py, as root): no image
# fixture says so, hence the marker by hand (tests/conftest.py)
pytestmark = pytest.mark.root

DEMO = ROOT / "demo"


def first_answer(url: str, headers: dict[str, str], tries: int) -> httpx.Response:
    """GET ``url`` once the server starting in the background answers (0.2 s between tries)."""
    for _ in range(tries):
        try:
            return httpx.get(url, headers=headers)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"no answer from {url} after {tries} tries")


def test_serve_demo(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "FILERESTORE_STATE_DIR": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1"}
    env.pop("FILERESTORE_DATABASE_URL", None)
    env.pop("FILERESTORE_DEMO_REPO", None)
    proc = subprocess.Popen(
        [
            str(CLI),
            "serve",
            "--demo",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        lines: list[str] = []
        token = None
        deadline = time.monotonic() + 120
        while token is None and time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line, "".join(lines)
            lines.append(line)
            if m := re.search(r"admin token: (fr_\S+)", line):
                token = m.group(1)
        text = "".join(lines)
        assert f"http://localhost:{port}/ " in text and token
        images = sorted(p.name for p in (tmp_path / "state" / "demo-repo" / "web01").iterdir())
        assert images == ["disk0-full.qcow2", "disk0-incr1.qcow2"]
        assert (
            sum((tmp_path / "state" / "demo-repo" / "web01" / n).stat().st_size for n in images)
            < 2 << 20
        )
        base = f"http://127.0.0.1:{port}/api/v1"
        headers = {"Authorization": f"Bearer {token}"}
        r = first_answer(f"{base}/backups", headers, tries=100)
        backups = r.json()["backups"]
        page = httpx.get(f"http://127.0.0.1:{port}/")
        assert [(b["kind"], b["vm_name"]) for b in backups] == [
            ("full", "web01"),
            ("incremental", "web01"),
        ]
        m = httpx.post(
            f"{base}/restore/mount",
            headers=headers,
            json={"backup_id": backups[1]["id"], "volume": "p1"},
        ).json()
        notes = httpx.get(
            f"{base}/restore/{m['mount_id']}/download",
            headers=headers,
            params={"path": "/home/alice/notes.txt"},
        )
        assert notes.content == (DEMO / "changes/linux/home/alice/notes.txt").read_bytes()
        # the demo's backups are queued for the index and indexed by the service's runner
        # no deadline of its own: a hang ends at the test's pytest-timeout limit
        while True:
            states = httpx.get(f"{base}/index", headers=headers).json()["backups"]
            if [s["state"] for s in states] == ["done", "done"]:
                break
            assert "failed" not in {s["state"] for s in states}, states
            time.sleep(0.5)
        hits = httpx.get(f"{base}/search", headers=headers, params={"name": "notes"}).json()
        assert [h["path"] for h in hits["hits"]] == ["/home/alice/notes.txt"]
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_serve_with_config_file(tmp_path: Path) -> None:
    """--config names a TOML settings file: its limits and repositories apply."""
    repo = tmp_path / "backups"
    repo.mkdir()
    config = tmp_path / "filerestore.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        "max_sessions = 3\n"
        f'[[repositories]]\nname = "nightly"\npath = "{repo}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILERESTORE_")}
    token = subprocess.run(
        [str(CLI), "token", "create", "ops", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = free_port()
    proc = subprocess.Popen(
        [str(CLI), "serve", "--config", str(config), "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        headers = {"Authorization": f"Bearer {token}"}
        base = f"http://127.0.0.1:{port}/api/v1"
        repos = first_answer(f"{base}/repositories", headers, tries=150)
        assert [r["name"] for r in repos.json()["repositories"]] == ["nightly"]
        resources = httpx.get(f"{base}/restore/resources", headers=headers).json()
        assert resources["sessions_limit"] == 3
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)

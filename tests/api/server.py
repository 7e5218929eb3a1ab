"""A real `filerestore serve` on a loopback port, in a subprocess, for the API tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.processes import free_port, wait_up

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "filerestore"


class Server:
    def __init__(self, env: dict[str, str], workers: int = 2, log: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.workers = workers
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Server:
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        cmd = [str(CLI), "serve", "--port", str(self.port), "--workers", str(self.workers)]
        self.proc = subprocess.Popen(
            [*cmd, "--log-level", "warning"],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def answers() -> bool:
            if not healthy(self.url):
                return False
            return self.workers == 1 or len(self.worker_pids()) >= self.workers

        wait_up(self.proc, answers, "filerestore serve", timeout, self.log)
        return self

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stops the server and prints the end of its log (pytest shows it for a failure)."""
        self.stop()
        if self.log is not None and self.log.exists():
            print(self.log.read_text(errors="replace")[-3000:])

    def replaced(self, victim: int, timeout: float) -> set[int]:
        """The worker pids once ``victim`` (a killed worker) is gone and the pool is full
        again, or as they are when ``timeout`` s passed (the caller checks them)."""
        deadline = time.monotonic() + timeout
        while True:
            now = set(self.worker_pids())
            if (len(now) == self.workers and victim not in now) or time.monotonic() > deadline:
                return now
            time.sleep(0.2)

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        pids = [int(p) for p in children.read_text().split()] if children.exists() else []
        # uvicorn's workers are multiprocessing children; the resource tracker is not a worker
        return [p for p in pids if b"resource_tracker" not in _cmdline(p)]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


API = "/api/v1"


def api_client(url: str, token: str | None, **options: object) -> httpx.Client:
    """A client of the API at ``url`` with ``token`` as its bearer (None: no token)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=120, **options)  # type: ignore[arg-type]


def open_session(c: httpx.Client, backup_id: int, volume: str | None = None) -> dict[str, Any]:
    """A new session (mount) of the backup, as the API answered it (201 or the test fails)."""
    r = c.post(f"{API}/restore/mount", json={"backup_id": backup_id, "volume": volume})
    assert r.status_code == 201, r.text
    return dict(r.json())


@contextlib.contextmanager
def streamed_archive(
    c: httpx.Client, mount_id: str, path: str, fmt: str
) -> Iterator[httpx.Response]:
    """The archive of ``path`` in the session ``mount_id`` as a streamed response, not yet read
    (200 or the test fails)."""
    with c.stream(
        "GET",
        f"{API}/restore/{mount_id}/download-directory",
        params={"path": path, "format": fmt},
    ) as r:
        assert r.status_code == 200
        yield r


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """A ``filerestore`` command run with ``env`` added to this environment (not checked)."""
    return subprocess.run(
        [str(CLI), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_cli(env: dict[str, str], *args: str) -> str:
    """The standard output of a ``filerestore`` command that must succeed (``env`` added)."""
    done = cli(env, *args)
    if done.returncode != 0:
        raise RuntimeError(f"filerestore {' '.join(args)}: {done.returncode} {done.stderr}")
    return done.stdout


def healthy(url: str) -> bool:
    """Whether a server (or the balancer in front of several) answers 200 on ``/health``."""
    try:
        return httpx.get(url + "/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""

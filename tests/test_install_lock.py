"""scripts/install waits for another package manager's lock (issue 14, item 11), with the
real apt-get: ``apt-get update`` on a private state directory (no sources: no network) whose
lists lock this test holds the way apt does (fcntl), first for a while, then past the limit."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get")


def apt_options(state: Path) -> list[str]:
    (state / "lists" / "partial").mkdir(parents=True)
    (state / "cache" / "archives" / "partial").mkdir(parents=True)
    (state / "sources.list.d").mkdir()
    (state / "sources.list").write_text("")
    return [
        f"-o=Dir::State::Lists={state / 'lists'}",
        f"-o=Dir::Cache={state / 'cache'}",
        f"-o=Dir::Etc::SourceList={state / 'sources.list'}",
        f"-o=Dir::Etc::SourceParts={state / 'sources.list.d'}",
    ]


@contextmanager
def lock_held(path: Path, release: threading.Event) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    fcntl.lockf(fd, fcntl.LOCK_EX)  # what apt's GetLock takes

    def close_when_released() -> None:
        release.wait()
        os.close(fd)

    releaser = threading.Thread(target=close_when_released)
    releaser.start()
    try:
        yield
    finally:
        release.set()
        releaser.join()


def apt_wait(limit: int, options: list[str]) -> subprocess.Popen[str]:
    script = f'. scripts/apt_wait; apt_wait {limit} apt-get "$@" update -qq'
    return subprocess.Popen(
        ["bash", "-c", script, "apt_wait", *options],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_update_waits_for_the_lock_then_runs(tmp_path: Path) -> None:
    options = apt_options(tmp_path)
    release = threading.Event()
    with lock_held(tmp_path / "lists" / "lock", release):
        # a positive control: apt-get itself fails at once on the held lock
        plain = subprocess.run(
            ["apt-get", *options, "update", "-qq"], capture_output=True, text=True
        )
        assert plain.returncode == 100 and "Could not get lock" in plain.stderr
        proc = apt_wait(600, options)
        assert proc.stderr is not None
        first = proc.stderr.readline()  # it says it waits, and who holds the lock
        assert "waiting up to 600 s for another package manager" in first
        assert f"held by process {os.getpid()}" in first
        release.set()
    assert proc.wait(timeout=120) == 0, proc.stderr.read()


def test_update_gives_up_after_the_limit_with_one_line(tmp_path: Path) -> None:
    options = apt_options(tmp_path)
    release = threading.Event()
    with lock_held(tmp_path / "lists" / "lock", release):
        proc = apt_wait(1, options)
        _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 75
    last = err.strip().splitlines()[-1]
    assert "still holds the lock after 1 s" in last and "FILERESTORE_APT_LOCK_WAIT" in last


def test_other_failures_pass_through_at_once(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["bash", "-c", ". scripts/apt_wait; apt_wait 600 apt-get no-such-command"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 100 and "waiting" not in proc.stderr

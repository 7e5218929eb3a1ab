"""The life of a mount: ready, then released on every way out (fuse/mount.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuse.mounting import FSTYPE, mount_command, mounts_at, release, wait_mounted
from tests.imagebuild import gpt_ext4 as images

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A foreground ``filerestore mount`` of the CLI's GPT/ext4 qcow2, mounted and ready."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with (tmp_path / "stderr").open("w+b") as err:
        proc = subprocess.Popen(
            mount_command(images.single_ext4().image, mnt), stdout=subprocess.DEVNULL, stderr=err
        )
        try:
            wait_mounted(mnt, proc, err)
            yield proc, mnt
        finally:
            release(mnt, proc)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_unmounts_and_exits_cleanly(
    started: tuple[subprocess.Popen[bytes], Path], signum: int
) -> None:
    proc, mnt = started
    assert "hello.txt" in os.listdir(mnt)
    proc.send_signal(signum)
    assert proc.wait(timeout=30) == 0
    assert mounts_at(mnt) == []
    assert os.listdir(mnt) == []  # no "transport endpoint is not connected"


def test_sigterm_while_a_file_is_open_still_releases_the_mount_point(
    started: tuple[subprocess.Popen[bytes], Path],
) -> None:
    proc, mnt = started
    held = (mnt / "docs" / "data.bin").open("rb", buffering=0)
    try:
        assert len(held.read(4096)) == 4096
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        # a lazy unmount: gone from the namespace even though a file was still open
        assert mounts_at(mnt) == []
        assert os.listdir(mnt) == []
    finally:
        with contextlib.suppress(OSError):
            held.close()


def test_fusermount_u_ends_the_process(started: tuple[subprocess.Popen[bytes], Path]) -> None:
    proc, mnt = started
    assert FSTYPE in mounts_at(mnt)
    # a plain (not lazy) unmount fails with "Device or resource busy" while any process on the
    # machine has the mount point in use for a moment (seen once in CI under load): try again,
    # a bounded number of times; the daemon must still exit cleanly once the unmount is done
    for _ in range(20):
        done = subprocess.run(["fusermount3", "-u", mnt], capture_output=True, text=True)
        if done.returncode == 0 or "busy" not in done.stderr:
            break
        time.sleep(0.5)
    assert done.returncode == 0, done.stderr
    assert proc.wait(timeout=30) == 0
    assert mounts_at(mnt) == []


def test_writes_are_refused(started: tuple[subprocess.Popen[bytes], Path]) -> None:
    _, mnt = started
    for attempt in (
        lambda: (mnt / "new.txt").write_bytes(b"x"),
        lambda: (mnt / "hello.txt").open("r+b"),
        lambda: os.mkdir(mnt / "newdir"),
        lambda: os.unlink(mnt / "hello.txt"),
        lambda: os.setxattr(mnt / "hello.txt", "user.x", b"1"),
    ):
        with pytest.raises(OSError) as caught:
            attempt()
        assert caught.value.errno == 30  # EROFS

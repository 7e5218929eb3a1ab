"""Mounting images with the real ``filerestore mount`` command, and always unmounting them.

:func:`mounted` starts ``filerestore mount IMAGE DIR`` in the foreground as a subprocess,
waits until the kernel lists the mount and it answers, and on the way out (a failed test
included) sends SIGTERM; if the mount is still there after that, ``fusermount3 -u -z``
takes it away and the process is killed, so no test leaves a mount behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from tests.cli.runner import SCRIPT

FSTYPE = "fuse.filerestore"
READY_SECONDS = 60.0


def mount_command(*args: str | os.PathLike[str]) -> list[str]:
    if SCRIPT.exists():
        return [os.fspath(SCRIPT), "mount", *(os.fspath(a) for a in args)]
    return [sys.executable, "-m", "filerestore.cli.main", "mount", *(os.fspath(a) for a in args)]


def mounts_at(path: Path) -> list[str]:
    """Filesystem types of every mount at ``path`` per /proc/self/mountinfo."""
    found = []
    want = os.fspath(path)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" ")
        sep = fields.index("-", 6)
        if fields[4].replace("\\040", " ") == want:
            found.append(fields[sep + 1])
    return found


def wait_mounted(path: Path, proc: subprocess.Popen[bytes], err: BinaryIO) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while FSTYPE not in mounts_at(path):
        if proc.poll() is not None:
            err.seek(0)
            said = err.read().decode(errors="replace")
            raise AssertionError(f"filerestore mount exited with {proc.returncode}: {said}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no mount at {path} after {READY_SECONDS} s")
        time.sleep(0.05)
    os.stat(path)  # answered by the mount's own loop


def release(path: Path, proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM the mount process; force the mount away if it is still there."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if FSTYPE in mounts_at(path):
        subprocess.run(["fusermount3", "-u", "-z", os.fspath(path)], check=False)


@contextlib.contextmanager
def mounted(image: Path, *extra: str) -> Iterator[Path]:
    """``image`` mounted by ``filerestore mount`` on a fresh directory, for the block."""
    with tempfile.TemporaryDirectory(prefix="fr-fuse-") as tmp:
        mnt = Path(tmp) / "mnt"
        mnt.mkdir()
        # stderr to a file, not a pipe: a pipe nobody reads could fill and stall the mount
        with (Path(tmp) / "stderr").open("w+b") as err:
            proc = subprocess.Popen(
                mount_command(image, mnt, *extra), stdout=subprocess.DEVNULL, stderr=err
            )
            try:
                wait_mounted(mnt, proc, err)
                yield mnt
            finally:
                release(mnt, proc)

"""Host tools as the image builders call them: a command's output, a file's identity for a
recipe, a loop device, and a mount point that is unmounted (waiting for a busy one) after."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

# for tools whose output depends on the time zone or the locale (dates, 8.3 names)
UTC_C = {"TZ": "UTC", "LC_ALL": "C.UTF-8"}


def run(
    *args: object,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> str:
    """A tool's standard output; its standard error in the error when it fails. ``env`` adds
    variables to this process's environment. Output that is not UTF-8 (7zz prints OEM-code-page
    8.3 names as raw bytes) comes back with surrogate escapes."""
    argv = [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in args]
    done = subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        errors="surrogateescape",
        cwd=cwd,
        env=None if env is None else {**os.environ, **env},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip() or done.stdout}"
        )
    return done.stdout


def file_id(path: Path) -> list[Any]:
    """What a recipe holds of an input file it was built from: its path, size and mtime."""
    st = path.stat()
    return [str(path), st.st_size, st.st_mtime_ns]


@contextlib.contextmanager
def loop_device(path: Path, *options: str) -> Iterator[str]:
    """A loop device over ``path`` (``losetup`` ``options`` such as ``-o``), detached after."""
    dev = run("losetup", "-f", "--show", *options, path).strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


def unmount(mnt: Path) -> None:
    """Unmount ``mnt``, retrying for five seconds while it is busy, then lazily."""
    for _ in range(50):
        if subprocess.run(["umount", mnt], capture_output=True, check=False).returncode == 0:
            return
        time.sleep(0.1)
    subprocess.run(["umount", "-l", mnt], check=False)


@contextlib.contextmanager
def mounted(
    argv: Sequence[str | os.PathLike[str]], mnt: Path, env: Mapping[str, str] | None = None
) -> Iterator[Path]:
    """``argv`` (a mount command or a FUSE driver, without its mount point, run with ``env``
    added) mounted on ``mnt`` (made here if missing), unmounted after."""
    mnt.mkdir(parents=True, exist_ok=True)
    run(*argv, mnt, env=env)
    try:
        yield mnt
    finally:
        unmount(mnt)

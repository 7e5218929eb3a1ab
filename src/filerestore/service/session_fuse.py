"""A session's optional FUSE view: ``filerestore mount`` of its backup at ``mount_path``.

With the ``session_fuse`` setting, a session that a worker opens gets a read-only view at
``<session_fuse_root>/<mount_id>``, served by a child process of that worker: the CLI's
own ``filerestore mount`` in the foreground, in a process session of its own, so that it
outlives a restarted worker as the session itself does. The session row records the
view's process (host, pid, pid start time) and its path once the mount answers.

A view ends with its session: :func:`stop` sends the process SIGTERM (it unmounts and
exits; see :mod:`filerestore.fuse.mount`) when it runs on this host, then takes a mount
that is still there away lazily and removes the directory. :func:`sweep` is the cleanup
pass's part, on each host for its own views: a filerestore mount below the root whose
session is gone (ended on another host, cleaned up, or the rows of a crash) is taken away,
and so is the dead endpoint of a view whose process died while its session lives on
(the session then has no view: ``mount_path`` is cleared).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from filerestore.catalog.mountinfo import read_mountinfo
from filerestore.errors import FuseUnavailableError
from filerestore.service.liveness import ProcessIdentity, is_dead, process_start
from filerestore.settings import Settings

log = logging.getLogger("filerestore.fuse")

FSTYPE = "fuse.filerestore"
READY_SECONDS = 60.0
STOP_SECONDS = 10.0
#: the views this process started, reaped when they end (no zombies left behind)
_children: dict[int, subprocess.Popen[bytes]] = {}
_children_lock = threading.Lock()


@dataclass(frozen=True)
class View:
    path: Path
    process: ProcessIdentity


def _root(settings: Settings) -> Path:
    """The views' directory as the kernel shows mount points (absolute, links resolved)."""
    return settings.fuse_root.resolve()


def view_path(settings: Settings, mount_id: str) -> Path:
    return _root(settings) / mount_id


def _mounted(path: Path) -> bool:
    want = os.fspath(path)
    return any(e.mount_point == want and e.fstype == FSTYPE for e in read_mountinfo())


def start(
    settings: Settings,
    me: ProcessIdentity,
    mount_id: str,
    image: Path,
    repository: Path,
    volume: str,
) -> View:
    """Mount the session's view and return once it answers; FuseUnavailableError, with the
    mount command's own words, when it cannot."""
    root = _root(settings)
    root.mkdir(
        mode=0o755 if settings.session_fuse_allow_other else 0o700, parents=True, exist_ok=True
    )
    path = view_path(settings, mount_id)
    path.mkdir(mode=0o755, exist_ok=True)
    log_path = root / f".{mount_id}.log"
    command = [
        sys.executable,
        "-m",
        "filerestore.cli.main",
        "mount",
        os.fspath(image),
        os.fspath(path),
        "--volume",
        volume,
        "--repository",
        os.fspath(repository),
    ]
    if settings.session_fuse_allow_other:
        command.append("--allow-other")
    with log_path.open("wb") as err:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    with _children_lock:
        _children[proc.pid] = proc
    deadline = time.monotonic() + READY_SECONDS
    while not _mounted(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            said = log_path.read_text(errors="replace").strip().splitlines()
            _end_process(proc.pid)
            _remove(path, log_path)
            reason = said[-1].removeprefix("filerestore: error: ") if said else "no answer"
            raise FuseUnavailableError(f"the session's FUSE view could not be mounted: {reason}")
        time.sleep(0.05)
    path.stat()  # answered by the view's own loop
    start_time = process_start(proc.pid)
    return View(path, ProcessIdentity(me.host, proc.pid, start_time or 0))


def stop(
    settings: Settings,
    mount_id: str,
    host: str | None,
    pid: int | None,
    pid_start: int | None,
) -> None:
    """End the view of a session that ended: its process, then its mount point (on this
    host only: another host's cleanup pass takes its own views away)."""
    here = socket.gethostname()
    if host is not None and host != here:
        return
    path = view_path(settings, mount_id)
    if pid is not None and not is_dead(here, pid, pid_start):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # the view unmounts itself and exits
        deadline = time.monotonic() + STOP_SECONDS
        while _mounted(path) and time.monotonic() < deadline:
            time.sleep(0.05)
    _reap()
    _detach(path)
    _remove(path, _root(settings) / f".{mount_id}.log")


def sweep(
    settings: Settings, live: dict[str, tuple[str | None, int | None, int | None]]
) -> list[str]:
    """Take away this host's views whose session is not in ``live`` (mount id -> the
    view's host, pid, start), and those whose process is dead; their mount ids."""
    root = _root(settings)
    swept = []
    for entry in read_mountinfo():
        if entry.fstype != FSTYPE or Path(entry.mount_point).parent != root:
            continue
        mount_id = Path(entry.mount_point).name
        holder = live.get(mount_id)
        if holder is not None and not is_dead(*holder):
            continue
        log.info("taking away the FUSE view of session %s (%s)", mount_id,
                 "its process died" if holder else "the session ended")  # fmt: skip
        if holder is None:
            stop(settings, mount_id, None, None, None)
        else:
            _detach(Path(entry.mount_point))
        swept.append(mount_id)
    _reap()
    return swept


def _end_process(pid: int) -> None:
    with _children_lock:
        proc = _children.pop(pid, None)
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _reap() -> None:
    with _children_lock:
        for pid, proc in list(_children.items()):
            if proc.poll() is not None:
                del _children[pid]


def _detach(path: Path) -> None:
    """A lazy unmount of whatever filerestore view is still at ``path``."""
    if not _mounted(path):
        return
    command = ["umount", "-l", os.fspath(path)] if os.geteuid() == 0 else [
        "fusermount3", "-u", "-z", os.fspath(path)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        log.warning("could not unmount %s: %s", path, done.stderr.strip())


def _remove(path: Path, log_path: Path) -> None:
    for remove in (path.rmdir, log_path.unlink):
        with contextlib.suppress(OSError):
            remove()

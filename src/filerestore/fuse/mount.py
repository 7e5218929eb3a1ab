"""Mounting one opened backup with FUSE, serving it until told to stop, and unmounting.

:func:`serve` mounts (read-only, visible to the mounting user only: no ``allow_other``, and
no ``default_permissions``, so that user reads every file whatever the guest's owners and
modes say; with ``allow_other`` every user sees it and the kernel checks the guest's modes
and owners), runs the request loop, and returns when the mount ends: on SIGINT, SIGTERM or
SIGHUP, or when someone runs ``fusermount3 -u`` / ``filerestore umount``. On every way
out, an exception included, the mount point is released (``fuse_session_unmount``: a lazy
``umount2`` as root, ``fusermount3 -u -z`` otherwise), so no "transport endpoint is not
connected" is left behind.

``on_ready`` is called once the mount answers requests: a ``stat`` of the mount point from
another thread has been served by this process's own loop.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pyfuse3
import trio

from filerestore.errors import FuseUnavailableError, MountpointError
from filerestore.fuse.operations import BackupOperations
from filerestore.fuse.stacks import StackSource

log = logging.getLogger("filerestore.fuse")

FUSE_DEVICE = Path("/dev/fuse")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: requests in flight at once; with worker threads, the threads bound the blocking work
MAX_TASKS = 32
#: threads that serve file data (operations.py); 0 serves everything on the event loop
DATA_WORKERS = 4
#: the mount's kernel read-ahead: FUSE starts at 128 KiB, so each read request is 128 KiB;
#: at 1 MiB (the largest request FUSE sends) a sequential read takes an eighth of the
#: requests (bench/fuse.py: +60% for cat)
READ_AHEAD_KB = 1024


def check_mountpoint(path: Path) -> Path:
    """The absolute mount point; MountpointError unless it is an empty directory that is not
    itself a mount point."""
    target = path.absolute()
    if not target.is_dir():
        raise MountpointError(f"mount point is not a directory: {target}")
    if os.path.ismount(target):
        raise MountpointError(f"something is already mounted at {target}")
    try:
        with os.scandir(target) as found:
            if next(found, None) is not None:
                raise MountpointError(f"mount point is not empty: {target}")
    except PermissionError as exc:
        raise MountpointError(f"mount point cannot be read: {target}") from exc
    return target


def check_fuse_available() -> None:
    """FuseUnavailableError unless this process can open the FUSE device."""
    try:
        fd = os.open(FUSE_DEVICE, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FuseUnavailableError(
            f"{FUSE_DEVICE} does not exist (is the fuse module loaded?)"
        ) from None
    except PermissionError:
        raise FuseUnavailableError(f"{FUSE_DEVICE} cannot be opened by this user") from None
    os.close(fd)


def serve(
    stacks: StackSource,
    mountpoint: Path,
    *,
    name: str = "filerestore",
    workers: int = DATA_WORKERS,
    metadata_on_workers: bool = False,
    read_ahead_kb: int = READ_AHEAD_KB,
    on_ready: Callable[[], None] | None = None,
    allow_other: bool = False,
) -> None:
    """Mount ``stacks``' filesystem at ``mountpoint`` and serve it until the mount ends.

    ``allow_other``: other users than the mounting one see the mount too, and the kernel
    then checks the guest's modes and owners for them (``default_permissions``)."""
    operations = BackupOperations(stacks, workers, metadata_on_workers)
    options = {"ro", "noatime", f"fsname={_option_text(name)}", "subtype=filerestore"}
    if allow_other:
        options |= {"allow_other", "default_permissions"}
    try:
        pyfuse3.init(operations, os.fspath(mountpoint), options)
    except RuntimeError as exc:
        raise FuseUnavailableError(f"cannot mount at {mountpoint}: {exc}") from exc
    try:
        trio.run(_run, mountpoint, read_ahead_kb, on_ready)
    finally:
        pyfuse3.close(unmount=True)


def _option_text(text: str) -> str:
    # a mount option value cannot hold a comma, and mountinfo shows spaces as octal escapes
    return "".join(c if c.isprintable() and c not in ", \\" else "_" for c in text)


async def _run(mountpoint: Path, read_ahead_kb: int, on_ready: Callable[[], None] | None) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_on_signal)
        nursery.start_soon(_announce_ready, mountpoint, read_ahead_kb, on_ready)
        await pyfuse3.main(max_tasks=MAX_TASKS)
        nursery.cancel_scope.cancel()  # the mount ended on its own (fusermount3 -u)


async def _stop_on_signal() -> None:
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async for signum in signals:
            log.info("%s: unmounting", signal.Signals(signum).name)
            pyfuse3.terminate()
            return


async def _announce_ready(
    mountpoint: Path, read_ahead_kb: int, on_ready: Callable[[], None] | None
) -> None:
    st = await trio.to_thread.run_sync(os.stat, mountpoint)
    _set_read_ahead(st.st_dev, read_ahead_kb)
    if on_ready is not None:
        on_ready()


def _set_read_ahead(device: int, kilobytes: int) -> None:
    """The read-ahead of this mount's own backing device info (only root may set it; for
    anyone else reads stay at 128 KiB per request)."""
    knob = Path(f"/sys/class/bdi/{os.major(device)}:{os.minor(device)}/read_ahead_kb")
    try:
        knob.write_text(str(kilobytes))
    except OSError as exc:
        log.debug("read-ahead stays at the kernel's default: %s", exc)

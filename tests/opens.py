"""Which files a piece of code opens for reading, seen by a Python audit hook.

The hook records every ``open`` that can read data on the recording thread. The store walks
a repository with O_PATH descriptors (which open no data, and whose relative names the hook
cannot place), then reopens the file it checked through ``/proc/self/fd``: that link is
resolved here, before the open happens, to the file it will open. Python code imported on
first use (our VMDK reader, zlib-ng) is not data, never a backup, and is left out, and so is
the bytecode the import system writes for it (``__pycache__/NAME.pyc.<id>``, then renamed).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import filerestore

O_PATH = getattr(os, "O_PATH", 0)

_CODE_DIRS = tuple(
    os.path.join(d, "")
    for d in (os.path.dirname(filerestore.__file__), sys.prefix, sys.base_prefix)
)
_CODE_SUFFIXES = (".py", ".pyc", ".so")

_recording: list[str] | None = None
_recording_thread: int | None = None


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event != "open" or _recording is None or threading.get_ident() != _recording_thread:
        return
    path, flags = args[0], args[2]
    if isinstance(flags, int) and O_PATH and flags & O_PATH:
        return
    if isinstance(path, str | bytes | os.PathLike):
        name = os.fsdecode(path)
        if name.startswith("/proc/self/fd/"):
            name = os.readlink(name)
        if name.startswith(_CODE_DIRS) and (
            name.endswith(_CODE_SUFFIXES)
            or os.path.basename(os.path.dirname(name)) == "__pycache__"
        ):
            return
        _recording.append(name)


sys.addaudithook(_audit)


@contextmanager
def recording_opens() -> Iterator[list[str]]:
    """The names of the files opened for reading on this thread inside the block, in order."""
    global _recording, _recording_thread
    opened: list[str] = []
    _recording, _recording_thread = opened, threading.get_ident()
    try:
        yield opened
    finally:
        _recording, _recording_thread = None, None

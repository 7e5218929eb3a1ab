"""Where a request's filesystem comes from when requests run on worker threads.

Library handles are not thread-safe; a :class:`~filerestore.fs.base.Filesystem` makes them
safe by running every library call under its lock. Two ways to use that, measured by
bench/fuse.py:

- :class:`SharedStack`: one opened stack for every thread; metadata calls take turns on the
  filesystem's lock, and file data read through extents (every format except inline,
  resident or compressed data) needs no lock at all.
- :class:`StackPerThread`: each worker thread opens its own stack on first use; nothing is
  shared, at the price of one open (and one set of caches) per thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from filerestore.fs.base import Filesystem
from filerestore.restore import Stack


class StackSource(Protocol):
    @property
    def main(self) -> Stack:
        """The stack opened first (volume size for statfs, the root's entry)."""

    def fs(self) -> Filesystem[Any]:
        """The filesystem the calling thread reads through."""

    def close(self) -> None: ...


class SharedStack:
    def __init__(self, stack: Stack) -> None:
        self._stack = stack

    @property
    def main(self) -> Stack:
        return self._stack

    def fs(self) -> Filesystem[Any]:
        return self._stack.fs

    def close(self) -> None:
        self._stack.close()


class StackPerThread:
    def __init__(self, stack: Stack, reopen: Callable[[], Stack]) -> None:
        self._stack = stack
        self._reopen = reopen
        self._local = threading.local()
        self._opened: list[Stack] = []
        self._lock = threading.Lock()

    @property
    def main(self) -> Stack:
        return self._stack

    def fs(self) -> Filesystem[Any]:
        stack: Stack | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = self._reopen()
            with self._lock:
                self._opened.append(stack)
        return stack.fs

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for stack in [*opened, self._stack]:
            stack.close()

"""This process's opened reader stacks, per session: a small pool, one stack per user.

Library handles are not thread-safe, so a stack is lent to one caller at a time
(``lend``, then ``give_back``); a concurrent caller of the same session gets another stack,
opened on demand (a few ms), and every returned stack stays pooled for the next caller, up
to ``max_idle`` per session.
Stacks are opened lazily from the session's row, so any process can serve any session;
``discard`` closes a session's idle stacks (and those in use as soon as they come back)
when the session ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from filerestore.restore.stack import Stack

Opener = Callable[[], Stack]


class ReaderRegistry:
    def __init__(self, max_idle: int = 4) -> None:
        self.max_idle = max_idle
        self._idle: dict[str, list[Stack]] = {}
        self._busy: dict[str, int] = {}
        self._discarded: set[str] = set()
        self._lock = threading.Lock()

    def lend(self, mount_id: str, opener: Opener) -> Stack:
        """A stack of the session for the caller alone, until it is given back."""
        with self._lock:
            pool = self._idle.get(mount_id)
            stack = pool.pop() if pool else None
            self._busy[mount_id] = self._busy.get(mount_id, 0) + 1
            self._discarded.discard(mount_id)
        if stack is None:
            try:
                stack = opener()
            except BaseException:
                self._give_back(mount_id, None)
                raise
        return stack

    def give_back(self, mount_id: str, stack: Stack, broken: bool = False) -> None:
        """Return a lent stack; a ``broken`` one (it raised mid-read and may be in any state)
        is closed instead of being lent again."""
        if broken:
            try:
                stack.close()
            finally:
                self._give_back(mount_id, None)
        else:
            self._give_back(mount_id, stack)

    def adopt(self, mount_id: str, stack: Stack) -> None:
        """Pool a stack opened elsewhere (the one ``mount`` opened to check the image)."""
        self._give_back(mount_id, stack, borrowed=False)

    def _give_back(self, mount_id: str, stack: Stack | None, borrowed: bool = True) -> None:
        close = None
        with self._lock:
            if borrowed:
                self._busy[mount_id] -= 1
                if not self._busy[mount_id]:
                    del self._busy[mount_id]
            if stack is not None:
                pool = self._idle.setdefault(mount_id, [])
                if mount_id in self._discarded or len(pool) >= self.max_idle:
                    close = stack
                else:
                    pool.append(stack)
                if not pool:
                    del self._idle[mount_id]
        if close is not None:
            close.close()

    def discard(self, mount_id: str) -> None:
        """Close the session's idle stacks; stacks in use are closed when given back."""
        with self._lock:
            stacks = self._idle.pop(mount_id, [])
            if mount_id in self._busy:
                self._discarded.add(mount_id)
        for stack in stacks:
            stack.close()

    def mount_ids(self) -> set[str]:
        with self._lock:
            return set(self._idle) | set(self._busy)

    def open_count(self) -> int:
        with self._lock:
            return sum(len(p) for p in self._idle.values()) + sum(self._busy.values())

    def close_all(self) -> None:
        for mount_id in self.mount_ids():
            self.discard(mount_id)

"""Waiting for a session slot when the host is full: first come, first served.

A mount that finds every slot taken waits up to ``mount_wait_timeout`` seconds in a queue
instead of being refused at once. Only the request at the head of the queue tries to take
a slot, so a newcomer never takes one a longer waiter was owed; it tries again when a
session ends in this process (:meth:`SlotQueue.freed`) and every ``poll`` seconds (a slot
freed by another process or node is not signalled). The queue is per process: between
worker processes, the heads of their queues compete. At most ``max_waiters`` requests wait
(each holds a thread); one more is refused at once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL = 0.25  # seconds between tries of the queue's head


class SlotQueue:
    """The queue of one process (thread-safe)."""

    def __init__(
        self,
        max_waiters: int,
        poll: float = POLL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_waiters = max_waiters
        self._poll = poll
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()

    def waiting(self) -> int:
        with self._cond:
            return len(self._queue)

    def freed(self) -> None:
        """A slot was given back in this process: the head tries again now."""
        with self._cond:
            self._cond.notify_all()

    def first_try(self, take: Callable[[], T | None]) -> T | None:
        """``take()`` when nobody waits (a newcomer does not jump the queue), else None."""
        with self._cond:
            if self._queue:
                return None
        return take()

    def wait_for(self, take: Callable[[], T | None], timeout: float) -> T | None:
        """Queue, and call ``take`` (None: no slot yet) at the head until it returns a value
        or ``timeout`` seconds pass (None then, and None at once when the queue is full)."""
        ticket = object()
        deadline = self._clock() + timeout
        with self._cond:
            if len(self._queue) >= self.max_waiters:
                return None
            self._queue.append(ticket)
        try:
            while True:
                with self._cond:
                    while self._queue[0] is not ticket:
                        remaining = deadline - self._clock()
                        if remaining <= 0:
                            return None
                        self._cond.wait(remaining)
                got = take()
                if got is not None:
                    return got
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return None
                with self._cond:
                    self._cond.wait(min(self._poll, remaining))
        finally:
            with self._cond:
                self._queue.remove(ticket)
                self._cond.notify_all()

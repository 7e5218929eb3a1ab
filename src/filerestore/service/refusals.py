"""Requests refused for want of a valid token: logged at a bounded rate, never stored.

Anyone can send them, as fast and as large as they like, so they must not cost storage: they
are counted by the caller (a metric) and logged by a token bucket of ``refusal_log_rate``
lines per second with bursts of ``refusal_log_burst``. A refusal beyond the rate is not
lost: the next line that is written says how many were left out (``suppressed``). The state
is a counter and a bucket per process, whatever the load.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from filerestore.service.audit import stored_text

log = logging.getLogger("filerestore.audit")


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; :meth:`take` spends one."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self) -> bool:
        """Spend a token if there is one (not thread-safe: the caller holds a lock)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class RefusalLog:
    """The log of unauthenticated refusals (see the module docstring); thread-safe."""

    def __init__(
        self,
        rate: float,
        burst: int,
        text_limit: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bucket = TokenBucket(rate, burst, clock)
        self._text_limit = text_limit
        self._suppressed = 0
        self._lock = threading.Lock()

    def refused(self, client: str, path: str, reason: str) -> bool:
        """Note one refusal; True if it was logged, False if only counted."""
        with self._lock:
            if not self._bucket.take():
                self._suppressed += 1
                return False
            suppressed, self._suppressed = self._suppressed, 0
        actor = f"anonymous@{client}"[:255]
        line = {
            "event_time": datetime.now(UTC).isoformat(),
            "actor": actor,
            "action": "auth",
            "outcome": "refused",
            "path": stored_text(path, self._text_limit),
            "detail": stored_text(reason, self._text_limit),
            "suppressed": suppressed,
        }
        # the fields travel as the record's own (filerestore.logs writes them in its format)
        log.info("auth refused by %s", actor, extra={"fields": line})
        return True

"""One open directory, streamed to ``readdir`` requests without listing it again per request.

A readdir request asks for "entries from position n" and takes as many as fit its buffer
(a few dozen); a 100,000-entry directory is read by thousands of such requests. The stream
keeps the filesystem's listing iterator (which builds entries a page at a time) and its
position, so each request continues where the last one stopped. Entries pulled but not
taken are put back. Only a request for another position (a seek back, a ``rewinddir``)
starts the listing again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from itertools import islice

from filerestore.fs.entry import Entry


class DirStream:
    """Entries of one directory by position: position n is the n-th entry (0-based)."""

    def __init__(self, listing: Callable[[], Iterator[Entry]]) -> None:
        self._listing = listing
        self._entries: Iterator[Entry] = iter(())
        self._pending: deque[Entry] = deque()
        self._position = -1  # the position of the next entry; -1: not started

    def take(self, start: int, count: int) -> list[Entry]:
        """Up to ``count`` entries from position ``start`` (fewer at the end). Blocking: it
        reads the filesystem."""
        if start != self._position:
            self._entries = self._listing()
            self._pending.clear()
            for _ in islice(self._entries, start):
                pass
            self._position = start
        out: list[Entry] = []
        while self._pending and len(out) < count:
            out.append(self._pending.popleft())
        out.extend(islice(self._entries, count - len(out)))
        self._position += len(out)
        return out

    def put_back(self, entries: list[Entry]) -> None:
        """Give back the last entries :meth:`take` returned that the caller could not use."""
        self._pending.extendleft(reversed(entries))
        self._position -= len(entries)

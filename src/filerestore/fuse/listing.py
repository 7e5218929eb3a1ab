"""One open directory, streamed to ``readdir`` requests without listing it again per request.

A readdir request asks for "entries from position n" and takes as many as fit its buffer
(a few dozen); a 100,000-entry directory is read by thousands of such requests. The stream
keeps the filesystem's listing iterator (which builds entries a page at a time) and its
position, so each request continues where the last one stopped. Entries pulled but not
taken are put back. Only a request for another position (a seek back, a ``rewinddir``)
starts the listing again. :class:`ListingCache` keeps listings read to their end.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from filerestore.fs.entry import Entry

#: rows kept across all cached listings, as many as the filesystem's directory cache keeps
MAX_CACHED_ROWS = 250_000


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


@dataclass(frozen=True, slots=True)
class Row:
    """One entry as a readdir reply carries it, prepared once."""

    name: bytes
    attributes: Any  # the binding's attribute object, reused for every reply
    ino: int
    path: str
    space: int


class ListingCache:
    """Whole listings of directories as prepared rows, by the directory's inode number.

    The image never changes, so a directory listed to its end once is answered from here
    afterwards: a second ``find`` costs one reply per entry, not an entry built by the
    filesystem and turned into attributes again. Bounded like the filesystem's own
    directory cache (fs/base.py): the least recently used listings go first.
    """

    def __init__(self, max_rows: int = MAX_CACHED_ROWS) -> None:
        self._listings: OrderedDict[int, list[Row]] = OrderedDict()
        self._rows = 0
        self._max_rows = max_rows

    def get(self, ino: int) -> list[Row] | None:
        rows = self._listings.get(ino)
        if rows is not None:
            self._listings.move_to_end(ino)
        return rows

    def put(self, ino: int, rows: list[Row]) -> None:
        if len(rows) > self._max_rows or ino in self._listings:
            return
        self._listings[ino] = rows
        self._rows += len(rows)
        while self._rows > self._max_rows:
            _, dropped = self._listings.popitem(last=False)
            self._rows -= len(dropped)

"""A regular file's contents as a filesystem hands them out: a reader that also knows where
its data is and where it has holes.

``data_ranges()`` yields ``(offset, length)`` of each region that holds data, in file order,
inside ``[0, size)``; everything outside them reads as zeros (holes, unwritten extents, the
tail past a valid-data length). A restore can then write holes as holes (a sparse file, a
sparse TAR member) instead of zeros. A reader that cannot tell (data read through a library
that does not expose its mapping) reports the whole file as one data range: never less data
than there is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable


@runtime_checkable
class FileContents(Protocol):
    """A :class:`~filerestore.blockio.Reader` of a file, with its data ranges."""

    @property
    def size(self) -> int: ...

    def read_at(self, offset: int, length: int) -> bytes: ...

    def data_ranges(self) -> Iterator[tuple[int, int]]: ...


def whole_file(size: int) -> Iterator[tuple[int, int]]:
    """The data ranges of a reader that does not know its holes: the whole file."""
    if size > 0:
        yield 0, size


def merged(ranges: Iterable[tuple[int, int]], size: int) -> Iterator[tuple[int, int]]:
    """``ranges`` (in file order) clipped to ``[0, size)``, empty ones dropped and touching
    ones joined."""
    start = end = -1
    for offset, length in ranges:
        lo, hi = max(offset, 0), min(offset + length, size)
        if hi <= lo:
            continue
        if lo <= end:
            end = max(end, hi)
            continue
        if end > start:
            yield start, end - start
        start, end = lo, hi
    if end > start:
        yield start, end - start

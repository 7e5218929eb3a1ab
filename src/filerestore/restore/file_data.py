"""Reading one file's bytes out of a guest filesystem, whole or by range, in chunks.

:func:`read_chunks` is the one read loop: downloads, archives, ``cat`` and extraction all
read through it, and it raises ShortReadError when a reader returns fewer bytes than asked,
so no caller can write a truncated file and report success.

Ranges are Python-style: ``start`` inclusive, ``end`` exclusive (``None``: to the end of the
file). An HTTP adapter turns ``bytes=a-b`` into ``start=a, end=b + 1`` after clamping ``b``
to the last byte as RFC 9110 says. Everything a caller can get wrong (a directory, a missing
path, a range outside the file) raises when the read is set up, before the first chunk, so
an adapter can still answer with an error status.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from filerestore.blockio import Reader
from filerestore.errors import RangeNotSatisfiableError, ShortReadError
from filerestore.fs.base import Filesystem
from filerestore.fs.entry import Entry

CHUNK_SIZE = 1 << 20  # 1 MiB: large enough for throughput, small enough to keep memory flat


@dataclass(frozen=True, slots=True)
class OpenFile:
    """A regular file opened for reading; ``entry`` describes the file (symlinks followed)."""

    entry: Entry
    reader: Reader

    @property
    def size(self) -> int:
        return self.reader.size

    def read_range(
        self, start: int = 0, end: int | None = None, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Chunks of bytes ``[start, end)``; raises RangeNotSatisfiableError right away."""
        stop = self.size if end is None else end
        if not 0 <= start <= stop <= self.size:
            raise RangeNotSatisfiableError(
                f"range {start}-{end} is outside {self.entry.path} ({self.size} bytes)"
            )
        return read_chunks(self.reader, self.entry.path, start, stop, chunk_size)


def read_chunks(
    reader: Reader,
    path: str,
    start: int = 0,
    stop: int | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[bytes]:
    """Bytes ``[start, stop)`` of ``reader`` (``stop``: its size) in chunks of ``chunk_size``;
    ShortReadError, naming ``path``, as soon as a read returns less than asked."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    end = reader.size if stop is None else stop
    pos = start
    while pos < end:
        want = min(chunk_size, end - pos)
        data = reader.read_at(pos, want)
        if len(data) != want:
            # a reader must never return short data (blockio contract); if one does, the
            # copy would end early without anyone noticing, so stop loudly instead
            raise ShortReadError(
                f"short read of {path} at byte {pos}: wanted {want} bytes, got {len(data)}"
            )
        yield data
        pos += want


def open_file(fs: Filesystem[Any], path: str) -> OpenFile:
    """Open a regular file (symlinks followed inside the guest) for reading."""
    reader = fs.open(path)
    entry = fs.stat(path, follow_symlinks=True)
    return OpenFile(entry, reader)


def read_range(
    fs: Filesystem[Any],
    path: str,
    start: int = 0,
    end: int | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[bytes]:
    """The bytes ``[start, end)`` of the file at ``path``, in chunks of ``chunk_size``."""
    return open_file(fs, path).read_range(start, end, chunk_size)


def iter_file(fs: Filesystem[Any], path: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The whole file at ``path``, in chunks."""
    return read_range(fs, path, chunk_size=chunk_size)

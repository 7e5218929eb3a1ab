"""A reader that breaks the blockio contract on purpose: it returns short from a given byte."""

from __future__ import annotations

from collections.abc import Iterator

from filerestore.fs.contents import FileContents


class ShortReader:
    """A real file's reader that returns fewer bytes than asked from ``cut`` on, as a reader
    breaking the blockio contract (or a truncated image) would."""

    def __init__(self, inner: FileContents, cut: int) -> None:
        self.inner, self.cut = inner, cut

    @property
    def size(self) -> int:
        return self.inner.size

    def read_at(self, offset: int, length: int) -> bytes:
        data = self.inner.read_at(offset, length)
        return data[: max(0, self.cut - offset)] if offset + length > self.cut else data

    def data_ranges(self) -> Iterator[tuple[int, int]]:
        return self.inner.data_ranges()

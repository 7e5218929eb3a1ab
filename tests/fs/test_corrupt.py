"""Whatever a backend lets escape while parsing leaves the Filesystem interface as a
corrupt-image error with a one-line reason (fs/corrupt.py); the real cases are in
tests/imagebuild/fs_hostile.py (a bare ZeroDivisionError from an ext superblock among them)."""

from __future__ import annotations

import struct
from collections.abc import Hashable, Iterator

import pytest

from filerestore.blockio import BytesReader
from filerestore.errors import FilesystemError
from filerestore.fs.base import Filesystem
from filerestore.fs.contents import FileContents
from filerestore.fs.corrupt import PARSER_ERRORS
from filerestore.fs.entry import Entry, EntryKind
from filerestore.fs.libyal import Extent, ExtentReader


class Broken(Filesystem[str]):
    """A backend whose parser fails with ``exc`` while reading "/bad"."""

    kind = "broken"

    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc

    def _root(self) -> str:
        return "/"

    def _children(self, node: str) -> Iterator[tuple[str, str]]:
        if node == "/bad":
            raise self.exc
        return iter([("bad", "/bad"), ("file", "/file")] if node == "/" else [])

    def _kind(self, node: str) -> EntryKind:
        return EntryKind.FILE if node == "/file" else EntryKind.DIR

    def _key(self, node: str) -> Hashable:
        return node

    def _entry(self, name: str, path: str, node: str) -> Entry:
        return Entry(name, path, self._kind(node), 0)

    def _link_target(self, node: str) -> str:
        raise self.exc

    def _open(self, node: str) -> FileContents:
        return ExtentReader(BytesReader(b""), [Extent(0, 10, 4)], 4)  # past the volume


ERRORS = [
    IndexError("index out of range"),
    struct.error("unpack_from requires a buffer of at least 8 bytes"),
    KeyError("Can't find item with key (256, 1, 0)"),
    UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    OverflowError("Python int too large to convert to C long"),
    RecursionError("maximum recursion depth exceeded"),
    MemoryError(),
]


@pytest.mark.parametrize("exc", ERRORS, ids=[type(e).__name__ for e in ERRORS])
def test_stray_parser_errors_become_filesystem_errors(exc: BaseException) -> None:
    assert isinstance(exc, PARSER_ERRORS)
    fs = Broken(exc)
    for action in (
        lambda: list(fs.list_dir("/bad")),
        lambda: list(fs.walk("/")),
        lambda: fs.stat("/bad/x"),
    ):
        with pytest.raises(FilesystemError) as info:
            action()
        message = str(info.value)
        assert message.startswith("broken: cannot ")
        assert f"corrupt or unsupported structure ({type(exc).__name__}" in message
        assert "\n" not in message


def test_reads_raise_only_the_error_tree() -> None:
    fs = Broken(IndexError())
    reader = fs.open("/file")
    with pytest.raises(FilesystemError, match="ends past the end of the volume"):
        reader.read_at(0, 4)
    with pytest.raises(ValueError, match="negative"):  # the caller's mistake stays one
        reader.read_at(-1, 4)

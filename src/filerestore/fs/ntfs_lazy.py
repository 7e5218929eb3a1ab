# References: libfsntfs "New Technologies File System (NTFS)" format documentation: the MFT
# entry header (flags at 0x16: 0x01 in use; base record file reference at 0x20), the
# attribute header (name length at 9, name offset at 10, resident value size and offset at
# 0x10 and 0x14), "The standard information attribute" (creation, modification, entry
# modification and access times at 0, 8, 16 and 24; file attribute flags at 32), "The file
# name attribute" (namespace at 0x41), "The index root attribute" ($I30).
"""Directories reached through their parents' ``$I30`` indexes, without a library file entry.

libfsntfs reads a directory's whole index when it makes the directory's file entry (for a
directory of 100,000 names, about 24 MiB of index blocks in 4 KiB reads: 45-100 ms), and a
path is resolved through a file entry per component. A page of a large directory needs none
of that: its names come from the ``$I30`` index (ntfs_index.py), and the directory itself
from its MFT entry. So a child found in a parent's index is a :class:`LazyEntry`, which
makes the library's file entry only when something else is asked of it; and a plain
directory (an ``$I30`` index root, no reparse point, no attribute list: nothing the library
would read elsewhere) has its kind and metadata read from its own MFT entry
(:func:`plain_directory`), as the library would give them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from filerestore.fs.ntfs_index import I30, NAMESPACE_DOS, TYPE_INDEX_ROOT
from filerestore.fs.ntfs_reparse import (
    MFT_INDEX_MASK,
    TYPE_ATTRIBUTE_LIST,
    TYPE_REPARSE_POINT,
    attributes,
)
from filerestore.fs.ntfs_walk import TYPE_FILE_NAME

TYPE_STANDARD_INFORMATION = 0x10
RECORD_IN_USE = 0x0001
_TIMES_AND_FLAGS = struct.Struct("<QQQQI")  # $STANDARD_INFORMATION's first 36 bytes


class LazyEntry:
    """A library file entry made on first use; its file reference is known before."""

    __slots__ = ("_entry", "_open", "_ref")

    def __init__(self, ref: int, open_entry: Callable[[int], Any]) -> None:
        self._ref = ref
        self._open = open_entry
        self._entry: Any = None

    def get_file_reference(self) -> int:
        return self._ref

    def __getattr__(self, name: str) -> Any:
        entry = self._entry
        if entry is None:
            entry = self._entry = self._open(self._ref & MFT_INDEX_MASK)
        return getattr(entry, name)


class PlainDirectory(NamedTuple):
    """What an Entry needs of a plain directory, from its MFT entry."""

    flags: int  # file attribute flags ($STANDARD_INFORMATION)
    creation: int  # FILETIMEs
    modification: int
    entry_modification: int
    access: int
    links: int  # $FILE_NAME attributes not in the DOS namespace


def plain_directory(record: bytes) -> PlainDirectory | None:
    """The directory a fixed-up base MFT entry holds when it is a plain one (in use, an
    ``$I30`` index root, no reparse point, no attribute list, a resident standard
    information); None for anything else, which the library reads."""
    if len(record) < 0x30:
        return None
    (flags,) = struct.unpack_from("<H", record, 0x16)
    (base,) = struct.unpack_from("<Q", record, 0x20)
    if not flags & RECORD_IN_USE or base & MFT_INDEX_MASK:
        return None
    info: tuple[int, ...] | None = None
    has_index = False
    links = 0
    try:
        for kind, pos, length in attributes(record):
            if kind in (TYPE_ATTRIBUTE_LIST, TYPE_REPARSE_POINT):
                return None
            resident = record[pos + 8] == 0 and length >= 24
            if not resident:
                continue
            size, offset = struct.unpack_from("<IH", record, pos + 0x10)
            if offset + size > length:
                return None
            value = pos + offset
            if kind == TYPE_STANDARD_INFORMATION and size >= _TIMES_AND_FLAGS.size:
                info = _TIMES_AND_FLAGS.unpack_from(record, value)
            elif kind == TYPE_FILE_NAME and size >= 0x42:
                links += record[value + 0x41] != NAMESPACE_DOS
            elif kind == TYPE_INDEX_ROOT:
                name_len, (name_at,) = record[pos + 9], struct.unpack_from("<H", record, pos + 10)
                has_index |= record[pos + name_at : pos + name_at + 2 * name_len] == I30
    except ValueError:  # an attribute out of bounds: the library says what it makes of it
        return None
    if info is None or not has_index:
        return None
    creation, modification, entry_modification, access, attribute_flags = info
    return PlainDirectory(
        attribute_flags, creation, modification, entry_modification, access, links
    )

# References: libfsntfs "New Technologies File System (NTFS)" format documentation: the MFT
# attribute header (resident and non-resident forms, data runs), "The index root attribute",
# "The index allocation attribute" (INDX records, update sequence), "The bitmap attribute",
# "The index entry" (flags 0x01 has a sub node, 0x02 last entry) and "The file name
# attribute" (file attribute flags, 0x10000000 "has a directory entries index", the reparse
# tag in place of the extended attributes size); [MS-FSCC] 2.6 file attribute flags.
"""A directory's names and kinds from its ``$I30`` index, without an MFT entry per name.

A page of a large directory needs every name and whether it is a directory (a page in name
order puts directories first), then only the page's entries. libfsntfs opens the MFT entry
of every child to list a directory (about 10 microseconds each). The directory's own index
has what a page needs: each entry holds the child's file reference and a copy of its
``$FILE_NAME`` attribute, with the name and the file attribute flags, among them "has a
directory entries index" (a directory) and "reparse point" (with the tag where the
extended attributes size would be: a symbolic link or junction is a link in our model).

Every entry of the B+tree is a name (the node entries too, not only the leaves): the root's
entries and those of every index block the ``$BITMAP`` marks in use. DOS 8.3 aliases are not
links of their own and are left out, as the library's listing leaves them out.

Anything this reader does not handle in full (an ``$ATTRIBUTE_LIST``, a non-resident
bitmap, an index block that fails its update sequence, a name that is not valid UTF-16, an
entry or a run out of bounds) makes it answer None: the directory is then listed by the
library, which reads or refuses it.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Callable, Iterator
from typing import NamedTuple

from filerestore.fs.ntfs_reparse import SECTOR, apply_fixups, attributes

TYPE_ATTRIBUTE_LIST, TYPE_INDEX_ROOT, TYPE_INDEX_ALLOCATION, TYPE_BITMAP = 0x20, 0x90, 0xA0, 0xB0
I30 = "$I30".encode("utf-16-le")
#: bytes.decode("utf-16-le") finds its codec by name each call: four times slower
_utf16 = codecs.utf_16_le_decode
ENTRY_LAST = 0x0002
NAMESPACE_DOS = 2
FILE_NAME_HAS_INDEX = 0x10000000
ATTR_REPARSE_POINT = 0x0400
_ENTRY = struct.Struct("<QHHH")  # file reference, entry length, key length, flags
_NAME_HEAD = struct.Struct("<IIBB")  # $FILE_NAME flags (0x38), reparse (0x3C), length, space
_READ_PIECE = 1 << 20  # index allocation bytes read at a time
# a larger index (some 10 million names) is left to the library: a page never reads more
MAX_INDEX_BYTES = 1 << 30
_INDEX_MASK = (1 << 48) - 1  # a file reference's MFT index
ROOT_MFT_INDEX = 5  # the root directory's record (its "." entry is not listed)


class Unhandled(Exception):
    """A structure this reader leaves to the library."""


class Attribute(NamedTuple):
    kind: int
    value: bytes | None  # a resident attribute's value
    runs: list[tuple[int | None, int]]  # a non-resident one's (cluster or None, clusters)
    size: int  # a non-resident attribute's data size


#: (name, is a directory, the child's file reference)
Named = tuple[str, bool, int]
#: reads ``length`` bytes of the volume at ``offset`` (a Reader's read_at)
ReadAt = Callable[[int, int], bytes]


def i30_names(record: bytes, read: ReadAt, cluster: int, link_tags: tuple[int, ...]) -> list[Named]:
    """Every entry of the directory whose fixed-up MFT entry is ``record``; ``read(offset,
    length)`` reads the volume; ``link_tags`` are the reparse tags listed as links.
    Raises Unhandled (see the module docstring)."""
    attrs = {a.kind: a for a in _i30_attributes(record)}
    root = attrs.get(TYPE_INDEX_ROOT)
    if root is None or root.value is None or len(root.value) < 0x20:
        raise Unhandled("no resident index root")
    (block_size,) = struct.unpack_from("<I", root.value, 8)
    out: list[Named] = []
    _node_entries(root.value, 0x10, out, link_tags)
    alloc = attrs.get(TYPE_INDEX_ALLOCATION)
    if alloc is None:
        return out
    bitmap = attrs.get(TYPE_BITMAP)
    if bitmap is None or alloc.value is not None:
        raise Unhandled("index allocation without a bitmap")
    if block_size < SECTOR or block_size & (block_size - 1) or block_size > 65536:
        raise Unhandled(f"index block size {block_size}")
    if alloc.size > MAX_INDEX_BYTES:
        raise Unhandled(f"an index of {alloc.size} bytes")
    in_use = _value(bitmap, read, cluster, alloc.size)
    for at, block in _blocks(alloc, read, cluster, block_size):
        n = at // block_size
        if n >> 3 < len(in_use) and in_use[n >> 3] >> (n & 7) & 1:
            fixed = apply_fixups(block, b"INDX")
            if fixed is None:
                raise Unhandled("index block torn or without its signature")
            _node_entries(fixed, 0x18, out, link_tags)
    return out


def _i30_attributes(record: bytes) -> Iterator[Attribute]:
    """The attributes named $I30 of a fixed-up MFT entry; Unhandled for an attribute list."""
    try:
        spans = list(attributes(record))
    except ValueError:
        raise Unhandled("attribute out of bounds") from None
    for kind, pos, length in spans:
        if kind == TYPE_ATTRIBUTE_LIST:
            raise Unhandled("attribute list")
        non_resident, name_len = record[pos + 8], record[pos + 9]
        (name_at,) = struct.unpack_from("<H", record, pos + 10)
        name = record[pos + name_at : pos + name_at + 2 * name_len]
        if name == I30 and kind in (TYPE_INDEX_ROOT, TYPE_INDEX_ALLOCATION, TYPE_BITMAP):
            yield _attribute(record, pos, length, kind, non_resident)


def _attribute(record: bytes, pos: int, length: int, kind: int, non_resident: int) -> Attribute:
    if not non_resident:
        if length < 24:
            raise Unhandled("short resident attribute")
        size, offset = struct.unpack_from("<IH", record, pos + 0x10)
        if offset + size > length:
            raise Unhandled("resident value out of bounds")
        return Attribute(kind, record[pos + offset : pos + offset + size], [], size)
    if length < 0x40:
        raise Unhandled("short non-resident attribute")
    (first_vcn,) = struct.unpack_from("<Q", record, pos + 0x10)
    (runs_at,) = struct.unpack_from("<H", record, pos + 0x20)
    (size,) = struct.unpack_from("<Q", record, pos + 0x30)
    if first_vcn or runs_at >= length:
        raise Unhandled("attribute in several pieces")
    return Attribute(kind, None, data_runs(record[pos + runs_at : pos + length]), size)


def data_runs(raw: bytes) -> list[tuple[int | None, int]]:
    """(first cluster or None for a hole, clusters) of each run of a mapping pairs array."""
    out: list[tuple[int | None, int]] = []
    pos, lcn = 0, 0
    while pos < len(raw) and raw[pos]:
        head = raw[pos]
        n_len, n_off = head & 0x0F, head >> 4
        if not n_len or n_len > 8 or n_off > 8 or pos + 1 + n_len + n_off > len(raw):
            raise Unhandled("bad data run")
        length = int.from_bytes(raw[pos + 1 : pos + 1 + n_len], "little")
        if n_off:
            lcn += int.from_bytes(
                raw[pos + 1 + n_len : pos + 1 + n_len + n_off], "little", signed=True
            )
            if lcn < 0:
                raise Unhandled("data run before the volume")
            out.append((lcn, length))
        else:
            out.append((None, length))
        pos += 1 + n_len + n_off
    return out


def _value(attr: Attribute, read: ReadAt, cluster: int, blocks_size: int) -> bytes:
    """An attribute's value, resident or not (a bitmap: at most a bit per byte of
    ``blocks_size``, else it is not one)."""
    if attr.value is not None:
        return attr.value
    if attr.size > blocks_size // 8 + 8 * cluster:
        raise Unhandled("a bitmap larger than its index")
    out = b""
    for lcn, clusters in attr.runs:
        n = min(clusters * cluster, attr.size - len(out))
        if lcn is None:
            out += bytes(n)
        else:
            data = read(lcn * cluster, n)
            if len(data) != n:
                raise Unhandled("bitmap past the volume's end")
            out += data
        if len(out) >= attr.size:
            break
    return out


def _blocks(
    alloc: Attribute, read: ReadAt, cluster: int, block_size: int
) -> Iterator[tuple[int, bytes]]:
    """(offset in the index allocation, bytes) of each whole index block of its data."""
    at = 0  # offset in the attribute's data
    pending = b""
    for lcn, clusters in alloc.runs:
        if lcn is None:
            raise Unhandled("a hole in an index allocation")
        run_end = min(at + clusters * cluster, alloc.size)
        pos = at
        while pos < run_end:
            n = min(_READ_PIECE, run_end - pos)
            data = read(lcn * cluster + (pos - at), n)
            if len(data) != n:
                raise Unhandled("index allocation past the volume's end")
            pending += data
            pos += n
            whole = len(pending) - len(pending) % block_size
            start = pos - len(pending)
            for k in range(0, whole, block_size):
                yield start + k, pending[k : k + block_size]
            pending = pending[whole:]
        at += clusters * cluster
        if at >= alloc.size:
            return


def _node_entries(data: bytes, header: int, out: list[Named], link_tags: tuple[int, ...]) -> None:
    """The entries of the index node whose node header is at ``header`` in ``data``."""
    if header + 16 > len(data):
        raise Unhandled("index node header out of bounds")
    first, total = struct.unpack_from("<II", data, header)
    pos, end = header + first, min(header + total, len(data))
    entry_at, name_at = _ENTRY.unpack_from, _NAME_HEAD.unpack_from
    while True:
        if pos + 16 > end:
            raise Unhandled("index entries run past their node")
        ref, length, key_len, flags = entry_at(data, pos)
        if flags & ENTRY_LAST:
            return
        if length < 16 or pos + length > end or key_len < 0x42 or 16 + key_len > length:
            raise Unhandled("index entry out of bounds")
        attr_flags, reparse, n, space = name_at(data, pos + 16 + 0x38)
        if 0x42 + 2 * n > key_len:
            raise Unhandled("file name out of bounds")
        if space != NAMESPACE_DOS and ref & _INDEX_MASK != ROOT_MFT_INDEX:  # not the root's "."
            raw = data[pos + 16 + 0x42 : pos + 16 + 0x42 + 2 * n]
            try:
                name = _utf16(raw, None, True)[0]  # strict, the whole name
            except UnicodeDecodeError:
                raise Unhandled("a name that is not valid UTF-16") from None
            is_dir = bool(attr_flags & FILE_NAME_HAS_INDEX) and not (
                attr_flags & ATTR_REPARSE_POINT and reparse in link_tags
            )
            out.append((name, is_dir, ref))
        pos += length

# References: libfsntfs "New Technologies File System (NTFS)" format documentation, "The MFT
# entry" (signature "FILE" at 0, flags at 0x16 with 0x0001 in use, base record file reference
# at 0x20, sequence number at 0x10, flags 0x0002 has a file name index) and "The file name
# attribute" (parent file reference, name space).
"""What changed between two states of one NTFS volume, from the bytes that changed.

The NTFS counterpart of fs/ext_changes.py. Every file and directory is a record of the MFT,
and the MFT is a file whose extents say where each record lies on the volume. An MFT record
whose bytes lie in the ranges an incremental holds, and differ from the previous backup's, is
a file whose metadata changed, or a new, freed or reused record; an extension record that
changed stands for its base record.

A directory's entries are the ``$FILE_NAME`` links of the records that name it as parent, so
no entry is added to, removed from or renamed in a directory without the record of that entry
changing (a record allocated or freed, a link added or removed). The links of the changed
records, against the links the index holds for them (``record_links``), are therefore every
directory's added and removed entries: no directory index is read at all.

Limits, where the caller must walk instead (``changed_records`` returns None): the two volumes
differ in record size, the MFT has a hole or a record split between two extents, or the old
MFT's records do not lie where the new MFT says they lie (an MFT moved or rearranged; growing
at its end is fine).
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterator, Mapping
from typing import Any

from filerestore.fs.entry import Entry
from filerestore.fs.libyal import LIBRARY_ERRORS, Extent
from filerestore.fs.ntfs import FIRST_USER_MFT_INDEX, MFT_INDEX_MASK, ROOT_MFT_INDEX, NtfsFilesystem
from filerestore.fs.ntfs_walk import names_of
from filerestore.image.allocation import differing_units, overlaps

_FLAGS = struct.Struct("<H")  # at 0x16
_BASE = struct.Struct("<Q")  # at 0x20
_SEQUENCE = struct.Struct("<H")  # at 0x10
_IN_USE = 0x0001
_DIRECTORY = 0x0002  # the record has a file name index ($I30)


def changed_records(
    new: NtfsFilesystem, old: NtfsFilesystem, ranges: list[tuple[int, int]]
) -> list[int] | None:
    """MFT indexes of the base records whose bytes differ between ``old`` and ``new``, looking
    only at the volume byte ``ranges`` (offset, length; sorted, disjoint) that may differ; None
    when the MFT's geometry changed (see the module docstring)."""
    size = new._entry_size
    if old._entry_size != size:
        return None
    new_map, old_map = _mft_map(new), _mft_map(old)
    if new_map is None or old_map is None or not _keeps(new_map, old_map):
        return None
    out: set[int] = set()
    for extent in new_map:
        assert extent.physical is not None  # _mft_map leaves no holes
        for lo, hi in overlaps(ranges, extent.physical, extent.physical + extent.length):
            logical = extent.logical + (lo - extent.physical)
            first = logical // size  # whole records only
            start = extent.physical + (first * size - extent.logical)
            for at in differing_units(new.reader, old.reader, start, hi, size, "ntfs: the MFT"):
                record = first + (at - start) // size
                out.add(record)
                out.update(_bases(new, old, at, size))
    return sorted(r for r in out if r >= FIRST_USER_MFT_INDEX or r == ROOT_MFT_INDEX)


def _mft_map(fs: NtfsFilesystem) -> list[Extent] | None:
    """The $MFT's extents, each holding whole records (else None)."""
    with fs._lock:
        try:
            extents = fs._extents(fs._mft, int(fs._mft.get_size()))
        except LIBRARY_ERRORS as exc:
            raise fs._library_error("map the MFT", exc) from exc
    size = fs._entry_size
    if not extents or any(
        e.physical is None or e.logical % size or e.length % size for e in extents
    ):
        return None  # a hole, or a record split between two extents (clusters < records)
    return extents


def _keeps(new: list[Extent], old: list[Extent]) -> bool:
    """Whether every byte of the old MFT lies where the new MFT has it."""
    starts = [e.logical for e in new]  # in MFT order: a running sum of the extents
    for extent in old:
        assert extent.physical is not None
        i = bisect.bisect_right(starts, extent.logical) - 1
        if i < 0:
            return False
        e = new[i]
        if extent.logical + extent.length > e.logical + e.length:
            return False  # split differently: only whole old extents are compared
        assert e.physical is not None
        if e.physical + (extent.logical - e.logical) != extent.physical:
            return False
    return True


def _bases(new: NtfsFilesystem, old: NtfsFilesystem, at: int, size: int) -> Iterator[int]:
    """The base records of the extension record at volume offset ``at``, before and after."""
    for fs in (new, old):
        head = fs.reader.read_at(at, 0x28)
        in_use = len(head) == 0x28 and _FLAGS.unpack_from(head, 0x16)[0] & _IN_USE
        if in_use and head[:4] == b"FILE":
            base = _BASE.unpack_from(head, 0x20)[0] & MFT_INDEX_MASK
            if base:
                yield base


def record_entries(
    fs: NtfsFilesystem, wanted: list[tuple[int, str, str]], nodes: Mapping[int, Any]
) -> list[Entry | None]:
    """The entry of each (MFT index, name, path); None where that record is no longer in use
    as a base record with a link of that name (deleted, renamed, or reused). ``nodes``: the
    library's file entries already read (``record_links``), by MFT index."""
    out: list[Entry | None] = []
    with fs._lock:
        for index, name, path in wanted:
            try:
                node = nodes.get(index) or fs._volume.get_file_entry(index)
                if (
                    node is None
                    or not node.is_allocated()
                    or node.get_base_record_file_reference()
                    or name not in {n for _, n in names_of(node)}
                ):
                    out.append(None)
                    continue
            except LIBRARY_ERRORS as exc:
                raise fs._library_error(f"read MFT entry {index}", exc) from exc
            out.append(fs._entry(name, path, node))
    return out


def record_links(
    fs: NtfsFilesystem, indexes: list[int], keep: dict[int, Any] | None = None, most: int = 0
) -> dict[int, list[tuple[int, str]]]:
    """(parent MFT index, name) of each link of each record in ``indexes`` as it is now: none
    for a record not in use as a base record; a link whose parent reference names another
    generation of its parent's record (a stale link) left out, as the bulk walk leaves it.

    Every change of a directory's entries changes the record of the entry added, removed or
    renamed (a new record, a freed one, a $FILE_NAME added or removed), so the links of the
    changed records, against their links in the index, give every directory's added and
    removed entries without listing a directory."""
    out: dict[int, list[tuple[int, str]]] = {}
    refs: dict[int, int | None] = {}  # a parent's MFT index -> its file reference
    with fs._lock:
        for index in indexes:
            try:
                node = fs._volume.get_file_entry(index)
                if node is None or not node.is_allocated() or node.get_base_record_file_reference():
                    out[index] = []
                    continue
                if keep is not None and len(keep) < most:
                    keep[index] = node  # for record_entries, up to ``most`` of them
                links = []
                for parent_ref, name in names_of(node):
                    parent = parent_ref & MFT_INDEX_MASK
                    if parent not in refs:
                        refs[parent] = _reference(fs, parent)
                    if refs[parent] == parent_ref and index != ROOT_MFT_INDEX:
                        links.append((parent, name))
            except LIBRARY_ERRORS as exc:
                raise fs._library_error(f"read MFT entry {index}", exc) from exc
            out[index] = links
    return out


def _reference(fs: NtfsFilesystem, index: int) -> int | None:
    """The file reference of directory record ``index`` now (None: not a directory in use),
    from the record's header: its sequence number and flags, no attribute parsed."""
    try:
        raw = fs._raw_entry(index)
    except LIBRARY_ERRORS:
        return None  # unreadable: no parent to link to
    if raw is None:
        return None  # past the MFT's end, or not a record
    flags = _FLAGS.unpack_from(raw, 0x16)[0]
    if flags & (_IN_USE | _DIRECTORY) != _IN_USE | _DIRECTORY or _BASE.unpack_from(raw, 0x20)[0]:
        return None
    return int(_SEQUENCE.unpack_from(raw, 0x10)[0]) << 48 | index

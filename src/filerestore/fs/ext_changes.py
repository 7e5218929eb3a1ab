# References: "ext4 Data Structures and Algorithms" (kernel.org, Documentation/filesystems/
# ext4/): block group descriptors (section 3.4: bg_inode_table), the inode table (4.1);
# the kernel's fs/ext4/namei.c (ext4_add_entry, ext4_delete_entry and ext4_rename set the
# directory's i_mtime and i_ctime), for why a changed directory is a changed inode.
"""What changed between two states of one ext filesystem, from the bytes that changed.

An incremental backup knows which bytes of the volume may differ from the backup before it
(the clusters its overlay holds). Of those, the inode table is what says which files
changed: an inode whose bytes differ is a file, directory or link whose metadata changed, or
a new or freed one; and a directory whose entries changed is one of them too, because the
kernel sets a directory's mtime and ctime whenever it adds, removes or renames an entry.
Comparing the two inode tables over the changed ranges, 4 KiB at a time and then inode by
inode where a block differs, gives the changed inodes without walking the tree; comparing a
changed directory's blocks that lie in the changed ranges gives its added and removed
entries without listing it whole.

Limits, where the caller must walk instead (``changed_inodes`` returns None): the two
filesystems differ in geometry (inode count, size, per-group count, or where any group's
inode table lies: a resize). A change made by rewriting the device under the filesystem's
feet (a directory block edited without its inode) is not seen; file data rewritten without
its inode (which the kernel never does: it sets mtime) keeps its old content hash.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterator

from filerestore.errors import FilesystemError
from filerestore.fs.base import split_path
from filerestore.fs.entry import Entry, EntryKind
from filerestore.fs.ext import ExtFilesystem
from filerestore.fs.ext_dir import parse_dir_block
from filerestore.fs.ext_inode import Inode
from filerestore.fs.ext_walk import directory, iter_all
from filerestore.fs.libyal import Extent, fsdecode
from filerestore.image.allocation import differing_pieces, overlaps

_REC_LEN = struct.Struct("<H")
#: bytes of two versions of a directory block compared at a time for where they differ:
#: about one entry (8 bytes of header and a name, rounded to 4)
_CHUNK = 32
#: changed inodes whose bytes are kept for the pass's reads of them (16 MiB of 256-byte
#: inodes a state at most; the others are read again)
KEPT_INODES = 65_536


def changed_inodes(
    new: ExtFilesystem, old: ExtFilesystem, ranges: list[tuple[int, int]]
) -> list[int] | None:
    """Inode numbers whose on-disk bytes differ between ``old`` and ``new``, looking only at
    the volume byte ``ranges`` (offset, length) that may differ; None when the geometry
    changed (see the module docstring)."""
    a, b = new.superblock, old.superblock
    geometry = ("inodes_count", "inode_size", "inodes_per_group", "block_size")
    if any(getattr(a, f) != getattr(b, f) for f in geometry):
        return None
    groups = -(-a.inodes_count // a.inodes_per_group)
    isize, per_group, bs = a.inode_size, a.inodes_per_group, a.block_size
    table_len = per_group * isize
    out: list[int] = []
    kept: dict[int, bytes] = {}  # their bytes in each state: the pass reads them again
    kept_old: dict[int, bytes] = {}
    for group in range(groups):
        start = new._inode_table(group) * bs
        if old._inode_table(group) * bs != start:
            return None
        for lo, hi in overlaps(ranges, start, start + table_len):
            # whole inodes only
            lo = start + (lo - start) // isize * isize
            for index, raw, was in differing_pieces(
                new.reader, old.reader, lo, hi, isize, "ext: the inode table"
            ):
                number = group * per_group + (index - start) // isize + 1
                if number <= a.inodes_count:
                    out.append(number)
                    if len(kept) < KEPT_INODES:
                        kept[number], kept_old[number] = raw, was
    new._kept, old._kept = kept, kept_old  # served from memory by their _raw_inodes
    return out


def inode_entries(fs: ExtFilesystem, wanted: list[tuple[int, str, str]]) -> list[Entry]:
    """The entry of each (inode number, name, path), the inodes read in one sweep."""
    with fs._lock:
        order = sorted(range(len(wanted)), key=lambda i: wanted[i][0])
        inodes = fs._read_inodes([wanted[i][0] for i in order])
        out: list[Entry | None] = [None] * len(wanted)
        for i, node in zip(order, inodes, strict=True):
            out[i] = fs._entry(wanted[i][1], wanted[i][2], node)
        return [e for e in out if e is not None]


def list_inode(fs: ExtFilesystem, number: int, path: str) -> list[Entry] | None:
    """The entries of directory inode ``number`` (whose path is ``path``), named as the bulk
    walk names them; None when the inode is not a directory any more."""
    with fs._lock:
        node = fs._read_inodes([number])[0]
        if fs._kind(node) is not EntryKind.DIR:
            return None
    return directory(fs, node, path)[0]


def iter_below(fs: ExtFilesystem, path: str) -> Iterator[tuple[Entry, list[Entry]]]:
    """``iter_all`` of the subtree of directory ``path`` (its own entry first)."""
    with fs._lock:
        parts = split_path(path)
        _, node = fs._resolve(path, follow_final=False)
        top = fs._entry(parts[-1] if parts else "", path, node)
    if top.kind is not EntryKind.DIR:
        return iter(())
    return iter_all(fs, deque([(top, node)]))


def directory_extents(fs: ExtFilesystem, node: Inode) -> list[Extent] | None:
    """A directory's blocks as extents (None: inline data, which has no blocks)."""
    with fs._lock, fs._library_errors("read a directory"):
        return fs.dir_extents(node, fs.dir_size(node))


def changed_entries(
    new: ExtFilesystem, old: ExtFilesystem, number: int, ranges: list[tuple[int, int]]
) -> tuple[set[tuple[str, int]], set[tuple[str, int]]] | None:
    """(added, removed) (name, inode) pairs of directory inode ``number``, from the directory
    blocks that lie in ``ranges`` and differ; None when the directory's blocks moved (it
    grew, shrank or was rewritten elsewhere), which only a whole listing can tell."""
    new_node, old_node = new._read_inodes([number])[0], old._read_inodes([number])[0]
    if new.kind_of(new_node) is not EntryKind.DIR or old.kind_of(old_node) is not EntryKind.DIR:
        return None
    extents = directory_extents(new, new_node)
    if extents is None or extents != directory_extents(old, old_node):
        return None
    bs = new.superblock.block_size
    filetype = new.has_filetype
    added: set[tuple[bytes, int]] = set()
    removed: set[tuple[bytes, int]] = set()
    for ext in extents:
        if ext.physical is None:
            return None  # a hole in a directory: corrupt; the listing refuses it
        for lo, hi in overlaps(ranges, ext.physical, ext.physical + ext.length):
            first = lo - (lo - ext.physical) % bs
            for block in range(first, hi, bs):
                x, y = new.reader.read_at(block, bs), old.reader.read_at(block, bs)
                if x == y:
                    continue
                now, before = _block_changes(x, y, filetype)
                added |= now - before
                removed |= before - now
    # an entry that moved from one block to another (an htree split) is neither
    return _decoded(added - removed), _decoded(removed - added)


def _decoded(pairs: set[tuple[bytes, int]]) -> set[tuple[str, int]]:
    return {(fsdecode(name), ino) for name, ino in pairs}


def _differing_span(x: bytes, y: bytes) -> tuple[int, int]:
    """[start, end) holding every byte where the equal-sized ``x`` and ``y`` differ: each
    bound found by bisection over slice comparisons (memcmp), not byte by byte."""
    lo, hi = 0, len(x)
    while lo < hi:  # the longest equal prefix
        mid = (lo + hi + 1) // 2
        if x[:mid] == y[:mid]:
            lo = mid
        else:
            hi = mid - 1
    start = lo
    lo, hi = 0, len(x) - start
    while lo < hi:  # the longest equal suffix after it
        mid = (lo + hi + 1) // 2
        if x[len(x) - mid :] == y[len(y) - mid :]:
            lo = mid
        else:
            hi = mid - 1
    return start, len(x) - lo


def _hops(block: bytes, pos: int, until: int) -> tuple[int, int]:
    """Hop entry to entry from ``pos`` (an entry's offset) by rec_len alone: the offset of the
    entry that holds byte ``until``, and that entry's end."""
    size = len(block)
    big = size >= 65536
    unpack = _REC_LEN.unpack_from
    while pos + 8 <= size:
        (rec_len,) = unpack(block, pos + 4)
        if big:  # ext4_rec_len_from_disk: 64 KiB blocks steal two low bits
            rec_len = 65536 if rec_len in (0, 0xFFFF) else (rec_len & 0xFFFC) | (rec_len & 3) << 16
        if rec_len < 8 or pos + rec_len > size:
            raise FilesystemError(f"ext: corrupt directory entry at byte {pos} of a block")
        if pos + rec_len > until:
            return pos, pos + rec_len
        pos += rec_len
    return pos, pos


def _block_changes(
    x: bytes, y: bytes, filetype: bool
) -> tuple[set[tuple[bytes, int]], set[tuple[bytes, int]]]:
    """(name, inode) pairs of new block ``x`` and old block ``y`` over the entries that
    differ. Only entries that overlap the differing bytes are parsed, a run of differing
    chunks at a time; each run is widened until it ends on an entry boundary in both (a
    removed entry is still there in the new block's bytes, inside the rec_len of the entry
    before it). From such a boundary the bytes up to the next run are the same in both
    blocks: so are the entries they hold, and the next run's first entry begins at the same
    offset in both."""
    now: set[tuple[bytes, int]] = set()
    before: set[tuple[bytes, int]] = set()
    at = 0  # an entry boundary in both blocks, the bytes before it parsed or equal
    for lo, end in _differing_runs(x, y):
        if end <= at:  # inside the entries the run before was widened to
            continue
        first, _ = _hops(x, at, max(lo, at))
        px = py = first
        while True:  # widen to the end of the entries holding ``end - 1`` in both blocks
            px, ex = _hops(x, px, end - 1)
            py, ey = _hops(y, py, end - 1)
            if max(ex, ey) <= end:
                break
            end = max(ex, ey)
        if min(ex, ey) < end:  # a block's entries end before it: nothing is after it
            end = len(x)
        now.update((name, ino) for name, ino, _ in parse_dir_block(x, filetype, first, end))
        before.update((name, ino) for name, ino, _ in parse_dir_block(y, filetype, first, end))
        at = end
    return now, before


def _differing_runs(x: bytes, y: bytes) -> list[tuple[int, int]]:
    """[start, end) of each run of :data:`_CHUNK`-byte chunks where the equal-sized ``x``
    and ``y`` differ, in order, between the first and the last differing byte."""
    start, end = _differing_span(x, y)
    runs: list[tuple[int, int]] = []
    for at in range(start - start % _CHUNK, end, _CHUNK):
        if x[at : at + _CHUNK] != y[at : at + _CHUNK]:
            lo, hi = max(at, start), min(at + _CHUNK, end)
            if runs and runs[-1][1] == lo:
                lo = runs.pop()[0]
            runs.append((lo, hi))
    return runs

# References: QEMU docs/interop/qcow2.txt ("Cluster mapping": an L2 entry with no host offset
# and no zero flag is unallocated and reads from the backing file; "Extended L2 Entries":
# the allocation and zero bitmaps of the 32 subclusters).
"""Which guest bytes the top layers of a chain hold themselves: what an incremental changed.

A backup's overlay holds exactly the clusters the VM wrote since the backup below it (every
other cluster reads through to the backing file), so the union of the clusters allocated in
the files above the older backup is where the guest disk may differ from it. Normal,
compressed and zero clusters (and subclusters) all count: a zero cluster hides the backing
file's data too. A raw file in those layers holds every byte.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from filerestore.blockio import Reader
from filerestore.errors import FilesystemError
from filerestore.image.disk import DiskImage
from filerestore.image.qcow2 import Qcow2Layer
from filerestore.image.qcow2_entries import (
    L2E_OFFSET_MASK,
    QCOW_OFLAG_COMPRESSED,
    QCOW_OFLAG_ZERO,
)

#: extended L2 words per entry; the second word is the subcluster bitmap
_EXTENDED_STEP = 2
_SUBCLUSTERS = 32


def layer_allocated(layer: Qcow2Layer) -> Iterator[tuple[int, int]]:
    """(guest offset, length) of the clusters (or subclusters) ``layer`` holds itself, in
    order, adjacent ones merged."""
    g = layer.g
    cs = g.cluster_size
    per_table = g.l2_size
    step = _EXTENDED_STEP if g.extended_l2 else 1
    start = end = -1
    for l1_index in range(-(-layer.size // (cs * per_table))):
        table = layer.l2_table(l1_index)
        if table is None:
            continue
        base = l1_index * per_table * cs
        for i in range(per_table):
            entry = table[i * step]
            offset = base + i * cs
            if offset >= layer.size:
                break
            if step == 1 or entry & QCOW_OFLAG_COMPRESSED:
                held = bool(entry & (L2E_OFFSET_MASK | QCOW_OFLAG_ZERO | QCOW_OFLAG_COMPRESSED))
                pieces = [(offset, cs)] if held else []
            else:
                pieces = list(_subclusters(table[i * step + 1], offset, cs))
            for pos, n in pieces:
                if pos == end:
                    end = pos + n
                else:
                    if end > start >= 0:
                        yield start, end - start
                    start, end = pos, pos + n
    if end > start >= 0:
        yield start, min(end, layer.size) - start


def _subclusters(bitmap: int, offset: int, cs: int) -> Iterator[tuple[int, int]]:
    # low 32 bits: allocated subclusters; high 32 bits: subclusters reading as zeros
    held = (bitmap | bitmap >> _SUBCLUSTERS) & 0xFFFFFFFF
    sc = cs // _SUBCLUSTERS
    for k in range(_SUBCLUSTERS):
        if held >> k & 1:
            yield offset + k * sc, sc


def changed_since(disk: DiskImage, depth: int) -> list[tuple[int, int]] | None:
    """Guest ranges where ``disk`` may differ from the image ``depth`` files down its chain
    (1: its backing file): the union of what the files above that one hold. None when that
    is not known from the tables (a raw file above it, or ``depth`` out of the chain)."""
    layers = disk.layers
    if not 0 < depth < len(layers):
        return None
    ranges: list[tuple[int, int]] = []
    for layer in layers[:depth]:
        if not isinstance(layer, Qcow2Layer):
            return None
        ranges.extend(layer_allocated(layer))
    return merge_ranges(ranges)


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, n in sorted(ranges):
        if out and start <= out[-1][0] + out[-1][1]:
            last_start, last_n = out[-1]
            out[-1] = (last_start, max(last_n, start + n - last_start))
        else:
            out.append((start, n))
    return out


def overlaps(ranges: list[tuple[int, int]], lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """The parts of ``ranges`` (sorted, disjoint (offset, length)) inside [lo, hi)."""
    i = max(0, bisect.bisect_right(ranges, (lo,)) - 1)
    while i < len(ranges):
        start, length = ranges[i]
        if start >= hi:
            return
        s, e = max(start, lo), min(start + length, hi)
        if s < e:
            yield s, e
        i += 1


_PIECE = 1 << 20  # bytes compared at a time
_BLOCK = 4096  # then 4 KiB at a time, then unit by unit where a block differs


def differing_units(
    new: Reader, old: Reader, lo: int, hi: int, unit: int, what: str
) -> Iterator[int]:
    """Offsets ``lo + k * unit`` of the ``unit``-byte pieces of [lo, hi) (a piece that starts
    before ``hi`` compared whole) whose bytes differ between ``new`` and ``old``: inodes of an
    inode table, records of an MFT. ``what`` names the table in the error of a short read."""
    return (offset for offset, _, _ in differing_pieces(new, old, lo, hi, unit, what))


def differing_pieces(
    new: Reader, old: Reader, lo: int, hi: int, unit: int, what: str
) -> Iterator[tuple[int, bytes, bytes]]:
    """:func:`differing_units` with each piece's bytes in ``new`` and in ``old``."""
    step = max(_BLOCK, unit)
    for piece in range(lo, hi, _PIECE):
        n = min(_PIECE, hi - piece)
        n += -n % unit
        x, y = new.read_at(piece, n), old.read_at(piece, n)
        if len(x) != n or len(y) != n:
            raise FilesystemError(f"{what} lies past the end of the volume")
        if x == y:
            continue
        for blk in range(0, n, step):
            if x[blk : blk + step] == y[blk : blk + step]:
                continue
            for at in range(blk, min(blk + step, n), unit):
                if x[at : at + unit] != y[at : at + unit]:
                    yield piece + at, x[at : at + unit], y[at : at + unit]

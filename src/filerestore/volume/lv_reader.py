"""Reading an LVM2 logical volume: its segments mapped onto byte ranges of the disk.

# References: Linux drivers/md/dm-linear.c and dm-stripe.c (stripe_map_sector: chunk =
# offset / chunk_size; stripe = chunk % stripes; row = chunk / stripes; the sector is
# row * chunk_size + offset % chunk_size in that stripe's area).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from itertools import pairwise

from filerestore.blockio import Reader, SizedReader
from filerestore.errors import CorruptImageError, VolumeUnavailableError


@dataclass(frozen=True)
class MappedSegment:
    """One segment of an LV, resolved to disk byte offsets.

    ``areas`` holds the disk offset of each stripe's first byte; a linear segment has one area
    and ``chunk == length``. Each area is ``length // len(areas)`` bytes long.
    """

    start: int  # byte offset of the segment in the LV
    length: int
    chunk: int  # stripe size in bytes
    areas: tuple[int, ...]


def map_range(
    segments: tuple[MappedSegment, ...], starts: list[int], offset: int, length: int
) -> list[tuple[int, int]]:
    """Disk (offset, length) runs holding LV bytes ``offset .. offset+length``.

    ``starts`` is ``[s.start for s in segments]`` (kept by the caller for bisect). Runs that
    continue each other on disk are merged, so a linear read is one disk read.
    """
    runs: list[tuple[int, int]] = []

    def add(disk_offset: int, n: int) -> None:
        if runs and runs[-1][0] + runs[-1][1] == disk_offset:
            runs[-1] = (runs[-1][0], runs[-1][1] + n)
        else:
            runs.append((disk_offset, n))

    i = bisect_right(starts, offset) - 1
    while length > 0 and 0 <= i < len(segments):
        seg = segments[i]
        rel = offset - seg.start
        in_seg = min(length, seg.length - rel)
        if len(seg.areas) == 1:
            add(seg.areas[0] + rel, in_seg)
        else:
            pos, left = rel, in_seg
            while left:
                chunk_index, within = divmod(pos, seg.chunk)
                row, stripe = divmod(chunk_index, len(seg.areas))
                n = min(left, seg.chunk - within)
                add(seg.areas[stripe] + row * seg.chunk + within, n)
                pos += n
                left -= n
        offset += in_seg
        length -= in_seg
        i += 1
    return runs


def contiguous_offset(segments: tuple[MappedSegment, ...]) -> int | None:
    """The disk offset of an LV that is one contiguous byte range on the disk, else None."""
    if not segments or any(len(s.areas) != 1 for s in segments):
        return None
    for a, b in pairwise(segments):
        if a.areas[0] + a.length != b.areas[0]:
            return None
    return segments[0].areas[0]


class LogicalVolumeReader(SizedReader):
    """An LV's bytes. Immutable after construction, so safe from many threads."""

    def __init__(self, disk: Reader, segments: tuple[MappedSegment, ...]) -> None:
        self._disk = disk
        self._segments = segments
        self._starts = [s.start for s in segments]
        self._size = sum(s.length for s in segments)

    def _read(self, offset: int, n: int) -> bytes:
        runs = map_range(self._segments, self._starts, offset, n)
        if len(runs) == 1:
            data = self._disk.read_at(*runs[0])
        else:
            data = b"".join(self._disk.read_at(o, k) for o, k in runs)
        if len(data) != n:
            raise CorruptImageError("logical volume maps past the end of the disk")
        return data


class UnavailableReader:
    """A volume that is listed but cannot be read: every read raises the reason."""

    def __init__(self, size: int, reason: str) -> None:
        self._size = size
        self.reason = reason

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        raise VolumeUnavailableError(self.reason)

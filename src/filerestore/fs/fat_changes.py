"""The directory entries that changed between two states of a FAT or exFAT volume, found from
the raw bytes of the directories the overlay touched (for filerestore.index.changed).

# References: Microsoft "FAT: General Overview of On-Disk Format" (fatgen103, 2000): the FAT
# (section 4: end-of-chain values 0xFF8, 0xFFF8, 0x0FFFFFF8 and up; FAT12 entries of 12
# bits, 1.5 bytes each), directory entries (section 6: 0xE5 free, 0x00 free and none after
# it; a directory holds at most 65,536 entries), long names (section 7: attribute 0x0F, the
# long-name entries stored just before their 8.3 entry). Microsoft "exFAT file system
# specification" (2019): directory entries (6.2: TypeCode, TypeImportance, TypeCategory bit
# 0x40 set for a secondary entry, InUse 0x80), File entry (7.4: SecondaryCount), the
# end-of-directory entry (6.2.1.1).

On both, a file's entry is its identity (our inode number is the byte offset of its 8.3 entry
or File entry in the volume), and everything the index holds of a file (name, size, times,
attributes, first cluster) is in that entry, inside its parent directory's clusters: every
change to an entry is a change to its directory's bytes. So a directory whose clusters are
the same in both states and lie outside the overlay's ranges is unchanged; one whose clusters
are the same but touched is compared 32-byte slot by slot, and each differing slot names the
in-use entry it belongs to in each state (a long-name or secondary entry names its file's
entry); a directory whose clusters differ (it grew) is listed whole.
"""

from __future__ import annotations

import bisect
import struct
from collections import OrderedDict
from collections.abc import Callable

from filerestore.blockio import Reader
from filerestore.errors import FilesystemError
from filerestore.fs.exfat import (
    ENTRY_SIZE,
    TYPE_FILE,
    ExfatFilesystem,
    ExfatNode,
    parse_entry_set,
)
from filerestore.fs.fat import (
    ATTR_DIRECTORY,
    ATTR_LONG_NAME,
    ATTR_VOLUME_ID,
    FatFilesystem,
    parse_short_entry,
)

SLOT = 32
PIECE = 4096  # bytes compared at once before slot by slot
FAT_MAX_DIRECTORY_SIZE = 65_536 * SLOT  # fatgen103 section 6
FREE, DELETED = 0x00, 0xE5
DOTS = (b".          ", b"..         ")
SECONDARY = 0x40  # exFAT TypeCategory
MAX_SET = 19  # exFAT: a File entry, a Stream Extension and up to 17 File Name entries
MAX_LONG_NAME = 20  # FAT: at most 20 long-name entries precede an 8.3 entry (255 chars / 13)
_BLOCK = 64 * 1024
_BLOCKS_KEPT = 64

Extents = tuple[tuple[int, int], ...]  # (volume offset, length) of a directory's bytes


class FatTable:
    """The first FAT of a FAT12/16/32 volume, read a block at a time."""

    def __init__(self, fs: FatFilesystem) -> None:
        bpb = fs.bpb
        self.reader: Reader = fs.reader
        self.kind = fs.kind
        self.offset = bpb.reserved_sectors * bpb.bytes_per_sector
        self.size = bpb.fat_size * bpb.bytes_per_sector
        self.cluster_bytes = bpb.sectors_per_cluster * bpb.bytes_per_sector
        root_bytes = -(-bpb.root_entries * SLOT // bpb.bytes_per_sector) * bpb.bytes_per_sector
        self.root_region = (self.offset + bpb.num_fats * self.size, root_bytes)
        self.data_start = self.root_region[0] + root_bytes
        self.end = bpb.cluster_count + 2  # clusters 2 .. end - 1 exist
        self.last = {"fat12": 0xFF8, "fat16": 0xFFF8}.get(self.kind, 0x0FFFFFF8)
        self._blocks: OrderedDict[int, bytes] = OrderedDict()

    def _bytes(self, pos: int, length: int) -> bytes:
        block_no, rel = divmod(pos, _BLOCK)
        if rel + length > _BLOCK:  # a FAT12 entry across two blocks
            head = _BLOCK - rel
            return self._bytes(pos, head) + self._bytes(pos + head, length - head)
        block = self._blocks.get(block_no)
        if block is None:
            size = min(_BLOCK, self.size - block_no * _BLOCK)
            block = self.reader.read_at(self.offset + block_no * _BLOCK, max(size, 0))
            self._blocks[block_no] = block
            if len(self._blocks) > _BLOCKS_KEPT:
                self._blocks.popitem(last=False)
        if rel + length > len(block):
            raise FilesystemError(f"{self.kind}: a cluster's FAT entry lies past the FAT")
        return block[rel : rel + length]

    def next(self, cluster: int) -> int:
        if self.kind == "fat32":
            value: int = struct.unpack("<I", self._bytes(cluster * 4, 4))[0]
            return value & 0x0FFFFFFF
        if self.kind == "fat16":
            value = struct.unpack("<H", self._bytes(cluster * 2, 2))[0]
            return value
        value = struct.unpack("<H", self._bytes(cluster * 3 // 2, 2))[0]
        return value >> 4 if cluster & 1 else value & 0xFFF

    def chain(self, first: int) -> Extents:
        """The volume extents of the directory whose chain starts at ``first``."""
        runs: list[tuple[int, int]] = []
        cluster, total = first, 0
        while True:
            if not 2 <= cluster < self.end:
                raise FilesystemError(f"{self.kind}: cluster {cluster} out of range (corrupt)")
            total += self.cluster_bytes
            if total > FAT_MAX_DIRECTORY_SIZE:
                raise FilesystemError(f"{self.kind}: a directory chain too long or looping")
            start = self.data_start + (cluster - 2) * self.cluster_bytes
            if runs and runs[-1][0] + runs[-1][1] == start:
                runs[-1] = (runs[-1][0], runs[-1][1] + self.cluster_bytes)
            else:
                runs.append((start, self.cluster_bytes))
            cluster = self.next(cluster)
            if cluster >= self.last:
                return tuple(runs)


class FatSlots:
    """FAT12/16/32: directories found by their 8.3 entries' offsets, slots read as fatgen103
    lays them out."""

    def __init__(self, fs: FatFilesystem) -> None:
        self.fs = fs
        self.table = FatTable(fs)
        boot = fs.reader.read_at(0, 48)
        self.root_cluster = struct.unpack_from("<I", boot, 44)[0] if fs.kind == "fat32" else 0

    def extents(self, offset: int) -> Extents | None:
        """The directory whose 8.3 entry is at ``offset`` (0: the root); None if that slot
        holds no directory in this state."""
        if offset == 0:
            if self.fs.kind != "fat32":
                return (self.table.root_region,)
            return self.table.chain(self.root_cluster)
        raw = self.fs.reader.read_at(offset, SLOT)
        if len(raw) < SLOT or raw[0] in (FREE, DELETED):
            return None
        entry = parse_short_entry(raw, self.fs.kind)
        if entry.attributes & ATTR_LONG_NAME == ATTR_LONG_NAME:
            return None
        if not entry.attributes & ATTR_DIRECTORY:
            return None
        return self.table.chain(entry.first_cluster)

    @staticmethod
    def entry_at(data: bytes, pos: int, end: int) -> int | None:
        """The position of the in-use 8.3 entry that the slot at ``pos`` is (or is a long
        name of); None for a free slot, a volume label, "." and ".."."""
        q = pos
        for _ in range(MAX_LONG_NAME):
            if q >= end or data[q] == DELETED or data[q + 11] & ATTR_LONG_NAME != ATTR_LONG_NAME:
                break
            q += SLOT  # a long-name entry: its 8.3 entry follows
        if q >= end or data[q] == DELETED:
            return None
        attributes = data[q + 11]
        if attributes & ATTR_LONG_NAME == ATTR_LONG_NAME or attributes & ATTR_VOLUME_ID:
            return None
        return None if data[q : q + 11] in DOTS else q


class ExfatSlots:
    """exFAT: directories found by their File entries' offsets; a slot belongs to the entry
    set of the File entry before it that counts it."""

    def __init__(self, fs: ExfatFilesystem) -> None:
        self.fs = fs

    def node_at(self, offset: int) -> ExfatNode | None:
        """The file or directory whose File entry is at volume ``offset``, if one is."""
        head = self.fs.reader.read_at(offset, ENTRY_SIZE)
        if len(head) < ENTRY_SIZE or head[0] != TYPE_FILE or head[1] < 2:
            return None
        return parse_entry_set(self.fs.reader.read_at(offset, (head[1] + 1) * ENTRY_SIZE), offset)

    def extents(self, offset: int) -> Extents | None:
        node = self.fs._root_node if offset == 0 else self.node_at(offset)
        if node is None or not node.is_dir:
            return None
        _, extents = self.fs._directory_reader(node)
        return tuple((e.physical or 0, e.length) for e in extents)

    @staticmethod
    def entry_at(data: bytes, pos: int, end: int) -> int | None:
        q = pos
        for _ in range(MAX_SET):
            if q < 0:
                return None
            kind = data[q]
            if not kind & SECONDARY:  # a primary entry (or the end): this slot's set, or none
                if kind == TYPE_FILE and q < end and pos <= q + data[q + 1] * SLOT:
                    return q
                return None
            q -= SLOT
        return None


Slots = FatSlots | ExfatSlots


def read_extents(reader: Reader, extents: Extents) -> bytes:
    data = b"".join(reader.read_at(offset, length) for offset, length in extents)
    if len(data) != sum(length for _, length in extents):
        raise FilesystemError("a directory's clusters lie past the end of the volume")
    return data


def in_use_end(data: bytes) -> int:
    """Where the in-use slots end: at the first slot whose first byte is 0x00 (fatgen103
    section 6, exFAT 6.2.1.1: no entry after it is in use)."""
    first = data[::SLOT].find(b"\x00")
    return len(data) if first < 0 else first * SLOT


def touches(extents: Extents, ranges: list[tuple[int, int]], starts: list[int]) -> bool:
    """Whether any byte of ``extents`` lies in ``ranges`` (sorted, disjoint volume ranges
    whose starts are ``starts``)."""
    for offset, length in extents:
        i = bisect.bisect_left(starts, offset + length) - 1  # the last range starting before
        if i >= 0 and ranges[i][0] + ranges[i][1] > offset:
            return True
    return False


def changed_slots(
    new: bytes, old: bytes, entry_at: Callable[[bytes, int, int], int | None]
) -> tuple[set[int], set[int]]:
    """The positions of the in-use entries (in the new state, in the old) that the slots
    differing between two states of one directory (same clusters) belong to."""
    now: set[int] = set()
    before: set[int] = set()
    new_end, old_end = in_use_end(new), in_use_end(old)
    for i in range(0, len(new), PIECE):
        if new[i : i + PIECE] == old[i : i + PIECE]:
            continue
        for pos in range(i, min(i + PIECE, len(new)), SLOT):
            if new[pos : pos + SLOT] != old[pos : pos + SLOT]:
                at = entry_at(new, pos, new_end)
                if at is not None:
                    now.add(at)
                at = entry_at(old, pos, old_end)
                if at is not None:
                    before.add(at)
    return now, before


def volume_offset(extents: Extents, pos: int) -> int:
    """The volume offset of byte ``pos`` of a directory laid out in ``extents``."""
    for offset, length in extents:
        if pos < length:
            return offset + pos
        pos -= length
    raise FilesystemError("a directory entry outside its directory's clusters")

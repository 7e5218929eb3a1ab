"""exFAT, parsed here (boot sector, FAT, directory entry sets); file data read off the volume.

# References: Microsoft "exFAT file system specification" (learn.microsoft.com, 2019):
# Main Boot Sector (3.1), FAT (4.1), cluster heap (5), directory entries (6): File (7.4),
# Stream Extension (7.6), File Name (7.7), Volume Label (7.3), timestamps (7.4.8),
# UTC offsets (7.4.10), entry set checksum (6.3.3).

Why not libfsfat: 20260826 fails to list any directory holding a name longer than its
internal bound (a 255-character name is legal in exFAT), failing the whole listing, and
reports timestamps one month late. The format is small enough to read directly.

What is reported: times with their 10 ms increments, converted to UTC with the entry's UTC
offset when it is marked valid (else taken as UTC, as for FAT); exFAT has no change time
(``ctime`` None); ``btime`` is the creation time; ``inode`` is the byte offset of the File
directory entry in the volume (0 for the root), like libfsfat's FAT identifier. Bytes between
ValidDataLength and DataLength read as zeros, as the specification requires.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from filerestore.blockio import Reader
from filerestore.errors import FilesystemError
from filerestore.fs.base import Filesystem
from filerestore.fs.contents import FileContents
from filerestore.fs.corrupt import parse_errors
from filerestore.fs.entry import Entry, EntryKind, synthetic_mode
from filerestore.fs.libyal import Extent, ExtentReader
from filerestore.fs.limits import EXFAT_MAX_DIRECTORY_SIZE, exfat_max_file_size

OEM_NAME = b"EXFAT   "  # boot sector offset 3
ENTRY_SIZE = 32
FIRST_CLUSTER = 2
FAT_END = 0xFFFFFFFF
FAT_BLOCK = 64 * 1024  # bytes of FAT read and kept at a time
FAT_BLOCKS_KEPT = 64
DIR_READ_PIECE = 64 * 1024  # bytes of a directory read at a time
MAX_CLUSTER_COUNT = (1 << 32) - 11  # spec 3.1.9: ClusterCount is at most 2^32 - 11

# directory entry types (spec 6.2): InUse bit 0x80 set
TYPE_END = 0x00
TYPE_VOLUME_LABEL = 0x83
TYPE_FILE = 0x85
TYPE_STREAM = 0xC0
TYPE_NAME = 0xC1
IN_USE = 0x80
NAME_CHARS_PER_ENTRY = 15

ATTR_READ_ONLY = 0x01
ATTR_DIRECTORY = 0x10
FLAG_NO_FAT_CHAIN = 0x02


@dataclass(frozen=True, slots=True)
class ExfatBootSector:
    bytes_per_sector: int
    cluster_size: int
    fat_offset: int  # bytes
    heap_offset: int  # bytes
    cluster_count: int
    root_cluster: int


def parse_boot_sector(data: bytes, volume_size: int) -> ExfatBootSector:
    if len(data) < 512 or data[3:11] != OEM_NAME:
        raise FilesystemError("exfat: no exFAT boot sector")
    fat_off, _fat_len, heap_off, count, root = struct.unpack_from("<IIIII", data, 80)
    bps_shift, spc_shift, nfats = data[108], data[109], data[110]
    if not 9 <= bps_shift <= 12 or bps_shift + spc_shift > 25 or nfats not in (1, 2):
        raise FilesystemError("exfat: boot sector fields out of range (corrupt)")
    bps = 1 << bps_shift
    boot = ExfatBootSector(bps, bps << spc_shift, fat_off * bps, heap_off * bps, count, root)
    if not FIRST_CLUSTER <= root < count + FIRST_CLUSTER or boot.heap_offset >= volume_size:
        raise FilesystemError("exfat: root directory cluster out of range (corrupt)")
    # spec 3.1.9: the cluster heap fits in the volume (this also bounds every walk and
    # bitmap sized by the cluster count)
    if count > MAX_CLUSTER_COUNT or boot.heap_offset + count * boot.cluster_size > volume_size:
        raise FilesystemError(
            f"exfat: {count} clusters of {boot.cluster_size} bytes do not fit in the volume "
            "(corrupt)"
        )
    return boot


def detect(reader: Reader) -> str | None:
    return "exfat" if reader.read_at(3, 8) == OEM_NAME else None


def open_fs(reader: Reader) -> ExfatFilesystem:
    with parse_errors("exfat", "open the filesystem"):
        return ExfatFilesystem(reader)


def exfat_time_ns(stamp: int, ten_ms: int = 0, utc_offset: int = 0) -> int | None:
    """An exFAT timestamp (7.4.8) plus 10 ms increment, as UTC ns; None if unset/invalid."""
    if stamp == 0:
        return None
    year, month, day = 1980 + (stamp >> 25), (stamp >> 21) & 0xF, (stamp >> 16) & 0x1F
    hour, minute, second = (stamp >> 11) & 0x1F, (stamp >> 5) & 0x3F, (stamp & 0x1F) * 2
    try:
        local = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    seconds = int(local.timestamp())
    if utc_offset & 0x80:  # OffsetValid; a signed 7-bit count of 15 minutes
        quarters = utc_offset & 0x7F
        if quarters >= 0x40:
            quarters -= 0x80
        seconds -= quarters * 15 * 60
    return seconds * 1_000_000_000 + min(ten_ms, 199) * 10_000_000


def entry_set_checksum(entries: bytes) -> int:
    """SetChecksum (6.3.3): over every byte of the set except the checksum field itself."""
    checksum = 0
    # the skipped bytes change nothing, so the loop runs over the others back to back
    for byte in entries[:2] + entries[4:]:
        checksum = (((checksum << 15) | (checksum >> 1)) + byte) & 0xFFFF
    return checksum


@dataclass(frozen=True, slots=True)
class ExfatNode:
    """A file or directory: its File + Stream Extension entries, decoded."""

    offset: int  # of the File entry in the volume; 0 for the root
    name: str
    attributes: int
    created_ns: int | None
    modified_ns: int | None
    accessed_ns: int | None
    first_cluster: int
    valid_length: int
    data_length: int | None  # None: the root, whose length is its FAT chain's
    contiguous: bool

    @property
    def is_dir(self) -> bool:
        return bool(self.attributes & ATTR_DIRECTORY)


def parse_entry_set(raw: bytes, offset: int) -> ExfatNode:
    """A File directory entry set (File, Stream Extension, File Name entries)."""
    if entry_set_checksum(raw) != struct.unpack_from("<H", raw, 2)[0]:
        raise FilesystemError(f"exfat: entry set checksum mismatch at offset {offset} (corrupt)")
    attributes, created, modified, accessed = struct.unpack_from("<H2xIII", raw, 4)
    c10, m10, c_utc, m_utc, a_utc = raw[20:25]
    stream = raw[ENTRY_SIZE : 2 * ENTRY_SIZE]
    if stream[0] != TYPE_STREAM:
        raise FilesystemError(f"exfat: file entry at {offset} has no stream extension")
    flags, name_length = stream[1], stream[3]
    valid, first, length = struct.unpack_from("<Q4xIQ", stream, 8)
    chars = bytearray()
    for pos in range(2 * ENTRY_SIZE, len(raw), ENTRY_SIZE):
        if raw[pos] == TYPE_NAME:
            chars += raw[pos + 2 : pos + ENTRY_SIZE]
    if name_length == 0 or len(chars) < 2 * name_length:
        raise FilesystemError(f"exfat: file entry at {offset} has a truncated name")
    return ExfatNode(
        offset=offset,
        name=bytes(chars[: 2 * name_length]).decode("utf-16-le", "replace"),
        attributes=attributes,
        created_ns=exfat_time_ns(created, c10, c_utc),
        modified_ns=exfat_time_ns(modified, m10, m_utc),
        accessed_ns=exfat_time_ns(accessed, 0, a_utc),
        first_cluster=first,
        valid_length=min(valid, length),
        data_length=length,
        contiguous=bool(flags & FLAG_NO_FAT_CHAIN),
    )


class ExfatFilesystem(Filesystem[ExfatNode]):
    kind = "exfat"
    case_insensitive = True  # names compare through the volume's up-case table

    def __init__(self, reader: Reader) -> None:
        super().__init__()
        self.reader = reader
        self.boot = parse_boot_sector(reader.read_at(0, 512), reader.size)
        self._fat_blocks: OrderedDict[int, bytes] = OrderedDict()
        self._root_node = ExfatNode(
            0, "", ATTR_DIRECTORY, None, None, None, self.boot.root_cluster, 0, None, False
        )
        self.label = self._read_label()

    # --- clusters ------------------------------------------------------------------------

    def _fat_entry(self, cluster: int) -> int:
        pos = cluster * 4
        block_no = pos // FAT_BLOCK
        block = self._fat_blocks.get(block_no)
        if block is None:
            block = self.reader.read_at(self.boot.fat_offset + block_no * FAT_BLOCK, FAT_BLOCK)
            self._fat_blocks[block_no] = block
            if len(self._fat_blocks) > FAT_BLOCKS_KEPT:
                self._fat_blocks.popitem(last=False)
        if pos % FAT_BLOCK + 4 > len(block):
            raise FilesystemError("exfat: the FAT ends past the end of the volume")
        value: int = struct.unpack_from("<I", block, pos % FAT_BLOCK)[0]
        return value

    def _runs(self, node: ExfatNode) -> list[tuple[int, int]]:
        """(first cluster, cluster count) runs holding the node's data, in order."""
        boot = self.boot
        last = boot.cluster_count + FIRST_CLUSTER
        if node.first_cluster == 0:
            return []
        if not FIRST_CLUSTER <= node.first_cluster < last:
            raise FilesystemError(f"exfat: cluster {node.first_cluster} out of range (corrupt)")
        if node.contiguous and node.data_length is not None:
            count = -(-node.data_length // boot.cluster_size)
            if node.first_cluster + count > last:
                raise FilesystemError("exfat: contiguous data runs past the cluster heap")
            return [(node.first_cluster, count)]
        wanted = None if node.data_length is None else -(-node.data_length // boot.cluster_size)
        runs: list[tuple[int, int]] = []
        cluster, total = node.first_cluster, 0
        seen = bytearray((boot.cluster_count + FIRST_CLUSTER + 7) // 8)  # one bit a cluster
        while True:
            if not FIRST_CLUSTER <= cluster < last or seen[cluster >> 3] & (1 << (cluster & 7)):
                raise FilesystemError("exfat: broken or looping cluster chain (corrupt)")
            seen[cluster >> 3] |= 1 << (cluster & 7)
            if runs and runs[-1][0] + runs[-1][1] == cluster:
                runs[-1] = (runs[-1][0], runs[-1][1] + 1)
            else:
                runs.append((cluster, 1))
            total += 1
            if wanted is not None and total >= wanted:
                return runs
            cluster = self._fat_entry(cluster)
            if cluster == FAT_END:
                if wanted is not None:
                    raise FilesystemError("exfat: cluster chain shorter than the file")
                return runs

    def _extents(self, node: ExfatNode, upto: int) -> list[Extent]:
        out: list[Extent] = []
        logical = 0
        for first, count in self._runs(node):
            if logical >= upto:
                break
            length = min(count * self.boot.cluster_size, upto - logical)
            physical = self.boot.heap_offset + (first - FIRST_CLUSTER) * self.boot.cluster_size
            if physical + length > self.reader.size:
                raise FilesystemError("exfat: file data ends past the end of the volume")
            out.append(Extent(logical, physical, length))
            logical += length
        return out

    def _directory_reader(self, node: ExfatNode) -> tuple[ExtentReader[Extent], list[Extent]]:
        size = node.data_length
        if size is None:  # the root: as long as its cluster chain
            size = sum(c for _, c in self._runs(node)) * self.boot.cluster_size
        if size > EXFAT_MAX_DIRECTORY_SIZE:
            raise FilesystemError(
                f"exfat: a directory claims {size} bytes, more than the 256 MiB a directory "
                "can hold (corrupt)"
            )
        extents = self._extents(node, size)
        return ExtentReader(self.reader, extents, size), extents

    # --- directories ---------------------------------------------------------------------

    def _entry_sets(self, node: ExfatNode) -> Iterator[tuple[int, bytes]]:
        """(volume offset of the first entry, raw bytes) of each in-use entry set, read a
        piece of the directory at a time; nothing past the end-of-directory entry."""
        reader, extents = self._directory_reader(node)
        size = reader.size
        window = _Window(reader)
        pos = 0
        while pos + ENTRY_SIZE <= size:
            head = window.get(pos, ENTRY_SIZE)
            etype = head[0]
            if etype == TYPE_END:  # spec 6.2.1.1: no entry after it is in use
                return
            count = head[1] if etype == TYPE_FILE else 0
            end = pos + (count + 1) * ENTRY_SIZE
            if etype & IN_USE and etype in (TYPE_FILE, TYPE_VOLUME_LABEL):
                if end > size or (etype == TYPE_FILE and count < 2):
                    raise FilesystemError("exfat: directory entry set runs past its directory")
                yield _volume_offset(extents, pos), window.get(pos, end - pos)
            pos = max(end, pos + ENTRY_SIZE)

    def _read_label(self) -> str | None:
        with self._lock:
            for _, raw in self._entry_sets(self._root_node):
                if raw[0] == TYPE_VOLUME_LABEL:
                    length = min(raw[1], 11)
                    return raw[2 : 2 + 2 * length].decode("utf-16-le", "replace") or None
        return None

    def _root(self) -> ExfatNode:
        return self._root_node

    def _children(self, node: ExfatNode) -> Iterator[tuple[str, ExfatNode]]:
        out = []
        for offset, raw in self._entry_sets(node):
            if raw[0] == TYPE_FILE:
                child = parse_entry_set(raw, offset)
                if child.name not in (".", "..") and "/" not in child.name:
                    out.append((child.name, child))
        return iter(out)

    def _kind(self, node: ExfatNode) -> EntryKind:
        return EntryKind.DIR if node.is_dir else EntryKind.FILE

    def _key(self, node: ExfatNode) -> Hashable:
        return node.offset

    def _entry(self, name: str, path: str, node: ExfatNode) -> Entry:
        kind = self._kind(node)
        return Entry(
            name=name,
            path=path,
            kind=kind,
            size=0 if node.is_dir else node.data_length or 0,
            mode=synthetic_mode(kind, read_only=bool(node.attributes & ATTR_READ_ONLY)),
            mtime_ns=node.modified_ns,
            atime_ns=node.accessed_ns,
            btime_ns=node.created_ns,
            inode=node.offset,
            nlink=1,
        )

    def _link_target(self, node: ExfatNode) -> str:
        raise FilesystemError("exfat has no symbolic links")

    def _max_file_size(self, node: ExfatNode) -> int:
        return exfat_max_file_size(self.boot.cluster_count, self.boot.cluster_size)

    def _open(self, node: ExfatNode) -> FileContents:
        size = node.data_length or 0
        # past ValidDataLength the file reads as zeros: the extents stop there
        return ExtentReader(self.reader, self._extents(node, node.valid_length), size)


def _volume_offset(extents: list[Extent], logical: int) -> int:
    for ext in extents:
        if ext.logical <= logical < ext.logical + ext.length and ext.physical is not None:
            return ext.physical + logical - ext.logical
    raise FilesystemError("exfat: directory entry outside its directory's clusters")


class _Window:
    """Bytes of a reader fetched a piece at a time: a directory is never read whole."""

    def __init__(self, reader: ExtentReader[Extent]) -> None:
        self._reader = reader
        self._start = 0
        self._data = b""

    def get(self, offset: int, length: int) -> bytes:
        rel = offset - self._start
        if rel < 0 or rel + length > len(self._data):
            self._start = offset
            self._data = self._reader.read_at(offset, max(length, DIR_READ_PIECE))
            rel = 0
        return self._data[rel : rel + length]

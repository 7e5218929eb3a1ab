"""FAT12, FAT16 and FAT32, read through libfsfat (pyfsfat), with times and 8.3 names from disk.

# References: Microsoft "FAT: General Overview of On-Disk Format" (fatgen103, 2000):
# boot sector and BPB (section 3), FAT type by cluster count (section 3.5), directory
# entries and date/time fields (section 6), long names (section 7); the NT case flags
# (byte 12 of an 8.3 entry: 0x08 lower-case base, 0x10 lower-case extension).

libfsfat 20260826 lists directories, long names and cluster chains correctly, but its
timestamps are one month late (a month-numbering slip) and it cannot decode an 8.3 name
holding an OEM code-page byte (mtools writes "café.txt" as the 8.3 entry "CAF\\x90.TXT" with
the lower-case flags and no long name): it returns U+FFFD. libfsfat's file entry identifier
is the byte offset of the entry's 8.3 directory entry in the volume, so both are read from
that entry here.

Assumptions: FAT stores local time with no zone; times are reported as if that local time
were UTC (mtools and Linux write UTC when the host runs in UTC). 8.3 names are decoded with
code page 850 (mtools' default; it agrees with 437 on the accented letters). FAT has no
change time (``ctime`` is None); ``atime`` is a date (midnight). Files are read straight off
the volume through their cluster chains.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pyfsfat

from filerestore.blockio import Reader
from filerestore.errors import FilesystemError
from filerestore.fs.contents import FileContents
from filerestore.fs.corrupt import parse_errors
from filerestore.fs.entry import Entry, EntryKind, synthetic_mode
from filerestore.fs.libyal import LibyalFilesystem, LibyalNode
from filerestore.fs.limits import FAT_MAX_FILE_SIZE

FAT12_MAX_CLUSTERS = 4085  # fatgen103 3.5: fewer clusters than this is FAT12
FAT16_MAX_CLUSTERS = 65525  # ... fewer than this FAT16, else FAT32

ATTR_READ_ONLY = 0x01
ATTR_VOLUME_ID = 0x08
ATTR_DIRECTORY = 0x10
ATTR_LONG_NAME = 0x0F
CASE_LOWER_BASE = 0x08
CASE_LOWER_EXT = 0x10
DIR_ENTRY_SIZE = 32
OEM_CODEPAGE = "cp850"
_SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, slots=True)
class BiosParameterBlock:
    bytes_per_sector: int
    sectors_per_cluster: int
    reserved_sectors: int
    num_fats: int
    root_entries: int
    total_sectors: int
    fat_size: int  # sectors per FAT

    @property
    def cluster_count(self) -> int:
        """CountofClusters (fatgen103 3.5)."""
        root_dir_sectors = (
            self.root_entries * 32 + self.bytes_per_sector - 1
        ) // self.bytes_per_sector
        meta = self.reserved_sectors + self.num_fats * self.fat_size + root_dir_sectors
        return max(0, self.total_sectors - meta) // self.sectors_per_cluster

    @property
    def fat_type(self) -> str:
        count = self.cluster_count
        if count < FAT12_MAX_CLUSTERS:
            return "fat12"
        if count < FAT16_MAX_CLUSTERS:
            return "fat16"
        return "fat32"


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def parse_bpb(boot: bytes) -> BiosParameterBlock | None:
    """The BPB of a FAT boot sector, or None unless every field fatgen103 fixes is valid."""
    if len(boot) < 40:
        return None
    bps, spc, reserved, fats, root, tot16, _media, fatsz16 = struct.unpack_from(
        "<HBHBHHBH", boot, 11
    )
    tot32, fatsz32 = struct.unpack_from("<II", boot, 32)
    total = tot16 or tot32
    fat_size = fatsz16 or fatsz32
    if not (_power_of_two(bps) and 512 <= bps <= 4096 and _power_of_two(spc) and spc <= 128):
        return None
    if reserved == 0 or fats not in (1, 2) or total == 0 or fat_size == 0:
        return None
    bpb = BiosParameterBlock(bps, spc, reserved, fats, root, total, fat_size)
    return bpb if bpb.cluster_count > 0 else None


def detect(reader: Reader) -> str | None:
    bpb = parse_bpb(reader.read_at(0, 512))
    return None if bpb is None else bpb.fat_type


def open_fs(reader: Reader) -> FatFilesystem:
    with parse_errors("fat", "open the filesystem"):
        bpb = parse_bpb(reader.read_at(0, 512))
        if bpb is None:
            raise FilesystemError("not a FAT volume: the boot sector's BPB is invalid")
        return FatFilesystem(reader, bpb)


def dos_datetime_ns(date: int, time: int = 0, centiseconds: int = 0) -> int | None:
    """A FAT date and time (local, taken as UTC) as ns since the epoch; None if unset/invalid."""
    if date == 0:
        return None
    year, month, day = 1980 + (date >> 9), (date >> 5) & 0xF, date & 0x1F
    hour, minute, second = time >> 11, (time >> 5) & 0x3F, (time & 0x1F) * 2
    try:
        stamp = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    whole = int(stamp.timestamp())
    return whole * 1_000_000_000 + min(centiseconds, 199) * 10_000_000


@dataclass(frozen=True, slots=True)
class ShortEntry:
    """An 8.3 directory entry (fatgen103 section 6)."""

    name: bytes  # 11 bytes, space padded
    attributes: int
    case_flags: int
    first_cluster: int
    created_ns: int | None
    accessed_ns: int | None
    modified_ns: int | None

    def decoded_name(self) -> str:
        base = self.name[:8].rstrip(b" ")
        ext = self.name[8:].rstrip(b" ")
        if base[:1] == b"\x05":  # 0xE5 as a first byte is stored as 0x05
            base = b"\xe5" + base[1:]
        b, e = base.decode(OEM_CODEPAGE), ext.decode(OEM_CODEPAGE)
        if self.case_flags & CASE_LOWER_BASE:
            b = b.lower()
        if self.case_flags & CASE_LOWER_EXT:
            e = e.lower()
        return f"{b}.{e}" if e else b


def parse_short_entry(data: bytes, fat_type: str = "fat32") -> ShortEntry:
    """An 8.3 entry; the high cluster word only counts on FAT32 (FAT12/16 keep EA data there)."""
    (attributes, case_flags, ctenth, ctime, cdate, adate, hi, mtime, mdate, lo) = (
        struct.unpack_from("<BBBHHHHHHH", data, 11)
    )
    return ShortEntry(
        name=data[:11],
        attributes=attributes,
        case_flags=case_flags,
        first_cluster=(hi << 16 if fat_type == "fat32" else 0) | lo,
        created_ns=dos_datetime_ns(cdate, ctime, ctenth),
        accessed_ns=dos_datetime_ns(adate),
        modified_ns=dos_datetime_ns(mdate, mtime),
    )


class FatFilesystem(LibyalFilesystem):
    library = pyfsfat
    case_insensitive = True  # as Windows and Linux's vfat (without the check=s option) see it

    def __init__(self, reader: Reader, bpb: BiosParameterBlock) -> None:
        self.kind = bpb.fat_type
        self.bpb = bpb
        super().__init__(reader)

    def _short_entry(self, node: LibyalNode) -> ShortEntry | None:
        """The node's 8.3 directory entry, read at the offset libfsfat gives as identifier."""
        offset = int(node.get_identifier())
        if offset == 0:
            return None  # the root directory has no entry
        data = self.reader.read_at(offset, DIR_ENTRY_SIZE)
        entry = parse_short_entry(data, self.kind) if len(data) == DIR_ENTRY_SIZE else None
        flags = int(node.get_file_attribute_flags())
        if (
            entry is None
            or entry.attributes & ATTR_LONG_NAME == ATTR_LONG_NAME
            or (entry.attributes ^ flags) & ATTR_DIRECTORY
        ):
            raise FilesystemError(f"{self.kind}: no directory entry at offset {offset}")
        return entry

    def _child_name(self, parent: LibyalNode, child: LibyalNode) -> str | None:
        if int(child.get_file_attribute_flags()) & ATTR_VOLUME_ID:
            return None
        name = child.get_name()
        if name is None or "\ufffd" in name:
            entry = self._short_entry(child)
            return None if entry is None else entry.decoded_name()
        return str(name)

    def _check_cluster(self, node: LibyalNode, needed: bool) -> None:
        """libfsfat reads a directory or file whose first cluster is out of range as empty."""
        entry = self._short_entry(node)
        if entry is None:
            return
        first = entry.first_cluster
        if (needed or first) and not 2 <= first < self.bpb.cluster_count + 2:
            raise FilesystemError(f"{self.kind}: first cluster {first} out of range (corrupt)")

    def _children(self, node: LibyalNode) -> Iterator[tuple[str, LibyalNode]]:
        with self._library_errors("read a directory entry"):
            self._check_cluster(node, needed=True)
        return super()._children(node)

    def _max_file_size(self, node: LibyalNode) -> int:
        # the 32-bit DIR_FileSize, and no more than the data region holds
        data_region = (
            self.bpb.cluster_count * self.bpb.sectors_per_cluster * self.bpb.bytes_per_sector
        )
        return min(FAT_MAX_FILE_SIZE, data_region)

    def _open(self, node: LibyalNode) -> FileContents:
        with self._library_errors("read a directory entry"):
            self._check_cluster(node, needed=int(node.get_size()) > 0)
        return super()._open(node)

    def _kind(self, node: LibyalNode) -> EntryKind:
        with self._library_errors("read a directory entry"):
            flags = node.get_file_attribute_flags()
        if flags is None or flags & ATTR_DIRECTORY:  # the root has no attributes
            return EntryKind.DIR
        return EntryKind.FILE

    def _key(self, node: LibyalNode) -> Hashable:
        with self._library_errors("read a directory entry"):
            return int(node.get_identifier())

    def _entry(self, name: str, path: str, node: LibyalNode) -> Entry:
        kind = self._kind(node)
        with self._library_errors(f"read the metadata of {path}"):
            short = self._short_entry(node)
            size = int(node.get_size()) if kind is EntryKind.FILE else 0
            ident = int(node.get_identifier())
        read_only = short is not None and bool(short.attributes & ATTR_READ_ONLY)
        return Entry(
            name=name,
            path=path,
            kind=kind,
            size=size,
            mode=synthetic_mode(kind, read_only=read_only),
            mtime_ns=short.modified_ns if short else None,
            atime_ns=short.accessed_ns if short else None,
            ctime_ns=None,
            btime_ns=short.created_ns if short else None,
            inode=ident,
            nlink=1,
        )

    def _link_target(self, node: LibyalNode) -> str:
        raise FilesystemError(f"{self.kind} has no symbolic links")

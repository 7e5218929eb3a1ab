"""GUID Partition Table: header, entries, and the backup copy at the end of the disk.

# References: UEFI Specification 2.10, section 5.3 "GUID Partition Table (GPT) Disk Layout";
# Linux block/partitions/efi.c (the checks the kernel applies before trusting a header).
"""

from __future__ import annotations

import struct
import uuid
import zlib
from itertools import pairwise
from typing import NamedTuple

from filerestore.blockio import Reader
from filerestore.errors import PartitionTableError

SIGNATURE = b"EFI PART"
# Logical sector sizes tried, in order: 512 is nearly universal, 4096 is the "4Kn" disk.
SECTOR_SIZES = (512, 4096)
# The UEFI spec fixes 92 bytes; a larger header must still fit in its sector.
MIN_HEADER_SIZE = 92
# The spec requires at least 16 KiB of entries; real tables hold 128 x 128 bytes. Anything far
# larger is hostile: refuse it before reading rather than allocate what a header asks for.
MAX_ENTRY_ARRAY_BYTES = 1 << 20
ENTRY_MIN_SIZE = 128

# signature, revision, header_size, header_crc32, reserved, my_lba, alternate_lba,
# first_usable_lba, last_usable_lba, disk_guid, partition_entry_lba, num_entries,
# entry_size, entries_crc32
_HEADER = struct.Struct("<8sIIII QQQQ 16s QIII")
# type_guid, unique_guid, first_lba, last_lba, attributes, name (UTF-16LE, 36 units)
_ENTRY = struct.Struct("<16s16sQQQ72s")
_UNUSED_TYPE = bytes(16)


# NamedTuples, not frozen dataclasses: creating a dataclass compiles its methods,
# which every CLI start-up would pay for (issue 14)
class GptHeader(NamedTuple):
    """A verified GPT header: its disk GUID, usable range and where its entry array lies."""

    sector_size: int
    my_lba: int
    alternate_lba: int
    first_usable_lba: int
    last_usable_lba: int
    disk_guid: str
    partition_entry_lba: int
    num_entries: int
    entry_size: int
    entries_crc32: int


class GptPartition(NamedTuple):
    """One used slot of the partition entry array."""

    number: int  # 1-based slot in the entry array, as Linux numbers GPT partitions
    type_guid: str
    unique_guid: str
    first_lba: int
    last_lba: int  # inclusive
    attributes: int
    name: str


class GptTable(NamedTuple):
    """A verified GPT: the header read and its used partitions, in slot order."""

    header: GptHeader
    partitions: tuple[GptPartition, ...]
    used_backup: bool  # the primary header was unusable and the backup was read


def guid_from_bytes(raw: bytes) -> str:
    """A GUID as text: GPT stores the first three fields little-endian."""
    return str(uuid.UUID(bytes_le=raw))


def parse_header(sector: bytes, sector_size: int) -> GptHeader:
    """Parse and verify one header sector; PartitionTableError says what is wrong."""
    if len(sector) < _HEADER.size or sector[:8] != SIGNATURE:
        raise PartitionTableError("no GPT signature")
    (
        _sig,
        _rev,
        header_size,
        header_crc,
        _res,
        my_lba,
        alt_lba,
        first_usable,
        last_usable,
        disk_guid,
        entry_lba,
        num_entries,
        entry_size,
        entries_crc,
    ) = _HEADER.unpack_from(sector)
    if not MIN_HEADER_SIZE <= header_size <= sector_size:
        raise PartitionTableError(f"GPT header size {header_size} is out of range")
    covered = bytearray(sector[:header_size])
    covered[16:20] = bytes(4)  # the CRC is computed with its own field zeroed
    if zlib.crc32(covered) != header_crc:
        raise PartitionTableError("GPT header CRC32 mismatch")
    if entry_size < ENTRY_MIN_SIZE or entry_size % 8:
        raise PartitionTableError(f"GPT entry size {entry_size} is invalid")
    if num_entries * entry_size > MAX_ENTRY_ARRAY_BYTES:
        raise PartitionTableError(
            f"GPT claims {num_entries} entries of {entry_size} bytes, more than the "
            f"{MAX_ENTRY_ARRAY_BYTES}-byte limit"
        )
    if first_usable > last_usable:
        raise PartitionTableError("GPT first usable LBA is after the last usable LBA")
    return GptHeader(
        sector_size,
        my_lba,
        alt_lba,
        first_usable,
        last_usable,
        guid_from_bytes(disk_guid),
        entry_lba,
        num_entries,
        entry_size,
        entries_crc,
    )


def parse_entries(array: bytes, header: GptHeader, disk_sectors: int) -> tuple[GptPartition, ...]:
    """Parse the entry array of a verified header; refuse entries outside the disk."""
    if zlib.crc32(array) != header.entries_crc32:
        raise PartitionTableError("GPT partition entry array CRC32 mismatch")
    parts = []
    for index in range(header.num_entries):
        raw = array[index * header.entry_size : index * header.entry_size + _ENTRY.size]
        type_guid, unique, first, last, attrs, name = _ENTRY.unpack(raw)
        if type_guid == _UNUSED_TYPE:
            continue
        number = index + 1
        if first > last:
            raise PartitionTableError(f"GPT partition {number} ends before it starts")
        if last >= disk_sectors:
            raise PartitionTableError(
                f"GPT partition {number} ends at sector {last}, past the end of the disk "
                f"({disk_sectors} sectors)"
            )
        parts.append(
            GptPartition(
                number,
                guid_from_bytes(type_guid),
                guid_from_bytes(unique),
                first,
                last,
                attrs,
                name.decode("utf-16-le", "replace").split("\x00", 1)[0],
            )
        )
    _refuse_overlaps(parts)
    return tuple(parts)


def _refuse_overlaps(parts: list[GptPartition]) -> None:
    ordered = sorted(parts, key=lambda p: p.first_lba)
    for a, b in pairwise(ordered):
        if b.first_lba <= a.last_lba:
            raise PartitionTableError(f"GPT partitions {a.number} and {b.number} overlap")


def detect(disk: Reader) -> bool:
    """Is there a GPT header (primary at LBA 1, or backup at the last LBA) for any sector size?"""
    for ss in SECTOR_SIZES:
        if disk.read_at(ss, 8) == SIGNATURE:
            return True
        if disk.size >= 2 * ss and disk.read_at((disk.size // ss - 1) * ss, 8) == SIGNATURE:
            return True
    return False


def _read_copy(disk: Reader, lba: int, ss: int, disk_sectors: int) -> GptTable:
    header = parse_header(disk.read_at(lba * ss, ss), ss)
    if header.my_lba != lba:
        raise PartitionTableError(f"GPT header at LBA {lba} says it is at LBA {header.my_lba}")
    if header.last_usable_lba >= disk_sectors:
        raise PartitionTableError("GPT usable area ends past the end of the disk")
    array_len = header.num_entries * header.entry_size
    array_end = header.partition_entry_lba * ss + array_len
    if header.partition_entry_lba < 1 or array_end > disk_sectors * ss:
        raise PartitionTableError("GPT partition entry array lies outside the disk")
    array = disk.read_at(header.partition_entry_lba * ss, array_len)
    return GptTable(header, parse_entries(array, header, disk_sectors), used_backup=lba != 1)


def read_gpt(disk: Reader) -> GptTable:
    """The partition table: the primary copy, or the backup copy if the primary is corrupt."""
    reasons: list[str] = []
    for ss in SECTOR_SIZES:
        disk_sectors = disk.size // ss
        if disk_sectors < 3:
            continue
        for lba in (1, disk_sectors - 1):
            if disk.read_at(lba * ss, 8) != SIGNATURE:
                continue
            try:
                return _read_copy(disk, lba, ss, disk_sectors)
            except PartitionTableError as exc:
                which = "primary" if lba == 1 else "backup"
                reasons.append(f"{which} header ({ss}-byte sectors): {exc}")
    raise PartitionTableError(
        "no valid GPT: " + ("; ".join(reasons) if reasons else "no GPT header found")
    )

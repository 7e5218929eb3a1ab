"""VHDX headers, region table, metadata items and parent locator: layouts and parsing (pure).

# References: [MS-VHDX] v20160714 sections 2.2 (File Type Identifier, Headers: sequence
# number and CRC-32C choose the current one), 2.2.3 (Region Table), 2.6 (Metadata Region:
# File Parameters, Virtual Disk Size, Logical and Physical Sector Size, Parent Locator)
# and their stated limits; QEMU block/vhdx.h and block/vhdx.c (vhdx_parse_header,
# vhdx_open_region_tables, vhdx_parse_metadata) for what qemu-img writes.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

import google_crc32c

from filerestore.errors import CorruptImageError, UnsupportedImageError

KiB, MiB = 1 << 10, 1 << 20
SIGNATURE = b"vhdxfile"
HEADER_OFFSETS = (64 * KiB, 128 * KiB)
REGION_TABLE_OFFSETS = (192 * KiB, 256 * KiB)
HEADER_SIZE = 4 * KiB
REGION_TABLE_SIZE = 64 * KiB
MAX_TABLE_ENTRIES = 2047  # region and metadata tables ([MS-VHDX] 2.2.3, 2.6.1)
MIN_BLOCK, MAX_BLOCK = 1 * MiB, 256 * MiB  # [MS-VHDX] 2.6.2.1
MAX_DISK = 64 * (1 << 40)  # [MS-VHDX] 2.6.2.2: 64 TB
SECTOR_SIZES = (512, 4096)
MAX_LOCATOR_ENTRIES = 256  # five keys are defined; more is not a locator Windows wrote

BAT_REGION = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08").bytes_le
METADATA_REGION = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le
VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le
VIRTUAL_DISK_ID = uuid.UUID("BECA12AB-B2E6-4523-93EF-C309E000C746").bytes_le
LOGICAL_SECTOR_SIZE = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F").bytes_le
PHYSICAL_SECTOR_SIZE = uuid.UUID("CDA348C7-445D-4471-9CC9-E9885251C556").bytes_le
PAGE_83_DATA = uuid.UUID("BECA12AB-B2E6-4523-93EF-C309E000C746").bytes_le
PARENT_LOCATOR = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C").bytes_le
VHDX_PARENT_TYPE = uuid.UUID("B04AEFB7-D19E-4A81-B789-25B8E9445913").bytes_le
KNOWN_METADATA = {
    FILE_PARAMETERS,
    VIRTUAL_DISK_SIZE,
    VIRTUAL_DISK_ID,
    LOGICAL_SECTOR_SIZE,
    PHYSICAL_SECTOR_SIZE,
    PARENT_LOCATOR,
}
PARAM_LEAVE_BLOCKS_ALLOCATED, PARAM_HAS_PARENT = 1 << 0, 1 << 1
META_IS_REQUIRED = 1 << 2

# signature, checksum, sequence number, file write GUID, data write GUID, log GUID,
# log version, version, log length, log offset
_HEADER = struct.Struct("<4sIQ16s16s16sHHIQ")
_REGION_HEADER = struct.Struct("<4sIII")
_REGION_ENTRY = struct.Struct("<16sQII")
_METADATA_HEADER = struct.Struct("<8sHH20s")
_METADATA_ENTRY = struct.Struct("<16sIII4x")


def crc32c_of(data: bytes, at: int) -> int:
    """CRC-32C of ``data`` with its 4-byte checksum field at ``at`` taken as zero."""
    crc = google_crc32c.value(data[:at] + bytes(4))
    return int(google_crc32c.extend(crc, data[at + 4 :]))


@dataclass(frozen=True)
class Header:
    sequence: int
    file_write_guid: bytes
    data_write_guid: bytes
    log_guid: bytes
    log_version: int
    version: int
    log_length: int
    log_offset: int


def parse_header(data: bytes) -> Header | None:
    """A header, or None when its signature or CRC-32C is wrong (the other copy decides)."""
    sig, check, *fields = _HEADER.unpack_from(data)
    if sig != b"head" or crc32c_of(data[:HEADER_SIZE], 4) != check:
        return None
    return Header(*fields)


def current_header(copies: list[bytes]) -> Header:
    """The valid header with the greater sequence number ([MS-VHDX] 2.2.2.1)."""
    valid = [h for h in map(parse_header, copies) if h is not None]
    if not valid:
        raise CorruptImageError("neither VHDX header is valid (signature or CRC-32C)")
    h = max(valid, key=lambda h: h.sequence)
    if h.version != 1:
        raise UnsupportedImageError(f"VHDX version {h.version} (only 1)")
    if h.log_version != 0:
        raise UnsupportedImageError(f"VHDX log version {h.log_version} (only 0)")
    return h


@dataclass(frozen=True)
class Region:
    guid: bytes
    offset: int
    length: int
    required: bool


def parse_region_table(data: bytes) -> dict[bytes, Region] | None:
    sig, check, count, _ = _REGION_HEADER.unpack_from(data)
    if sig != b"regi" or crc32c_of(data[:REGION_TABLE_SIZE], 4) != check:
        return None
    if count > MAX_TABLE_ENTRIES:
        raise CorruptImageError(f"VHDX region table of {count} entries (at most 2047)")
    regions: dict[bytes, Region] = {}
    for i in range(count):
        guid, offset, length, flags = _REGION_ENTRY.unpack_from(data, 16 + 32 * i)
        region = Region(guid, offset, length, bool(flags & 1))
        if guid in regions:
            raise CorruptImageError(f"VHDX region {uuid.UUID(bytes_le=guid)} listed twice")
        if region.required and guid not in (BAT_REGION, METADATA_REGION):
            raise UnsupportedImageError(f"VHDX required region {uuid.UUID(bytes_le=guid)}")
        if offset % MiB or length % MiB or offset < MiB:
            raise CorruptImageError(f"VHDX region at {offset:#x} (+{length}) is not MiB-aligned")
        regions[guid] = region
    for guid, what in ((BAT_REGION, "BAT"), (METADATA_REGION, "metadata")):
        if guid not in regions:
            raise CorruptImageError(f"VHDX region table has no {what} region")
    return regions


@dataclass(frozen=True)
class Metadata:
    block_size: int
    has_parent: bool
    leave_blocks_allocated: bool
    disk_size: int
    logical_sector: int
    physical_sector: int
    locator: dict[str, str] | None


METADATA_TABLE_SIZE = 64 * KiB  # [MS-VHDX] 2.6.1: the table; items start at 64 KB or later
MAX_ITEM = 1 * MiB  # [MS-VHDX] 2.6.1.2: an item's Length MUST be at most 1 MB
# the items this reader uses, with the bytes each must hold ([MS-VHDX] 2.6.2)
ITEM_SIZES = {
    FILE_PARAMETERS: 8,
    VIRTUAL_DISK_SIZE: 8,
    LOGICAL_SECTOR_SIZE: 4,
    PHYSICAL_SECTOR_SIZE: 4,
    PARENT_LOCATOR: 20,
}


def metadata_items(table: bytes, region_length: int) -> dict[bytes, tuple[int, int]]:
    """(offset in the region, length) of each item this reader uses, from the metadata table;
    an unknown item marked required is refused by its GUID."""
    sig, _, count, _ = _METADATA_HEADER.unpack_from(table)
    if sig != b"metadata":
        raise CorruptImageError("VHDX metadata table has a bad signature")
    if count > MAX_TABLE_ENTRIES:
        raise CorruptImageError(f"VHDX metadata table of {count} entries (at most 2047)")
    items: dict[bytes, tuple[int, int]] = {}
    for i in range(count):
        guid, offset, length, flags = _METADATA_ENTRY.unpack_from(table, 32 + 32 * i)
        name = uuid.UUID(bytes_le=guid)
        if guid not in KNOWN_METADATA:
            if flags & META_IS_REQUIRED:
                raise UnsupportedImageError(f"VHDX required metadata item {name}")
            continue
        if length > MAX_ITEM:
            raise CorruptImageError(f"VHDX metadata item {name} of {length} bytes (1 MB at most)")
        if offset < METADATA_TABLE_SIZE or offset + length > region_length:
            raise CorruptImageError(f"VHDX metadata item {name} lies outside its region")
        if guid in ITEM_SIZES and length < ITEM_SIZES[guid]:
            raise CorruptImageError(f"VHDX metadata item {name} of {length} bytes is too short")
        items.setdefault(guid, (offset, length))
    return items


def parse_metadata(items: dict[bytes, bytes]) -> Metadata:
    """The items this reader uses (read by metadata_items' offsets), all checked."""
    for guid, what in (
        (FILE_PARAMETERS, "file parameters"),
        (VIRTUAL_DISK_SIZE, "disk size"),
        (LOGICAL_SECTOR_SIZE, "logical sector size"),
    ):
        if guid not in items:
            raise CorruptImageError(f"VHDX metadata has no {what}")
    block, flags = struct.unpack_from("<II", items[FILE_PARAMETERS])
    (size,) = struct.unpack_from("<Q", items[VIRTUAL_DISK_SIZE])
    (logical,) = struct.unpack_from("<I", items[LOGICAL_SECTOR_SIZE])
    physical = struct.unpack_from("<I", items.get(PHYSICAL_SECTOR_SIZE, b"\0\x02\0\0"))[0]
    if block < MIN_BLOCK or block > MAX_BLOCK or block & (block - 1):
        raise CorruptImageError(f"VHDX block size {block} is not a power of two, 1-256 MiB")
    if logical not in SECTOR_SIZES or physical not in SECTOR_SIZES:
        raise CorruptImageError(f"VHDX sector sizes {logical}/{physical} (512 or 4096 only)")
    if size == 0 or size % logical or size > MAX_DISK:
        raise CorruptImageError(f"VHDX virtual disk size {size} is invalid (64 TB at most)")
    has_parent = bool(flags & PARAM_HAS_PARENT)
    locator = None
    if has_parent:
        if PARENT_LOCATOR not in items:
            raise CorruptImageError("differencing VHDX has no parent locator")
        locator = parse_locator(items[PARENT_LOCATOR])
    return Metadata(
        block,
        has_parent,
        bool(flags & PARAM_LEAVE_BLOCKS_ALLOCATED),
        size,
        logical,
        physical,
        locator,
    )


def parse_locator(item: bytes) -> dict[str, str]:
    """The key-value pairs of a VHDX parent locator ([MS-VHDX] 2.6.2.6), UTF-16LE."""
    if len(item) < 20:
        raise CorruptImageError("VHDX parent locator is truncated")
    kind, _, count = struct.unpack_from("<16sHH", item)
    if kind != VHDX_PARENT_TYPE:
        raise UnsupportedImageError(f"VHDX parent locator type {uuid.UUID(bytes_le=kind)}")
    if count > MAX_LOCATOR_ENTRIES or 20 + 12 * count > len(item):
        raise CorruptImageError(f"VHDX parent locator of {count} entries does not fit")
    out: dict[str, str] = {}
    for i in range(count):
        ko, vo, kl, vl = struct.unpack_from("<IIHH", item, 20 + 12 * i)
        if ko + kl > len(item) or vo + vl > len(item):
            raise CorruptImageError("VHDX parent locator entry points outside the locator")
        key = item[ko : ko + kl].decode("utf-16-le", "replace")
        out.setdefault(key, item[vo : vo + vl].decode("utf-16-le", "replace"))
    return out

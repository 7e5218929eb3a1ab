"""The VHDX reader: fixed, dynamic and differencing disks through the BAT.

# References: [MS-VHDX] v20160714 sections 2.3 (Log: entry header, "loge", CRC-32C), 2.5
# (BAT: payload and sector bitmap entries, chunk ratio, block states), 2.6.2.6 (parent
# locator keys); QEMU block/vhdx.c (vhdx_co_readv, vhdx_block_translate) and
# block/vhdx-log.c (vhdx_parse_log: a read-only open refuses a log that needs replay).

The log: a VHDX whose header names a log GUID may hold metadata updates that were never
written to their place (an unclean shutdown of Hyper-V or WSL). Like QEMU on a read-only
open, this reader refuses such an image by name rather than replaying the log: a valid
entry header carrying the header's log GUID anywhere in the log means "pending". A log GUID
with no matching valid entry (the log was flushed) reads normally.

Block states read: not present (the parent, or zeros without one), zero, undefined and
unmapped (zeros, as QEMU reads them), fully present (the file), partially present (sector
by sector, by the chunk's sector bitmap: set bits are in this file, clear ones in the parent;
bit n of the bitmap is sector n, least significant bit first). The parent is found by the
locator's ``relative_path`` only (``volume_path`` and ``absolute_win32_path`` name places
on another machine); its data write GUID must equal the child's ``parent_linkage``.
"""

from __future__ import annotations

import struct
import uuid
from array import array
from typing import cast

import google_crc32c

from filerestore.errors import (
    BackingFileRefusedError,
    CorruptImageError,
    UnsupportedImageError,
)
from filerestore.image.file_errors import OPEN_ERRORS, naming_file
from filerestore.image.format_link import FormatLink
from filerestore.image.mapped import (
    DATA,
    PIECE,
    UNALLOCATED,
    ZERO,
    Layer,
    MappedLayer,
    Run,
    Table,
    add_run,
    bitmap_span,
    cache_key,
)
from filerestore.image.metadata import MetadataCache
from filerestore.image.names import windows_name
from filerestore.image.vhdx_headers import (
    BAT_REGION,
    HEADER_OFFSETS,
    HEADER_SIZE,
    METADATA_REGION,
    METADATA_TABLE_SIZE,
    REGION_TABLE_OFFSETS,
    REGION_TABLE_SIZE,
    SIGNATURE,
    Header,
    Metadata,
    MiB,
    current_header,
    metadata_items,
    parse_metadata,
    parse_region_table,
)
from filerestore.source import SourceFile, Store

NOT_PRESENT, UNDEFINED, ZERO_STATE, UNMAPPED = 0, 1, 2, 3
UNMAPPED_V095 = 5  # QEMU accepts the pre-release value too
FULLY_PRESENT, PARTIALLY_PRESENT = 6, 7
SB_PRESENT = 6
_ENTRY_HEADER = struct.Struct("<4sIIIQII16sQQ")
LOG_SECTOR = 4096
SECTOR_BITMAP_BITS = 1 << 23  # sectors one 1 MiB sector bitmap block describes


def is_vhdx(head: bytes) -> bool:
    return head[:8] == SIGNATURE


class VhdxLayer(MappedLayer):
    def __init__(
        self,
        name: str,
        file: SourceFile,
        meta: Metadata,
        bat: tuple[int, int],
        cache: MetadataCache,
        backing: Layer | None,
    ) -> None:
        self.name, self.file, self.backing = name, file, backing
        self._size = meta.disk_size
        self.block = meta.block_size
        self.sector = meta.logical_sector
        self.chunk_ratio = SECTOR_BITMAP_BITS * meta.logical_sector // meta.block_size
        self.has_parent = meta.has_parent
        self.bat = Table(file, bat[0], bat[1], "<Q", "BAT", cache)
        self._cache = cache
        self._bitmap_key = cache_key()

    def _runs(self, offset: int, end: int) -> list[Run]:
        runs: list[Run] = []
        block, ratio = self.block, self.chunk_ratio
        pos = offset
        while pos < end:
            index, into = divmod(pos, block)
            n = min(block - into, end - pos)
            entry = self.bat[index + index // ratio]
            state, host = entry & 7, entry >> 20 << 20
            if state == FULLY_PRESENT:
                add_run(runs, DATA, pos, n, self.file, host + into)
            elif state == NOT_PRESENT:
                add_run(runs, UNALLOCATED if self.has_parent else ZERO, pos, n, None, 0)
            elif state in (ZERO_STATE, UNDEFINED, UNMAPPED, UNMAPPED_V095):
                add_run(runs, ZERO, pos, n, None, 0)
            elif state == PARTIALLY_PRESENT and self.has_parent:
                self._partial(runs, index, pos, into, n, host)
            else:
                raise CorruptImageError(f"VHDX BAT entry {index} has invalid state {state}")
            pos += n
        return runs

    def _partial(self, runs: list[Run], index: int, pos: int, into: int, n: int, host: int) -> None:
        chunk = index // self.chunk_ratio
        sb = self.bat[chunk * (self.chunk_ratio + 1) + self.chunk_ratio]
        if sb & 7 != SB_PRESENT:
            raise CorruptImageError(f"VHDX block {index} is partially present without a bitmap")
        sb_offset = sb >> 20 << 20
        sector = self.sector
        block_bit = (index % self.chunk_ratio) * (self.block // sector)  # its first sector
        at, end = into, into + n
        while at < end:
            bit = block_bit + at // sector
            piece = self._bitmap_piece(sb_offset, bit >> 15)  # 4 KiB pieces: 2^15 bits
            b = bit & 0x7FFF
            span, present = bitmap_span(piece[b >> 3], b & 7, at, sector, False)
            m = min(span, end - at)
            kind = DATA if present else UNALLOCATED
            add_run(runs, kind, pos + at - into, m, self.file if present else None, host + at)
            at += m

    def _bitmap_piece(self, sb_offset: int, p: int) -> array[int]:
        key = (self._bitmap_key, sb_offset + p)
        piece = cast("array[int] | None", self._cache.get(key))
        if piece is None:
            piece = array("B", self.file.pread(sb_offset + p * 4096, 4096, "sector bitmap"))
            self._cache.put(key, piece, 4096)
        return piece


def open_vhdx(store: Store, file: SourceFile, head: bytes) -> FormatLink:
    del store  # a VHDX is one file; its parent is opened by the chain walker
    with naming_file(file.name, *OPEN_ERRORS):
        return _open(file)


def _open(file: SourceFile) -> FormatLink:
    if file.size < 320 * 1024:
        raise CorruptImageError(f"VHDX of {file.size} bytes is shorter than its headers")
    header = current_header([file.pread(o, HEADER_SIZE, "header") for o in HEADER_OFFSETS])
    regions = None
    for offset in REGION_TABLE_OFFSETS:
        regions = parse_region_table(file.pread(offset, REGION_TABLE_SIZE, "region table"))
        if regions is not None:
            break
    if regions is None:
        raise CorruptImageError("neither VHDX region table is valid (signature or CRC-32C)")
    for region in regions.values():
        if region.offset + region.length > file.size:
            raise CorruptImageError(
                f"VHDX region at {region.offset:#x} (+{region.length}) ends past the end of the "
                f"file ({file.size} bytes)"
            )
    _check_log(file, header)
    region = regions[METADATA_REGION]
    if region.length < METADATA_TABLE_SIZE:
        raise CorruptImageError(f"VHDX metadata region of {region.length} bytes has no table")
    table = file.pread(region.offset, METADATA_TABLE_SIZE, "metadata table")
    located = metadata_items(table, region.length)
    meta = parse_metadata(
        {
            guid: file.pread(region.offset + offset, length, "metadata item")
            for guid, (offset, length) in located.items()
        }
    )
    payload = -(-meta.disk_size // meta.block_size)
    ratio = (1 << 23) * meta.logical_sector // meta.block_size
    if meta.has_parent:
        entries = -(-payload // ratio) * (ratio + 1)
    else:
        entries = payload + (payload - 1) // ratio
    bat = regions[BAT_REGION]
    if entries * 8 > bat.length:
        raise CorruptImageError(
            f"VHDX BAT region of {bat.length} bytes is too small for {entries} entries"
        )
    parent: tuple[str, str] | None = None
    if meta.has_parent:
        parent = _parent(file, meta.locator or {})
    subformat = (
        "differencing"
        if meta.has_parent
        else ("fixed" if meta.leave_blocks_allocated else "dynamic")
    )

    def build(backing: Layer | None, cache: MetadataCache) -> Layer:
        return VhdxLayer(file.name, file, meta, (bat.offset, entries), cache, backing)

    return FormatLink(
        format="vhdx",
        subformat=subformat,
        virtual_size=meta.disk_size,
        build=build,
        cluster_size=meta.block_size,
        backing_name=None if parent is None else parent[0],
        backing_format=None if parent is None else "vhdx",
        identity=str(uuid.UUID(bytes_le=header.data_write_guid)),
        parent_identity=None if parent is None else parent[1],
        working_set=PIECE + (PIECE if meta.has_parent else 0),  # a BAT and a bitmap piece
    )


def _parent(file: SourceFile, locator: dict[str, str]) -> tuple[str, str]:
    linkage = locator.get("parent_linkage", "")
    try:
        identity = str(uuid.UUID(linkage.strip("{}")))
    except ValueError:
        raise CorruptImageError(f"VHDX parent_linkage {linkage!r} is not a GUID") from None
    relative = locator.get("relative_path")
    if relative is None:
        others = ", ".join(f"{k}={v!r}" for k, v in locator.items() if k.endswith("path"))
        raise BackingFileRefusedError(
            f"differencing VHDX has no relative_path parent locator (found: {others or 'none'})"
        )
    return windows_name(relative, "parent locator relative_path", file.name), identity


def _check_log(file: SourceFile, header: Header) -> None:
    if header.log_guid == bytes(16) or header.log_length == 0:
        return
    start, length = header.log_offset, header.log_length
    if start % MiB or length % MiB or start + length > file.size:
        raise CorruptImageError(f"VHDX log at {start:#x} (+{length}) is not inside the file")
    for chunk_start in range(0, length, MiB):
        chunk = file.pread(start + chunk_start, min(MiB, length - chunk_start), "log")
        for at in range(0, len(chunk), LOG_SECTOR):
            if chunk[at : at + 4] == b"loge" and _valid_entry(
                file, header, start, length, chunk_start + at
            ):
                raise UnsupportedImageError(
                    "VHDX log holds updates never written to the disk (Hyper-V or WSL was not "
                    "shut down cleanly): replay it first (mount it once in Windows, or "
                    "`qemu-img check -r all`); filerestore reads images read-only and does not "
                    "replay logs"
                )


def _valid_entry(file: SourceFile, header: Header, start: int, length: int, at: int) -> bool:
    head = file.pread(start + at, _ENTRY_HEADER.size, "log entry")
    _, check, entry_length, *_rest = _ENTRY_HEADER.unpack(head)
    guid = _rest[4]
    if guid != header.log_guid or entry_length % LOG_SECTOR or not 0 < entry_length <= length:
        return False
    crc = 0
    done = 0
    while done < entry_length:  # the entry may wrap around the log's end
        n = min(MiB, entry_length - done, length - (at + done) % length)
        data = file.pread(start + (at + done) % length, n, "log entry")
        if done == 0:
            data = data[:4] + bytes(4) + data[8:]
        crc = google_crc32c.extend(crc, data)
        done += n
    return bool(int(crc) == check)

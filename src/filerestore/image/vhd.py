"""The VHD reader (QEMU's "vpc"): fixed, dynamic and differencing disks.

# References: Microsoft "Virtual Hard Disk Image Format Specification" 1.0 ("Hard Disk
# Footer Format", "Dynamic Disk Header Format", "Block Allocation Table and Data Blocks",
# "Implementing a Differencing Hard Disk", "Parent Locator Entries"); QEMU block/vpc.c
# (vpc_open: the size rule by creator application, VHD_MAX_SECTORS, the "Page table too
# small" check) for what qemu-img writes and how it sizes the disk; Xen blktap's libvhd
# (vhd_bitmap_test: the most significant bit of a bitmap byte is its first sector).

Differencing disks follow their parent by the parent locators. Honoured, in this order:
``W2ru`` (a relative Windows path, UTF-16LE, backslashes as separators), ``MacX`` (a
``file://`` URL, UTF-8; absolute, so it must lie in the repository), then the header's
parent name field when it is a bare file name (beside the child). ``W2ku`` (an absolute
Windows path) names a place on another machine and is never followed; the deprecated
``Wi2r``/``Wi2k`` and Mac alias records are not read. The parent must be a VHD whose unique
id is the child's parent id. Sector bitmaps decide parent or child per sector for
differencing disks only; in dynamic disks (as in QEMU) an allocated block is read whole.
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass
from typing import cast

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
from filerestore.image.names import file_url_path, windows_name
from filerestore.source import SourceFile, Store

SECTOR = 512
COOKIE = b"conectix"
DYNAMIC_COOKIE = b"cxsparse"
FIXED, DYNAMIC, DIFFERENCING = 2, 3, 4
SUBFORMATS = {FIXED: "fixed", DYNAMIC: "dynamic", DIFFERENCING: "differencing"}
UNUSED = 0xFFFFFFFF  # a BAT entry of a block not in the file
# cookie, features, version, data offset, timestamp, creator app, creator version, creator
# host OS, original size, current size, cylinders, heads, sectors per track, disk type,
# checksum, unique id, saved state
_FOOTER = struct.Struct(">8sIIQI4sI4sQQHBBII16sB")
# cookie, data offset, table offset, version, max table entries, block size, checksum,
# parent unique id, parent timestamp, reserved, parent unicode name
_DYNAMIC = struct.Struct(">8sQQIIII16sII512s")
_LOCATOR = struct.Struct(">4sIIIQ")  # platform code, data space, data length, -, offset
_LOCATORS_AT = 576
MAX_SECTORS = 0xFF000000  # QEMU VHD_MAX_SECTORS: 2040 GiB
MAX_GEOMETRY = 65535 * 16 * 255  # QEMU VHD_MAX_GEOMETRY: CHS cannot say the size
# creators whose size is current_size, not cylinders x heads x sectors (QEMU vpc_open)
SIZE_FROM_FOOTER = (b"win ", b"qem2", b"d2v ", b"CTXS", b"tap\0")
MAX_LOCATOR = 65536  # a 32,767-character UTF-16 path (Windows' longest) fits
MAX_BLOCK = 1 << 31  # the BAT addresses blocks by a 32-bit sector offset


@dataclass(frozen=True)
class Footer:
    cookie: bytes
    features: int
    version: int
    data_offset: int
    timestamp: int
    creator_app: bytes
    creator_version: int
    creator_os: bytes
    original_size: int
    current_size: int
    cylinders: int
    heads: int
    sectors_per_track: int
    disk_type: int
    checksum: int
    unique_id: bytes
    saved_state: int

    @property
    def size(self) -> int:
        """Guest bytes, as QEMU computes them (Virtual PC used the CHS geometry)."""
        chs = self.cylinders * self.heads * self.sectors_per_track
        if self.creator_app not in SIZE_FROM_FOOTER and chs != MAX_GEOMETRY:
            return chs * SECTOR
        return self.current_size // SECTOR * SECTOR


def _bitmap_bytes(block: int) -> int:
    """Bytes of a block's sector bitmap: a bit per sector, padded to a sector."""
    return (block // SECTOR // 8 + SECTOR - 1) // SECTOR * SECTOR


def checksum(data: bytes, at: int) -> int:
    """One's complement of the byte sum, the checksum field (4 bytes at ``at``) left out."""
    return ~(sum(data) - sum(data[at : at + 4])) & 0xFFFFFFFF


def parse_footer(data: bytes) -> Footer:
    f = Footer(*_FOOTER.unpack_from(data))
    if f.cookie != COOKIE:
        raise CorruptImageError("not a VHD: no conectix cookie")
    if checksum(data[:SECTOR], 64) != f.checksum:
        raise CorruptImageError("VHD footer checksum does not match")
    return f


def _end_footer(file: SourceFile) -> bytes | None:
    if file.size < SECTOR:
        return None
    tail = file.pread(file.size - SECTOR, SECTOR, "footer")
    return tail if tail[:8] == COOKIE else None


def is_vhd(file: SourceFile, head: bytes) -> bool:
    if head[:8] == COOKIE:
        return True
    tail = _end_footer(file)
    try:
        return tail is not None and parse_footer(tail).disk_type == FIXED
    except CorruptImageError:
        return False


class VhdLayer(MappedLayer):
    def __init__(
        self,
        name: str,
        file: SourceFile,
        footer: Footer,
        dyn: tuple[int, int, int] | None,  # BAT offset, entries, block size
        cache: MetadataCache,
        backing: Layer | None,
    ) -> None:
        self.name, self.file, self.backing = name, file, backing
        self._size = footer.size
        self.differencing = footer.disk_type == DIFFERENCING
        self.bat: Table | None = None
        if dyn is not None:
            bat_offset, entries, self.block = dyn
            self.bat = Table(file, bat_offset, entries, ">I", "block allocation table", cache)
            self.bitmap_bytes = _bitmap_bytes(self.block)
            self._bitmaps = cache_key()
            self._cache = cache

    def _runs(self, offset: int, end: int) -> list[Run]:
        runs: list[Run] = []
        if self.bat is None:
            add_run(runs, DATA, offset, end - offset, self.file, offset)
            return runs
        block = self.block
        pos = offset
        while pos < end:
            index, into = divmod(pos, block)
            n = min(block - into, end - pos)
            entry = self.bat[index]
            if entry == UNUSED:
                add_run(runs, UNALLOCATED if self.differencing else ZERO, pos, n, None, 0)
            else:
                data = entry * SECTOR + self.bitmap_bytes
                if self.differencing:
                    self._bitmap_runs(runs, entry, pos, into, n, data)
                else:
                    add_run(runs, DATA, pos, n, self.file, data + into)
            pos += n
        return runs

    def _bitmap_runs(
        self, runs: list[Run], entry: int, pos: int, into: int, n: int, data: int
    ) -> None:
        bitmap = cast("array[int] | None", self._cache.get((self._bitmaps, entry)))
        if bitmap is None:
            raw = self.file.pread(entry * SECTOR, self.bitmap_bytes, "sector bitmap")
            bitmap = array("B", raw)
            self._cache.put((self._bitmaps, entry), bitmap, self.bitmap_bytes)
        end = into + n
        sector = into // SECTOR
        at = into
        while at < end:
            # bit 7 of byte 0 is sector 0
            span, present = bitmap_span(bitmap[sector >> 3], sector & 7, at, SECTOR, True)
            m = min(span, end - at)
            if present:
                add_run(runs, DATA, pos + at - into, m, self.file, data + at)
            else:
                add_run(runs, UNALLOCATED, pos + at - into, m, None, 0)
            at += m
            sector = at // SECTOR


def open_vhd(store: Store, file: SourceFile, head: bytes) -> FormatLink:
    del store  # a VHD is one file; its parent is opened by the chain walker
    with naming_file(file.name, *OPEN_ERRORS):
        raw = head[:SECTOR] if head[:8] == COOKIE else _end_footer(file)
        if raw is None or len(raw) < SECTOR:
            raise CorruptImageError("not a VHD: no footer at the start or the end of the file")
        footer = parse_footer(raw)
        if footer.disk_type not in SUBFORMATS:
            raise UnsupportedImageError(f"VHD disk type {footer.disk_type} is not supported")
        size = footer.size
        if size // SECTOR > MAX_SECTORS:
            raise UnsupportedImageError(f"VHD of {size} bytes is above QEMU's 2040 GiB")
        if footer.disk_type == FIXED:
            if size + SECTOR > file.size:
                raise CorruptImageError(
                    f"fixed VHD of {size} bytes is truncated: the file has {file.size}"
                )
            return _link(file, footer, None, None)
        return _dynamic(file, footer)


def _dynamic(file: SourceFile, footer: Footer) -> FormatLink:
    if footer.data_offset + 1024 > file.size:
        raise CorruptImageError(f"VHD dynamic header at {footer.data_offset:#x} is past the end")
    data = file.pread(footer.data_offset, 1024, "dynamic disk header")
    (cookie, _, bat_offset, _, entries, block, check, parent_id, _, _, parent_name) = (
        _DYNAMIC.unpack_from(data)
    )
    if cookie != DYNAMIC_COOKIE:
        raise CorruptImageError("VHD dynamic disk header has no cxsparse cookie")
    if checksum(data, 36) != check:
        raise CorruptImageError("VHD dynamic disk header checksum does not match")
    if block < SECTOR or block & (block - 1) or block > MAX_BLOCK:
        raise CorruptImageError(f"VHD block size {block} is not a power of two from 512 bytes")
    if entries * block < footer.size:
        raise CorruptImageError(
            f"VHD block allocation table of {entries} entries is too small for the disk"
        )
    if bat_offset + entries * 4 > file.size:
        raise CorruptImageError(
            f"VHD block allocation table at {bat_offset:#x} ({entries} entries) ends past the "
            f"end of the file ({file.size} bytes)"
        )
    parent = None
    if footer.disk_type == DIFFERENCING:
        parent = _parent_name(file, data, parent_name)
        return _link(file, footer, (bat_offset, entries, block), (parent, parent_id.hex()))
    return _link(file, footer, (bat_offset, entries, block), None)


def _parent_name(file: SourceFile, header: bytes, unicode_name: bytes) -> str:
    found: dict[bytes, bytes] = {}
    for i in range(8):
        code, _, length, _, offset = _LOCATOR.unpack_from(header, _LOCATORS_AT + i * 24)
        if code == b"\0\0\0\0" or length == 0:
            continue
        if length > MAX_LOCATOR or offset + length > file.size:
            raise CorruptImageError(
                f"VHD parent locator {code!r} of {length} bytes at {offset:#x} lies outside "
                "the file or is too long"
            )
        found.setdefault(code, file.pread(offset, length, "parent locator"))
    if b"W2ru" in found:
        return windows_name(_utf16(found[b"W2ru"], "le"), "parent locator W2ru", file.name)
    if b"MacX" in found:
        return file_url_path(
            found[b"MacX"].split(b"\0", 1)[0].decode("utf-8", "replace"), file.name
        )
    name = _utf16(unicode_name, "be")
    if name and not any(c in name for c in "/\\:"):
        return name
    if b"W2ku" in found:
        windows_name(_utf16(found[b"W2ku"], "le"), "parent locator W2ku", file.name)  # raises
    codes = ", ".join(c.decode("latin-1") for c in found) or "none"
    raise BackingFileRefusedError(
        f"differencing VHD has no parent locator filerestore follows (found: {codes})"
    )


def _utf16(data: bytes, order: str) -> str:
    text = data.decode(f"utf-16-{order}", "replace")
    return text.split("\0", 1)[0]


def _link(
    file: SourceFile,
    footer: Footer,
    dyn: tuple[int, int, int] | None,
    parent: tuple[str, str] | None,
) -> FormatLink:
    def build(backing: Layer | None, cache: MetadataCache) -> Layer:
        return VhdLayer(file.name, file, footer, dyn, cache, backing)

    return FormatLink(
        format="vpc",
        subformat=SUBFORMATS[footer.disk_type],
        virtual_size=footer.size,
        build=build,
        cluster_size=None if dyn is None else dyn[2],
        backing_name=None if parent is None else parent[0],
        backing_format=None if parent is None else "vpc",
        identity=footer.unique_id.hex(),
        # one BAT piece, and a differencing disk's block bitmap
        working_set=0 if dyn is None else PIECE + (_bitmap_bytes(dyn[2]) if parent else 0),
        parent_identity=None if parent is None else parent[1],
    )

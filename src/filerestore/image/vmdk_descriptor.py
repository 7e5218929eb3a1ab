"""The VMDK text descriptor and the hosted sparse extent header: layouts, parsing, limits.

# References: VMware "Virtual Disk Format 1.1" (sections "The Descriptor File", "Extent
# Descriptions", "Hosted Sparse Extent Header", "Stream-Optimized Compressed Sparse
# Extents"); QEMU block/vmdk.c (VMDK4Header, vmdk_open_vmdk4, vmdk_add_extent,
# vmdk_parse_extents, vmdk_read_desc) for the limits QEMU applies and what it writes.

Error classes: a field the specification forbids is a CorruptImageError; one it allows but
that this reader (or QEMU) does not open is an UnsupportedImageError naming it.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from filerestore.errors import CorruptImageError, UnsupportedImageError

SECTOR = 512
SPARSE_MAGIC = b"KDMV"  # "VMDK" little-endian (VMDK4_MAGIC)
COWD_MAGIC = b"COWD"  # ESX 2 sparse extents (VMDK3), not read here
DESCRIPTOR_MAGIC = b"# Disk DescriptorFile"
MAX_DESCRIPTOR = (1 << 20) - 1  # QEMU vmdk_read_desc reads no more ("unbounded allocation")
MAX_EXTENTS = 1024  # 2 TiB in 2 GiB twoGbMaxExtent pieces; each extent is one open file
NO_PARENT_CID = 0xFFFFFFFF

# SparseExtentHeader after the magic (little-endian): version, flags, capacity, grainSize,
# descriptorOffset, descriptorSize, numGTEsPerGT, rgdOffset, gdOffset, overHead,
# uncleanShutdown, four newline-detection bytes, compressAlgorithm
_HEADER = struct.Struct("<IIQQQQIQQQB4sH")
FLAG_NL_DETECT = 1 << 0
FLAG_RGD = 1 << 1
FLAG_ZERO_GRAIN = 1 << 2  # a grain table entry of 1 reads as zeros
FLAG_COMPRESSED = 1 << 16
FLAG_MARKERS = 1 << 17
GD_AT_END = 0xFFFFFFFFFFFFFFFF  # stream-optimized: the footer holds the real header
NL_CHECK = b"\n \r\n"
COMPRESSION_NONE, COMPRESSION_DEFLATE = 0, 1
MAX_GRAIN_SECTORS = 0x200000  # QEMU vmdk_add_extent: "1GB for one cluster is unrealistic"
MAX_GTES_PER_GT = 512  # QEMU vmdk_open_vmdk4 ("L2 table size too big"); the spec's value
MAX_GD_ENTRIES = 32 * 1024 * 1024  # QEMU vmdk_add_extent ("L1 size too big")
# Compressed grains are inflated whole and a few kept: VMware and qemu-img write 64 KiB ones;
# 2 MiB (QCOW2's largest cluster) bounds what one grain, and the cache of eight, may cost.
MAX_COMPRESSED_GRAIN_SECTORS = 4096
MARKER_EOS, MARKER_GT, MARKER_GD, MARKER_FOOTER = 0, 1, 2, 3

# createType values read here, and the ones named when refused
CREATE_TYPES = {
    "monolithicSparse",
    "monolithicFlat",
    "twoGbMaxExtentSparse",
    "twoGbMaxExtentFlat",
    "streamOptimized",
    "vmfs",
}
EXTENT_TYPES = {"SPARSE", "FLAT", "ZERO", "VMFS"}
REFUSED_EXTENT_TYPES = {
    "VMFSSPARSE": "ESX sparse (COWD) extents",
    "SESPARSE": "ESXi space-efficient sparse extents",
    "VMFSRDM": "raw device mappings",
    "VMFSRAW": "raw device mappings",
}


@dataclass(frozen=True)
class SparseHeader:
    version: int
    flags: int
    capacity: int  # sectors
    grain_size: int  # sectors
    descriptor_offset: int
    descriptor_size: int
    num_gtes_per_gt: int
    rgd_offset: int
    gd_offset: int
    overhead: int
    unclean_shutdown: int
    nl_check: bytes
    compress_algorithm: int

    @property
    def compressed(self) -> bool:
        return self.compress_algorithm == COMPRESSION_DEFLATE

    @property
    def gd_entries(self) -> int:
        span = self.num_gtes_per_gt * self.grain_size
        return (self.capacity + span - 1) // span


def parse_sparse_header(data: bytes) -> SparseHeader:
    if len(data) < 4 + _HEADER.size:
        raise CorruptImageError(f"VMDK sparse header truncated: {len(data)} bytes")
    if data[:4] == COWD_MAGIC:
        raise UnsupportedImageError("VMDK3 (ESX 2 COWD) sparse extents are not supported")
    if data[:4] != SPARSE_MAGIC:
        raise CorruptImageError("not a VMDK sparse extent: bad magic")
    return SparseHeader(*_HEADER.unpack_from(data, 4))


def validate_sparse_header(h: SparseHeader, file_size: int) -> None:
    """Every field against the specification and QEMU's limits, before a table is read."""
    if h.version not in (1, 2, 3):
        raise UnsupportedImageError(f"unsupported VMDK sparse extent version {h.version}")
    if h.flags & FLAG_NL_DETECT and h.nl_check != NL_CHECK:
        raise CorruptImageError(
            "VMDK newline-detection bytes are damaged (was the file transferred as text?)"
        )
    if h.compress_algorithm not in (COMPRESSION_NONE, COMPRESSION_DEFLATE):
        raise UnsupportedImageError(f"VMDK compression algorithm {h.compress_algorithm}")
    if h.capacity == 0:
        raise UnsupportedImageError("VMDK sparse extent of capacity 0 (a descriptor-only extent)")
    g = h.grain_size
    if g == 0 or g & (g - 1):
        raise CorruptImageError(f"VMDK grain size of {g} sectors is not a power of two")
    if g > MAX_GRAIN_SECTORS:
        raise UnsupportedImageError(f"VMDK grain size of {g} sectors is above QEMU's 1 GiB")
    if h.compressed and g > MAX_COMPRESSED_GRAIN_SECTORS:
        raise UnsupportedImageError(
            f"VMDK compressed grains of {g} sectors (filerestore inflates grains up to 2 MiB)"
        )
    if not 0 < h.num_gtes_per_gt <= MAX_GTES_PER_GT:
        raise UnsupportedImageError(
            f"VMDK grain tables of {h.num_gtes_per_gt} entries (QEMU reads 1 to 512)"
        )
    if h.gd_entries > MAX_GD_ENTRIES:
        raise UnsupportedImageError(
            f"VMDK grain directory of {h.gd_entries} entries is above QEMU's limit of 32 Mi"
        )
    if h.gd_offset != GD_AT_END:
        end = h.gd_offset * SECTOR + h.gd_entries * 4
        if h.gd_offset == 0 or end > file_size:
            raise CorruptImageError(
                f"VMDK grain directory at sector {h.gd_offset} ({h.gd_entries} entries) "
                f"lies outside the file ({file_size} bytes)"
            )
    if h.overhead * SECTOR > file_size:
        raise CorruptImageError(
            f"VMDK file truncated: its header says {h.overhead * SECTOR} bytes of metadata, "
            f"the file has {file_size}"
        )


@dataclass(frozen=True)
class ExtentLine:
    access: str  # RW | RDONLY
    sectors: int
    type: str  # SPARSE | FLAT | ZERO | VMFS
    name: str | None  # None for ZERO
    offset: int = 0  # sectors into a FLAT file


@dataclass(frozen=True)
class Descriptor:
    create_type: str | None
    cid: int | None
    parent_cid: int | None
    parent_hint: str | None
    extents: list[ExtentLine] = field(default_factory=list)


_KEY = re.compile(r'^\s*([A-Za-z][\w.]*)\s*=\s*"?([^"]*)"?\s*$')
# Sizes and offsets of up to 20 digits (a u64); a line that starts like an extent line and
# is not one is corrupt, and a longer number never reaches int() (a ValueError past 4,300
# digits).
_ACCESS = re.compile(r"^\s*(RW|RDONLY|NOACCESS)\s")
_EXTENT = re.compile(
    r'^\s*(RW|RDONLY|NOACCESS)\s+(\d{1,20})\s+([A-Z]+)(?:\s+"([^"]*)"(?:\s+(\d{1,20}))?)?\s*$'
)


def decode_descriptor(data: bytes) -> str:
    """The descriptor text: up to its first NUL (an embedded one is padded with NULs)."""
    text = data.split(b"\0", 1)[0]
    return text.decode("utf-8", "surrogateescape")


def parse_descriptor(text: str) -> Descriptor:
    keys: dict[str, str] = {}
    extents: list[ExtentLine] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _EXTENT.match(line)
        if m is None and _ACCESS.match(line):
            raise CorruptImageError(f"invalid VMDK extent line: {line.strip()[:80]!r}")
        if m:
            extents.append(_extent(m, line))
            if len(extents) > MAX_EXTENTS:
                raise UnsupportedImageError(
                    f"VMDK descriptor lists more than {MAX_EXTENTS} extents"
                )
            continue
        k = _KEY.match(line)
        if k:
            keys.setdefault(k.group(1), k.group(2))
    return Descriptor(
        create_type=keys.get("createType"),
        cid=_hex(keys, "CID"),
        parent_cid=_hex(keys, "parentCID"),
        parent_hint=keys.get("parentFileNameHint") or None,
        extents=extents,
    )


def _extent(m: re.Match[str], line: str) -> ExtentLine:
    access, sectors, kind, name, offset = m.groups()
    if access == "NOACCESS":
        raise UnsupportedImageError(f"VMDK extent with NOACCESS: {line.strip()!r}")
    if kind in REFUSED_EXTENT_TYPES:
        raise UnsupportedImageError(f"VMDK {REFUSED_EXTENT_TYPES[kind]} ({kind}) are not supported")
    if kind not in EXTENT_TYPES:
        raise UnsupportedImageError(f"VMDK extent type {kind!r} is not supported")
    if int(sectors) <= 0:
        raise CorruptImageError(f"VMDK extent of {sectors} sectors: {line.strip()!r}")
    if kind == "ZERO":
        return ExtentLine(access, int(sectors), kind, None)
    if name is None:
        raise CorruptImageError(f"VMDK extent line without a file name: {line.strip()!r}")
    if kind == "FLAT" and offset is None:
        raise CorruptImageError(f"VMDK FLAT extent without an offset: {line.strip()!r}")
    if kind != "FLAT" and offset is not None:
        raise CorruptImageError(f"invalid VMDK extent line: {line.strip()!r}")
    return ExtentLine(access, int(sectors), kind, name, int(offset or 0))


def _hex(keys: dict[str, str], key: str) -> int | None:
    value = keys.get(key)
    if value is None:
        return None
    try:
        return int(value, 16)
    except ValueError:
        raise CorruptImageError(f"VMDK descriptor {key}={value!r} is not hexadecimal") from None

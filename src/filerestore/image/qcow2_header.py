"""The QCOW2 header and its extensions: layout as data, parsing and validation (pure).

# References: QEMU docs/interop/qcow2.txt (sections "Header", "Header extensions",
# "Feature name table"); limits from QEMU block/qcow2.h (QCOW_MAX_L1_SIZE,
# QCOW_MAX_REFTABLE_SIZE, QCOW_MAX_SNAPSHOTS, MIN/MAX_CLUSTER_BITS) and the checks in
# block/qcow2.c qcow2_do_open().

Error classes follow one rule: a field the specification forbids is a
:class:`CorruptImageError`; a field the specification allows but that QEMU itself cannot
open (its implementation limits), or a feature this reader does not implement, is an
:class:`UnsupportedImageError` naming the field or the feature.

Incompatible features read: dirty, corrupt, external data file (with or without the raw
autoclear bit: see :mod:`filerestore.image.qcow2_data_file`), compression type (zlib, zstd),
extended L2 entries (tested on qemu-img-made images). Refused by name: any unknown bit (named
from the image's feature name table when it has one), and encryption.

The dirty bit and the corrupt bit are accepted, as ``qemu-img convert`` accepts them on a
read-only open: both concern refcounts and writes, and this reader neither reads refcounts
nor writes. Every table and cluster it reads is bounds-checked against the file, so a
pointer past the end gives a :class:`CorruptImageError`, never zeros; a pointer that stays
inside the file reads what QEMU would read there.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from filerestore.errors import CorruptImageError, UnsupportedImageError

MAGIC = b"QFI\xfb"

V2_HEADER_LENGTH = 72
V3_MIN_HEADER_LENGTH = 104
# magic, version, backing_file_offset, backing_file_size, cluster_bits, size, crypt_method,
# l1_size, l1_table_offset, refcount_table_offset, refcount_table_clusters, nb_snapshots,
# snapshots_offset
_V2_FIELDS = struct.Struct(">4sIQIIQIIQQIIQ")
# incompatible_features, compatible_features, autoclear_features, refcount_order,
# header_length
_V3_FIELDS = struct.Struct(">QQQII")
_COMPRESSION_TYPE_OFFSET = 104

# QEMU's limits (block/qcow2.h)
MIN_CLUSTER_BITS = 9
MAX_CLUSTER_BITS = 21
MIN_EXTL2_CLUSTER_BITS = 14  # 32 subclusters of at least 512 bytes
MAX_L1_BYTES = 32 * 1024 * 1024
MAX_REFTABLE_BYTES = 8 * 1024 * 1024
MAX_SNAPSHOTS = 65536
MAX_BACKING_NAME = 1023
SNAPSHOT_HEADER_MIN = 40  # the fixed part of a snapshot table entry

# Incompatible feature bits, by the names qcow2.txt gives them.
INCOMPAT_DIRTY = 1 << 0
INCOMPAT_CORRUPT = 1 << 1
INCOMPAT_DATA_FILE = 1 << 2
INCOMPAT_COMPRESSION = 1 << 3
INCOMPAT_EXTL2 = 1 << 4
INCOMPAT_NAMES = {
    0: "dirty",
    1: "corrupt",
    2: "external data file",
    3: "compression type",
    4: "extended L2 entries",
}
_KNOWN_INCOMPAT = (
    INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2
)
AUTOCLEAR_DATA_FILE_RAW = 1 << 1  # "Raw external data bit"

CRYPT_METHODS = {1: "AES", 2: "LUKS"}
COMPRESSION_TYPES = {0: "zlib", 1: "zstd"}

EXT_END = 0x00000000
EXT_BACKING_FORMAT = 0xE2792ACA
EXT_FEATURE_TABLE = 0x6803F857
EXT_DATA_FILE = 0x44415441
_EXT_HEADER = struct.Struct(">II")
_FEATURE_ENTRY = 48  # type (1), bit (1), name (46)


# NamedTuples, not frozen dataclasses: creating a dataclass compiles its methods,
# which every CLI start-up would pay for (issue 14)
class Qcow2Header(NamedTuple):
    """The fields of a QCOW2 header (version 2 or 3), as stored."""

    version: int
    backing_file_offset: int
    backing_file_size: int
    cluster_bits: int
    size: int
    crypt_method: int
    l1_size: int
    l1_table_offset: int
    refcount_table_offset: int
    refcount_table_clusters: int
    nb_snapshots: int
    snapshots_offset: int
    incompatible_features: int
    compatible_features: int
    autoclear_features: int
    refcount_order: int
    header_length: int
    compression_type: int

    @property
    def cluster_size(self) -> int:
        return 1 << self.cluster_bits

    @property
    def compression(self) -> str:
        return COMPRESSION_TYPES[self.compression_type]

    @property
    def extended_l2(self) -> bool:
        return bool(self.incompatible_features & INCOMPAT_EXTL2)

    @property
    def has_data_file(self) -> bool:
        """Guest clusters live in an external data file (QEMU's has_data_file())."""
        return bool(self.incompatible_features & INCOMPAT_DATA_FILE)

    @property
    def data_file_is_raw(self) -> bool:
        """The data file is the guest disk as a raw image (QEMU's data_file_is_raw())."""
        return bool(self.autoclear_features & AUTOCLEAR_DATA_FILE_RAW)


class Qcow2Extensions(NamedTuple):
    """What the header extensions say: backing format, feature names, data file."""

    backing_format: str | None
    # incompatible bit -> name, from the image's own feature name table
    feature_names: dict[int, str]
    # the external data file name extension, as stored (not NUL-terminated)
    data_file: bytes | None = None


class Qcow2Info(NamedTuple):
    """Everything the first cluster says: header, extensions and the backing file name."""

    header: Qcow2Header
    extensions: Qcow2Extensions
    backing_name: bytes | None


def is_qcow2(head: bytes) -> bool:
    return head[:4] == MAGIC


def parse_header(data: bytes) -> Qcow2Header:
    """Parse the fixed header fields from the start of the file (no validation of limits)."""
    if len(data) < V2_HEADER_LENGTH:
        raise CorruptImageError(f"qcow2 header truncated: {len(data)} of 72 bytes present")
    f = _V2_FIELDS.unpack_from(data)
    magic, version = f[0], f[1]
    if magic != MAGIC:
        raise CorruptImageError("not a qcow2 image: bad magic")
    if version not in (2, 3):
        raise UnsupportedImageError(f"unsupported qcow version {version} (only 2 and 3)")
    incompat = compat = autoclear = 0
    refcount_order = 4
    header_length = V2_HEADER_LENGTH
    compression_type = 0
    if version == 3:
        if len(data) < V3_MIN_HEADER_LENGTH:
            raise CorruptImageError(
                f"qcow2 v3 header truncated: {len(data)} of {V3_MIN_HEADER_LENGTH} bytes present"
            )
        incompat, compat, autoclear, refcount_order, header_length = _V3_FIELDS.unpack_from(
            data, V2_HEADER_LENGTH
        )
        if header_length < V3_MIN_HEADER_LENGTH or header_length % 8:
            raise CorruptImageError(f"qcow2 header length {header_length} is invalid")
        if len(data) < header_length:
            raise CorruptImageError(
                f"qcow2 header truncated: {len(data)} of {header_length} bytes present"
            )
        if header_length > _COMPRESSION_TYPE_OFFSET:
            compression_type = data[_COMPRESSION_TYPE_OFFSET]
    return Qcow2Header(
        version=version,
        backing_file_offset=f[2],
        backing_file_size=f[3],
        cluster_bits=f[4],
        size=f[5],
        crypt_method=f[6],
        l1_size=f[7],
        l1_table_offset=f[8],
        refcount_table_offset=f[9],
        refcount_table_clusters=f[10],
        nb_snapshots=f[11],
        snapshots_offset=f[12],
        incompatible_features=incompat,
        compatible_features=compat,
        autoclear_features=autoclear,
        refcount_order=refcount_order,
        header_length=header_length,
        compression_type=compression_type,
    )


def size_to_l1(cluster_bits: int, size: int, extended_l2: bool = False) -> int:
    """L1 entries needed to map ``size`` guest bytes (QEMU's size_to_l1)."""
    l2_bits = cluster_bits - 3 - int(extended_l2)  # 8-byte entries, 16 with extended L2
    shift = cluster_bits + l2_bits
    return (size + (1 << shift) - 1) >> shift


def validate_header(h: Qcow2Header, file_size: int) -> None:
    """Check every field against the specification and QEMU's limits before any table is read."""
    if h.cluster_bits < MIN_CLUSTER_BITS:
        raise CorruptImageError(f"cluster_bits {h.cluster_bits} is below the minimum of 9")
    if h.cluster_bits > MAX_CLUSTER_BITS:
        raise UnsupportedImageError(
            f"cluster_bits {h.cluster_bits} is above QEMU's limit of 21 (2 MiB clusters)"
        )
    cs = h.cluster_size
    if h.header_length > cs:
        raise CorruptImageError(f"qcow2 header length {h.header_length} exceeds the cluster size")
    _check_features(h)
    if h.crypt_method:
        name = CRYPT_METHODS.get(h.crypt_method, f"unknown method {h.crypt_method}")
        raise UnsupportedImageError(f"encrypted qcow2 images are not supported ({name})")
    if h.refcount_order > 6:
        raise CorruptImageError(f"refcount_order {h.refcount_order} is above the maximum of 6")
    if h.backing_file_offset:
        if h.backing_file_size > MAX_BACKING_NAME:
            raise CorruptImageError(
                f"backing file name of {h.backing_file_size} bytes is longer than 1023"
            )
        if h.backing_file_offset + h.backing_file_size > cs:
            raise CorruptImageError("backing file name lies outside the first cluster")
    if h.l1_size * 8 > MAX_L1_BYTES:
        raise UnsupportedImageError(
            f"L1 table of {h.l1_size} entries is larger than QEMU's limit of 32 MiB"
        )
    if h.extended_l2 and h.cluster_bits < MIN_EXTL2_CLUSTER_BITS:
        raise CorruptImageError(
            f"extended L2 entries need cluster_bits of at least 14, not {h.cluster_bits}"
        )
    if h.l1_size < size_to_l1(h.cluster_bits, h.size, h.extended_l2):
        raise CorruptImageError(
            f"L1 table of {h.l1_size} entries is too small for a virtual size of {h.size}"
        )
    _check_table("L1 table", h.l1_table_offset, h.l1_size * 8, cs, file_size)
    if h.refcount_table_clusters == 0:
        raise CorruptImageError("image has no refcount table")
    if h.refcount_table_clusters * cs > MAX_REFTABLE_BYTES:
        raise UnsupportedImageError(
            f"refcount table of {h.refcount_table_clusters} clusters is larger than "
            "QEMU's limit of 8 MiB"
        )
    _check_table(
        "refcount table", h.refcount_table_offset, h.refcount_table_clusters * cs, cs, file_size
    )
    if h.nb_snapshots > MAX_SNAPSHOTS:
        raise UnsupportedImageError(
            f"{h.nb_snapshots} snapshots is more than QEMU's limit of {MAX_SNAPSHOTS}"
        )
    if h.nb_snapshots:
        _check_table(
            "snapshot table",
            h.snapshots_offset,
            h.nb_snapshots * SNAPSHOT_HEADER_MIN,
            cs,
            file_size,
        )


def _check_features(h: Qcow2Header) -> None:
    if h.incompatible_features & INCOMPAT_COMPRESSION:
        if h.compression_type == 0:
            raise CorruptImageError("compression type bit set but compression_type is zlib")
    elif h.compression_type != 0:
        raise CorruptImageError("compression_type set without the compression type bit")
    if h.compression_type not in COMPRESSION_TYPES:
        raise UnsupportedImageError(f"unknown compression type {h.compression_type}")
    if h.autoclear_features & AUTOCLEAR_DATA_FILE_RAW and not (
        h.incompatible_features & INCOMPAT_DATA_FILE
    ):
        raise CorruptImageError("raw external data bit set without an external data file")


def check_incompatible(h: Qcow2Header, ext: Qcow2Extensions) -> None:
    """Refuse, by name, incompatible features this reader does not implement."""
    bits = h.incompatible_features & ~_KNOWN_INCOMPAT
    if not bits:
        return
    names = []
    for bit in range(64):
        if bits >> bit & 1:
            name = INCOMPAT_NAMES.get(bit) or ext.feature_names.get(bit) or "unknown"
            names.append(f"{name} (incompatible bit {bit})")
    raise UnsupportedImageError("unsupported qcow2 feature: " + ", ".join(names))


def _check_table(what: str, offset: int, length: int, cluster_size: int, file_size: int) -> None:
    if offset % cluster_size:
        raise CorruptImageError(f"{what} offset {offset:#x} is not cluster-aligned")
    if offset == 0 and length:
        raise CorruptImageError(f"{what} overlaps the header")
    if offset + length > file_size:
        raise CorruptImageError(
            f"{what} at {offset:#x} ({length} bytes) ends past the end of the file "
            f"({file_size} bytes)"
        )


def parse_extensions(h: Qcow2Header, first_cluster: bytes) -> Qcow2Extensions:
    """Walk the header extensions between the header and the backing name (or cluster end)."""
    end = h.backing_file_offset or h.cluster_size
    end = min(end, len(first_cluster))
    offset = h.header_length
    backing_format: str | None = None
    data_file: bytes | None = None
    names: dict[int, str] = {}
    while offset + _EXT_HEADER.size <= end:  # v2 images have extensions too
        kind, length = _EXT_HEADER.unpack_from(first_cluster, offset)
        offset += _EXT_HEADER.size
        if kind == EXT_END:
            break
        if length > end - offset:
            raise CorruptImageError(f"header extension {kind:#x} of {length} bytes is too large")
        data = first_cluster[offset : offset + length]
        if kind == EXT_BACKING_FORMAT:
            if length > 15:  # QEMU keeps it in char[16]
                raise CorruptImageError(f"backing format name of {length} bytes is too long")
            backing_format = data.decode("ascii", "replace")
        elif kind == EXT_DATA_FILE:
            data_file = data
        elif kind == EXT_FEATURE_TABLE:
            for i in range(0, length - _FEATURE_ENTRY + 1, _FEATURE_ENTRY):
                if data[i] == 0 and data[i + 1] < 64:
                    raw = data[i + 2 : i + _FEATURE_ENTRY].split(b"\0", 1)[0]
                    names[data[i + 1]] = raw.decode("ascii", "replace")
        offset += (length + 7) & ~7
    return Qcow2Extensions(backing_format=backing_format, feature_names=names, data_file=data_file)


def parse_first_cluster(first_cluster: bytes, file_size: int) -> Qcow2Info:
    """Parse and validate everything in the first cluster: header, extensions, backing name."""
    h = parse_header(first_cluster)
    validate_header(h, file_size)
    ext = parse_extensions(h, first_cluster)
    check_incompatible(h, ext)
    backing: bytes | None = None
    if h.backing_file_offset and h.backing_file_size:
        end = h.backing_file_offset + h.backing_file_size
        if end > len(first_cluster):
            raise CorruptImageError("backing file name lies past the end of the file")
        backing = first_cluster[h.backing_file_offset : end]
    _check_data_file(h, ext, backing)
    return Qcow2Info(header=h, extensions=ext, backing_name=backing)


def _check_data_file(h: Qcow2Header, ext: Qcow2Extensions, backing: bytes | None) -> None:
    """The external data file's header rules (qcow2.txt, incompatible bit 2 and autoclear
    bit 1; QEMU block/qcow2.c qcow2_do_open() and qcow2_co_create())."""
    if not h.has_data_file:
        return  # a data file name without the bit names nothing QEMU would open
    if not ext.data_file:
        # the extension "may be present"; without it qcow2_do_open() fails with
        # "'data-file' is required for this image" unless the user names the file
        raise UnsupportedImageError(
            "external data file (incompatible bit 2) without a data file name extension: "
            "QEMU opens such an image only with a data-file= option naming the file"
        )
    if h.data_file_is_raw and backing:
        # "backing files are incompatible with raw external data files"; qcow2_co_create()
        # refuses to make one ("Backing file and data-file-raw cannot be used at the same
        # time"): the data file could not be the guest disk on its own
        raise CorruptImageError("raw external data file with a backing file")

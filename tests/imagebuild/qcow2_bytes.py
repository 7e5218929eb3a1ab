"""A small valid QCOW2 image built byte by byte, for hostile inputs that change one thing in it.

``qcow2_image(...)`` builds a qcow2 v3 (64 KiB clusters, 1 MiB disk, one data cluster holding
``DATA_PATTERN``) that ``qemu-img check`` accepts; each keyword changes one header field or
table entry. ``data_file_image(...)`` is the same image with an external data file
(``disk-data.raw``, ``DATA_FILE_BYTES``), which ``qemu-img check`` accepts too.
"""

from __future__ import annotations

import struct
from typing import Any

CLUSTER_BITS = 16
CS = 1 << CLUSTER_BITS
VIRTUAL_SIZE = 1 << 20
DATA_PATTERN = bytes(range(256)) * (CS // 256)
COPIED = 1 << 63
COMPRESSED = 1 << 62
HEADER_LENGTH = 112  # v3 header with the compression type byte, padded to 8
# clusters: 0 header, 1 refcount table, 2 refcount block, 3 L1, 4 L2, 5 data
REFTABLE, REFBLOCK, L1, L2, DATA = 1, 2, 3, 4, 5


def _ext(kind: int, data: bytes) -> bytes:
    return struct.pack(">II", kind, len(data)) + data + bytes(-len(data) % 8)


def qcow2_image(
    *,
    backing: bytes | None = None,
    backing_format: bytes | None = b"qcow2",
    version: int = 3,
    cluster_bits: int = CLUSTER_BITS,
    crypt_method: int = 0,
    l1_size: int = 1,
    l1_table_offset: int = L1 * CS,
    refcount_table_clusters: int = 1,
    nb_snapshots: int = 0,
    snapshots_offset: int = 0,
    incompatible: int = 0,
    feature_names: dict[int, bytes] | None = None,
    l1_entry: int = L2 * CS | COPIED,
    l2_entry: int = DATA * CS | COPIED,
    l2_bitmap: int | None = None,
    backing_size: int | None = None,
    data_file: bytes | None = None,
    autoclear: int = 0,
) -> bytes:
    exts = b""
    if backing is not None and backing_format is not None:
        exts += _ext(0xE2792ACA, backing_format)
    if data_file is not None:  # "External data file name string"
        exts += _ext(0x44415441, data_file)
    if feature_names:
        table = b"".join(
            struct.pack(">BB46s", 0, bit, name) for bit, name in sorted(feature_names.items())
        )
        exts += _ext(0x6803F857, table)
    exts += _ext(0, b"")
    header_len = HEADER_LENGTH if version == 3 else 72
    backing_offset = header_len + len(exts) if backing is not None else 0
    header = struct.pack(
        ">4sIQIIQIIQQIIQ",
        b"QFI\xfb",
        version,
        backing_offset,
        len(backing) if backing_size is None and backing is not None else (backing_size or 0),
        cluster_bits,
        VIRTUAL_SIZE,
        crypt_method,
        l1_size,
        l1_table_offset,
        REFTABLE * CS,
        refcount_table_clusters,
        nb_snapshots,
        snapshots_offset,
    )
    if version == 3:
        header += struct.pack(">QQQII", incompatible, 0, autoclear, 4, HEADER_LENGTH) + bytes(8)
    else:
        exts = b""
    first = header + exts + (backing or b"")
    image = bytearray(6 * CS)
    image[: len(first)] = first
    struct.pack_into(">Q", image, REFTABLE * CS, REFBLOCK * CS)
    for cluster in range(6):
        struct.pack_into(">H", image, REFBLOCK * CS + 2 * cluster, 1)
    struct.pack_into(">Q", image, L1 * CS, l1_entry)
    struct.pack_into(">Q", image, L2 * CS, l2_entry)
    if l2_bitmap is not None:  # the second word of an extended L2 entry
        struct.pack_into(">Q", image, L2 * CS + 8, l2_bitmap)
    image[DATA * CS : (DATA + 1) * CS] = DATA_PATTERN
    return bytes(image)


# --- external data files -------------------------------------------------------------------

INCOMPAT_DATA_FILE = 1 << 2  # qcow2.txt incompatible bit 2, "External data file bit"
AUTOCLEAR_DATA_FILE_RAW = 1 << 1  # qcow2.txt autoclear bit 1, "Raw external data bit"
#: the guest disk of the baseline image, as its data file holds it
DATA_FILE_BYTES = DATA_PATTERN + bytes(VIRTUAL_SIZE - CS)


def data_file_image(name: bytes = b"disk-data.raw", *, raw: bool = False, **kw: Any) -> bytes:
    """``qcow2_image`` with an external data file named ``name``: guest cluster 0 lives at
    offset 0 of the data file, an L2 entry of offset 0 with QCOW_OFLAG_COPIED set (qcow2.txt
    "Standard Cluster Descriptor"); the image's own data cluster is dropped and unreferenced,
    so ``qemu-img check`` finds neither leaks nor errors."""
    kw.setdefault("l2_entry", COPIED)
    image = bytearray(
        qcow2_image(
            data_file=name,
            incompatible=INCOMPAT_DATA_FILE | kw.pop("incompatible", 0),
            autoclear=AUTOCLEAR_DATA_FILE_RAW if raw else 0,
            **kw,
        )[: DATA * CS]
    )
    struct.pack_into(">H", image, REFBLOCK * CS + 2 * DATA, 0)
    return bytes(image)

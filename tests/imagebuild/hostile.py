"""Hostile QCOW2 images, built byte by byte: ONE shared list for every layer's tests.

``HOSTILE`` lists ``HostileImage(name, build, error, match)``. ``build(workdir)`` writes the
image (and whatever it needs around it) and returns the path of the image to open; the
repository root is always ``workdir / "repo"``; some entries also create files outside it
(``workdir / "outside.qcow2"``) so that opening them would succeed if not refused. Opening the
image and reading its whole disk must raise exactly ``error`` with ``match`` in the message.

``qcow2_image(...)`` builds a small valid qcow2 v3 (64 KiB clusters, 1 MiB disk, one data
cluster holding ``DATA_PATTERN``) that ``qemu-img check`` accepts; every hostile entry changes
one thing in it. ``data_file_image(...)`` is the same image with an external data file
(``repo/disk-data.raw``, ``DATA_FILE_BYTES``), which ``qemu-img check`` accepts too; the
``data-file-*`` entries change one thing in it or in its data file.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from filerestore.errors import (
    BackingChainLoopError,
    BackingChainTooDeepError,
    BackingFileRefusedError,
    CorruptImageError,
    FileRestoreError,
    ImageNotFoundError,
    UnsupportedImageError,
)

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


class HostileImage(NamedTuple):
    name: str
    build: Callable[[Path], Path]
    error: type[FileRestoreError]
    match: str


def _repo(workdir: Path) -> Path:
    repo = workdir / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    return repo


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _single(**kw: object) -> Callable[[Path], Path]:
    return lambda w: _write(_repo(w) / "image.qcow2", qcow2_image(**kw))  # type: ignore[arg-type]


def _outside(workdir: Path) -> Path:
    _write(workdir / "outside.qcow2", qcow2_image())
    return _write(_repo(workdir) / "image.qcow2", qcow2_image(backing=b"../outside.qcow2"))


def _symlink_outside(workdir: Path) -> Path:
    _write(workdir / "outside.qcow2", qcow2_image())
    (_repo(workdir) / "base.qcow2").symlink_to(workdir / "outside.qcow2")
    return _write(_repo(workdir) / "image.qcow2", qcow2_image(backing=b"base.qcow2"))


def _loop(workdir: Path) -> Path:
    repo = _repo(workdir)
    _write(repo / "b.qcow2", qcow2_image(backing=b"a.qcow2"))
    return _write(repo / "a.qcow2", qcow2_image(backing=b"b.qcow2"))


def _hardlink_loop(workdir: Path) -> Path:
    repo = _repo(workdir)
    _write(repo / "a.qcow2", qcow2_image(backing=b"b.qcow2"))
    os.link(repo / "a.qcow2", repo / "b.qcow2")
    return repo / "a.qcow2"


def _too_deep(workdir: Path) -> Path:
    repo = _repo(workdir)
    count = 66  # past the default limit of 64 files
    _write(repo / f"img{count - 1:02d}.qcow2", qcow2_image())
    for i in range(count - 1):
        _write(repo / f"img{i:02d}.qcow2", qcow2_image(backing=f"img{i + 1:02d}.qcow2".encode()))
    return repo / "img00.qcow2"


def _fifo(workdir: Path) -> Path:
    os.mkfifo(_repo(workdir) / "base.qcow2")
    return _write(_repo(workdir) / "image.qcow2", qcow2_image(backing=b"base.qcow2"))


def _truncated_header(workdir: Path) -> Path:
    return _write(_repo(workdir) / "image.qcow2", qcow2_image()[:50])


def _truncated_v3_header(workdir: Path) -> Path:
    return _write(_repo(workdir) / "image.qcow2", qcow2_image()[:90])


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


def _data_file(
    name: bytes | Callable[[Path], bytes] = b"disk-data.raw",
    *,
    data: bytes | None = DATA_FILE_BYTES,
    prepare: Callable[[Path], None] | None = None,
    **kw: Any,
) -> Callable[[Path], Path]:
    """An image with a data file (``data`` written to ``repo/disk-data.raw`` unless None);
    ``workdir/outside-data.raw`` exists so that a name leading there would open."""

    def build(w: Path) -> Path:
        repo = _repo(w)
        _write(w / "outside-data.raw", DATA_FILE_BYTES)
        if prepare is not None:
            prepare(w)
        if data is not None:
            _write(repo / "disk-data.raw", data)
        named = name(w) if callable(name) else name
        return _write(repo / "image.qcow2", data_file_image(named, **kw))

    return build


def _data_link_outside(w: Path) -> None:
    (_repo(w) / "disk-data.raw").symlink_to(w / "outside-data.raw")


def _data_fifo(w: Path) -> None:
    os.mkfifo(_repo(w) / "disk-data.raw")


def _data_device(w: Path) -> None:
    try:  # the same character device as /dev/zero, inside the repository
        os.mknod(_repo(w) / "disk-data.raw", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except PermissionError:
        import pytest

        pytest.skip("making a device node needs root")


def _raw_with_backing(w: Path) -> Path:
    _write(_repo(w) / "base.qcow2", qcow2_image())
    return _data_file(raw=True, backing=b"base.qcow2")(w)


JSON_NAME = b'json:{"file": {"driver": "file", "filename": "/etc/passwd"}}'

HOSTILE: list[HostileImage] = [
    HostileImage(
        "backing-etc-passwd",
        _single(backing=b"/etc/passwd"),
        BackingFileRefusedError,
        "outside the repository",
    ),
    HostileImage(
        "backing-etc-passwd-raw",
        _single(backing=b"/etc/passwd", backing_format=b"raw"),
        BackingFileRefusedError,
        "outside the repository",
    ),
    HostileImage(
        "backing-dotdot-outside", _outside, BackingFileRefusedError, "outside the repository"
    ),
    HostileImage(
        "backing-symlink-outside",
        _symlink_outside,
        BackingFileRefusedError,
        "outside the repository",
    ),
    HostileImage("backing-json", _single(backing=JSON_NAME), BackingFileRefusedError, "protocol"),
    HostileImage(
        "backing-nbd",
        _single(backing=b"nbd://127.0.0.1:10809/export"),
        BackingFileRefusedError,
        "protocol",
    ),
    HostileImage(
        "backing-http",
        _single(backing=b"http://example.com/base.qcow2"),
        BackingFileRefusedError,
        "protocol",
    ),
    HostileImage(
        "backing-file-protocol",
        _single(backing=b"file:base.qcow2"),
        BackingFileRefusedError,
        "protocol",
    ),
    HostileImage(
        "backing-nul-byte",
        _single(backing=b"base.qcow2\0/etc/passwd"),
        BackingFileRefusedError,
        "NUL",
    ),
    HostileImage("backing-fifo", _fifo, BackingFileRefusedError, "not a regular file"),
    HostileImage("chain-loop", _loop, BackingChainLoopError, "already in the chain"),
    HostileImage(
        "chain-self-loop",
        _single(backing=b"image.qcow2"),
        BackingChainLoopError,
        "already in the chain",
    ),
    HostileImage(
        "chain-hardlink-loop", _hardlink_loop, BackingChainLoopError, "already in the chain"
    ),
    HostileImage("chain-too-deep", _too_deep, BackingChainTooDeepError, "limit of 64"),
    HostileImage(
        "l1-too-large",
        _single(l1_size=32 * 1024 * 1024 // 8 + 1),
        UnsupportedImageError,
        "L1 table",
    ),
    HostileImage("l1-too-small", _single(l1_size=0), CorruptImageError, "L1 table"),
    HostileImage(
        "l1-past-eof",
        _single(l1_table_offset=100 * CS),
        CorruptImageError,
        "past the end of the file",
    ),
    HostileImage(
        "l1-unaligned",
        _single(l1_table_offset=L1 * CS + 8),
        CorruptImageError,
        "not cluster-aligned",
    ),
    HostileImage(
        "refcount-table-too-large",
        _single(refcount_table_clusters=8 * 16 + 1),
        UnsupportedImageError,
        "refcount table",
    ),
    HostileImage(
        "too-many-snapshots",
        _single(nb_snapshots=65537, snapshots_offset=5 * CS),
        UnsupportedImageError,
        "snapshots",
    ),
    HostileImage(
        "backing-name-too-long", _single(backing=b"b" * 1024), CorruptImageError, "longer than 1023"
    ),
    HostileImage("truncated-header", _truncated_header, CorruptImageError, "truncated"),
    HostileImage("truncated-v3-header", _truncated_v3_header, CorruptImageError, "truncated"),
    HostileImage(
        "cluster-bits-30", _single(cluster_bits=30), UnsupportedImageError, "cluster_bits 30"
    ),
    HostileImage("cluster-bits-8", _single(cluster_bits=8), CorruptImageError, "cluster_bits 8"),
    HostileImage("encrypted-aes", _single(crypt_method=1), UnsupportedImageError, "AES"),
    HostileImage("encrypted-luks", _single(crypt_method=2), UnsupportedImageError, "LUKS"),
    HostileImage(
        "data-file-bit-without-name",
        _single(incompatible=INCOMPAT_DATA_FILE),
        UnsupportedImageError,
        "without a data file name extension",
    ),
    HostileImage(
        "data-file-raw-bit-without-data-file",
        _single(autoclear=AUTOCLEAR_DATA_FILE_RAW),
        CorruptImageError,
        "raw external data bit set without an external data file",
    ),
    HostileImage(
        "data-file-dotdot-outside",
        _data_file(b"../outside-data.raw"),
        BackingFileRefusedError,
        "outside the repository",
    ),
    HostileImage(
        "data-file-absolute-outside",
        _data_file(lambda w: os.fsencode(w / "outside-data.raw")),
        BackingFileRefusedError,
        "outside the repository",
    ),
    HostileImage(
        "data-file-etc-passwd",
        _data_file(b"/etc/passwd"),
        BackingFileRefusedError,
        "outside the repository",
    ),
    HostileImage(
        "data-file-symlink-outside",
        _data_file(data=None, prepare=_data_link_outside),
        BackingFileRefusedError,
        "outside the repository",
    ),
    HostileImage(
        "data-file-fifo",
        _data_file(data=None, prepare=_data_fifo),
        BackingFileRefusedError,
        "not a regular file",
    ),
    HostileImage(
        "data-file-device",
        _data_file(data=None, prepare=_data_device),
        BackingFileRefusedError,
        "not a regular file",
    ),
    HostileImage(
        "data-file-nbd", _data_file(b"nbd://127.0.0.1:10809/x"), BackingFileRefusedError, "protocol"
    ),
    HostileImage("data-file-json", _data_file(JSON_NAME), BackingFileRefusedError, "protocol"),
    HostileImage(
        "data-file-nul-byte",
        _data_file(b"disk-data.raw\0/etc/passwd"),
        BackingFileRefusedError,
        "NUL",
    ),
    HostileImage(
        "data-file-missing", _data_file(b"gone-data.raw"), ImageNotFoundError, "gone-data.raw"
    ),
    HostileImage(
        "data-file-raw-with-backing",
        _raw_with_backing,
        CorruptImageError,
        "raw external data file with a backing file",
    ),
    HostileImage(
        "data-file-compressed-cluster",
        _data_file(l2_entry=COMPRESSED | (DATA * CS)),
        CorruptImageError,
        "compressed cluster at guest offset 0x0 in an image with an external data file",
    ),
    HostileImage(
        "data-file-offset-not-guest-offset",
        _data_file(l2_entry=COPIED | (DATA * CS)),
        CorruptImageError,
        "host cluster offset 0x50000 does not match guest cluster offset 0x0",
    ),
    HostileImage(
        "data-file-zero-cluster-offset-not-guest-offset",
        _data_file(l2_entry=(DATA * CS) | 1),  # QCOW_OFLAG_ZERO with a host offset
        CorruptImageError,
        "host cluster offset 0x50000 does not match guest cluster offset 0x0",
    ),
    HostileImage(
        "data-file-extended-l2-offset-not-guest-offset",
        _data_file(incompatible=1 << 4, l2_entry=COPIED | (DATA * CS), l2_bitmap=1),
        CorruptImageError,
        "host cluster offset 0x50000 does not match guest cluster offset 0x0",
    ),
    HostileImage(
        "data-file-extended-l2-compressed-cluster",
        _data_file(incompatible=1 << 4, l2_entry=COMPRESSED | (DATA * CS)),
        CorruptImageError,
        "compressed cluster at guest offset 0x0 in an image with an external data file",
    ),
    HostileImage(
        "data-file-shorter-than-its-clusters",
        _data_file(data=DATA_PATTERN[:1000]),
        CorruptImageError,
        "disk-data.raw: data cluster at 0x",  # then where and how much each reader reads
    ),
    HostileImage(
        "data-file-raw-shorter-than-the-disk",
        _data_file(raw=True, data=DATA_FILE_BYTES[: VIRTUAL_SIZE - 512]),
        CorruptImageError,
        "shorter than the virtual disk",
    ),
    HostileImage(
        "extended-l2-small-clusters",
        _single(incompatible=1 << 4, cluster_bits=13),
        CorruptImageError,
        "at least 14",
    ),
    HostileImage(
        "extended-l2-allocated-and-zero",
        _single(incompatible=1 << 4, l2_bitmap=1 << 3 | 1 << 35),
        CorruptImageError,
        "both allocated and zero",
    ),
    HostileImage(
        "extended-l2-allocated-without-cluster",
        _single(incompatible=1 << 4, l2_entry=0, l2_bitmap=1),
        CorruptImageError,
        "unallocated cluster",
    ),
    HostileImage(
        "unknown-incompatible-bit",
        _single(incompatible=1 << 9, feature_names={9: b"frobnication"}),
        UnsupportedImageError,
        "frobnication (incompatible bit 9)",
    ),
    HostileImage(
        "unknown-incompatible-bit-unnamed",
        _single(incompatible=1 << 40),
        UnsupportedImageError,
        "incompatible bit 40",
    ),
    HostileImage("qcow-version-1", _single(version=1), UnsupportedImageError, "version 1"),
    HostileImage(
        "compressed-cluster-past-eof",
        _single(l2_entry=COMPRESSED | (1 << 33)),
        CorruptImageError,
        "past the end of the file",
    ),
    HostileImage(
        "compressed-cluster-garbage",
        _single(l2_entry=COMPRESSED | (DATA * CS)),
        CorruptImageError,
        "compressed cluster",
    ),
    HostileImage(
        "l2-table-past-eof",
        _single(l1_entry=(1 << 30) | COPIED),
        CorruptImageError,
        "past the end of the file",
    ),
    HostileImage(
        "l2-table-unaligned",
        _single(l1_entry=(L2 * CS + 512) | COPIED),
        CorruptImageError,
        "not cluster-aligned",
    ),
    HostileImage(
        "data-cluster-past-eof",
        _single(l2_entry=(1 << 30) | COPIED),
        CorruptImageError,
        "past the end of the file",
    ),
    HostileImage(
        "data-cluster-unaligned",
        _single(l2_entry=(DATA * CS + 512) | COPIED),
        CorruptImageError,
        "not cluster-aligned",
    ),
]


# Names an object-store repository must refuse, as a name or as a backing name, for a
# repository at prefix "repo/vm1" of its bucket (S3Store; tests/source). Each would reach an
# object that exists in the tests (so a refusal is never a mere "not found").
STORE_ESCAPES: list[tuple[str, str]] = [
    ("../base.qcow2", "climbs above the prefix to repo/base.qcow2"),
    ("../vm2/base.qcow2", "climbs into a sibling repository"),
    ("sub/../../base.qcow2", "climbs out through a subdirectory"),
    ("/repo/vm2/base.qcow2", "absolute key outside the prefix"),
    ("/repo/vm1x/base.qcow2", "absolute key whose text starts like the prefix"),
    ("/base.qcow2", "absolute key at the bucket root"),
    ("s3://other-bucket/repo/vm1/base.qcow2", "another bucket, by URL"),
    ("s3://BUCKET/repo/vm1/base.qcow2", "its own bucket, by URL: no protocol name at all"),
    ("http://127.0.0.1:1/base.qcow2", "an HTTP URL"),
    ("file:base.qcow2", "a protocol prefix"),
    ('json:{"file": {"filename": "base.qcow2"}}', "QEMU's json: pseudo-protocol"),
]

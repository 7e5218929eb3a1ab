"""Hostile QCOW2 images, built byte by byte: ONE shared list for every layer's tests.

``HOSTILE`` lists ``HostileImage(name, build, error, match)``. ``build(workdir)`` writes the
image (and whatever it needs around it) and returns the path of the image to open; the
repository root is always ``workdir / "repo"``; some entries also create files outside it
(``workdir / "outside.qcow2"``) so that opening them would succeed if not refused. Opening the
image and reading its whole disk must raise exactly ``error`` with ``match`` in the message.

Every entry changes one thing in the valid image of :mod:`tests.imagebuild.qcow2_bytes`
(whose names the tests import from here too); the ``data-file-*`` entries change one thing in
its variant with an external data file (``repo/disk-data.raw``) or in that data file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filerestore.errors import (
    BackingChainTooDeepError,
    BackingFileRefusedError,
    CorruptImageError,
    ImageNotFoundError,
    UnsupportedImageError,
)
from tests.imagebuild.hostile_case import HostileImage, chain_loop, repo_dir, write_file
from tests.imagebuild.qcow2_bytes import (
    AUTOCLEAR_DATA_FILE_RAW,
    COMPRESSED,
    COPIED,
    CS,
    DATA,
    DATA_FILE_BYTES,
    DATA_PATTERN,
    INCOMPAT_DATA_FILE,
    L1,
    L2,
    VIRTUAL_SIZE,
    data_file_image,
    qcow2_image,
)

# the image builders' names that tests import from here, beside this module's own
__all__ = [
    "CS",
    "DATA",
    "DATA_FILE_BYTES",
    "DATA_PATTERN",
    "HOSTILE",
    "STORE_ESCAPES",
    "HostileImage",
    "data_file_image",
    "qcow2_image",
]


def _single(**kw: object) -> Callable[[Path], Path]:
    return lambda w: write_file(repo_dir(w) / "image.qcow2", qcow2_image(**kw))  # type: ignore[arg-type]


def _outside(workdir: Path) -> Path:
    write_file(workdir / "outside.qcow2", qcow2_image())
    return write_file(repo_dir(workdir) / "image.qcow2", qcow2_image(backing=b"../outside.qcow2"))


def _symlink_outside(workdir: Path) -> Path:
    write_file(workdir / "outside.qcow2", qcow2_image())
    (repo_dir(workdir) / "base.qcow2").symlink_to(workdir / "outside.qcow2")
    return write_file(repo_dir(workdir) / "image.qcow2", qcow2_image(backing=b"base.qcow2"))


def _loop(workdir: Path) -> Path:
    repo = repo_dir(workdir)
    write_file(repo / "b.qcow2", qcow2_image(backing=b"a.qcow2"))
    return write_file(repo / "a.qcow2", qcow2_image(backing=b"b.qcow2"))


def _hardlink_loop(workdir: Path) -> Path:
    repo = repo_dir(workdir)
    write_file(repo / "a.qcow2", qcow2_image(backing=b"b.qcow2"))
    os.link(repo / "a.qcow2", repo / "b.qcow2")
    return repo / "a.qcow2"


def _too_deep(workdir: Path) -> Path:
    repo = repo_dir(workdir)
    count = 66  # past the default limit of 64 files
    write_file(repo / f"img{count - 1:02d}.qcow2", qcow2_image())
    for i in range(count - 1):
        write_file(
            repo / f"img{i:02d}.qcow2", qcow2_image(backing=f"img{i + 1:02d}.qcow2".encode())
        )
    return repo / "img00.qcow2"


def _fifo(workdir: Path) -> Path:
    os.mkfifo(repo_dir(workdir) / "base.qcow2")
    return write_file(repo_dir(workdir) / "image.qcow2", qcow2_image(backing=b"base.qcow2"))


def _truncated_header(workdir: Path) -> Path:
    return write_file(repo_dir(workdir) / "image.qcow2", qcow2_image()[:50])


def _truncated_v3_header(workdir: Path) -> Path:
    return write_file(repo_dir(workdir) / "image.qcow2", qcow2_image()[:90])


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
        repo = repo_dir(w)
        write_file(w / "outside-data.raw", DATA_FILE_BYTES)
        if prepare is not None:
            prepare(w)
        if data is not None:
            write_file(repo / "disk-data.raw", data)
        named = name(w) if callable(name) else name
        return write_file(repo / "image.qcow2", data_file_image(named, **kw))

    return build


def _data_link_outside(w: Path) -> None:
    (repo_dir(w) / "disk-data.raw").symlink_to(w / "outside-data.raw")


def _data_fifo(w: Path) -> None:
    os.mkfifo(repo_dir(w) / "disk-data.raw")


def _data_device(w: Path) -> None:
    try:  # the same character device as /dev/zero, inside the repository
        os.mknod(repo_dir(w) / "disk-data.raw", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except PermissionError:
        import pytest

        pytest.skip("making a device node needs root")


def _raw_with_backing(w: Path) -> Path:
    write_file(repo_dir(w) / "base.qcow2", qcow2_image())
    return _data_file(raw=True, backing=b"base.qcow2")(w)


JSON_NAME = b'json:{"file": {"driver": "file", "filename": "/etc/passwd"}}'
# backing names that qemu would open through a protocol driver, by the entry's name
PROTOCOL_NAMES = {
    "json": JSON_NAME,
    "nbd": b"nbd://127.0.0.1:10809/export",
    "http": b"http://example.com/base.qcow2",
    "file-protocol": b"file:base.qcow2",
}

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
    *(
        HostileImage(f"backing-{kind}", _single(backing=name), BackingFileRefusedError, "protocol")
        for kind, name in PROTOCOL_NAMES.items()
    ),
    HostileImage(
        "backing-nul-byte",
        _single(backing=b"base.qcow2\0/etc/passwd"),
        BackingFileRefusedError,
        "NUL",
    ),
    HostileImage("backing-fifo", _fifo, BackingFileRefusedError, "not a regular file"),
    chain_loop("chain-loop", _loop),
    chain_loop("chain-self-loop", _single(backing=b"image.qcow2")),
    chain_loop("chain-hardlink-loop", _hardlink_loop),
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
    # the L1 entry (to the L2 table) and the L2 entry (to the data cluster), each pointing
    # past the end of the file or off a cluster boundary
    *(
        case
        for target, entry, cluster in (
            ("l2-table", "l1_entry", L2),
            ("data-cluster", "l2_entry", DATA),
        )
        for case in (
            HostileImage(
                f"{target}-past-eof",
                _single(**{entry: (1 << 30) | COPIED}),
                CorruptImageError,
                "past the end of the file",
            ),
            HostileImage(
                f"{target}-unaligned",
                _single(**{entry: (cluster * CS + 512) | COPIED}),
                CorruptImageError,
                "not cluster-aligned",
            ),
        )
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

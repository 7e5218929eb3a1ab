"""Hostile VMDK files, built byte by byte: extents, parent chains, grain tables and grains.

Entries follow hostile.py's contract (see :mod:`tests.imagebuild.hostile_formats`).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

from filerestore.errors import (
    BackingChainTooDeepError,
    BackingFileRefusedError,
    CorruptImageError,
    ImageNotFoundError,
    RepositoryEscapeError,
    UnsupportedImageError,
)
from tests.imagebuild import formats_bytes as fb
from tests.imagebuild.hostile_case import HostileImage, chain_loop, repo_dir, write_file

MiB = fb.MiB
PATTERN = bytes(range(256)) * 256  # one 64 KiB grain


def _flat(extent: str, *, make: Callable[[Path], None] | None = None) -> Callable[[Path], Path]:
    """A monolithicFlat descriptor whose one extent is ``extent``; ``make`` prepares it."""

    def build(w: Path) -> Path:
        repo = repo_dir(w)
        write_file(w / "outside-flat.vmdk", bytes(MiB))
        if make is not None:
            make(w)
        desc = fb.vmdk_descriptor([f'RW 2048 FLAT "{extent}" 0'])
        return write_file(repo / "disk.vmdk", desc)

    return build


def _fifo(w: Path) -> None:
    os.mkfifo(repo_dir(w) / "fifo-flat.vmdk")


def _link_out(w: Path) -> None:
    (repo_dir(w) / "link-flat.vmdk").symlink_to(w / "outside-flat.vmdk")


def _desc(text: bytes, extra: dict[str, bytes] | None = None) -> Callable[[Path], Path]:
    def build(w: Path) -> Path:
        repo = repo_dir(w)
        for name, data in (extra or {}).items():
            write_file(repo / name, data)
        return write_file(repo / "disk.vmdk", text)

    return build


def _sparse(**kw: object) -> Callable[[Path], Path]:
    return lambda w: write_file(repo_dir(w) / "disk.vmdk", fb.vmdk_sparse({0: PATTERN}, **kw))  # type: ignore[arg-type]


def _vmdk_child(w: Path, name: str, parent: str, cid: int, parent_cid: int) -> None:
    desc = fb.vmdk_descriptor(
        ['RW 4096 SPARSE "' + name + '"'],
        create_type="monolithicSparse",
        cid=cid,
        parent_cid=parent_cid,
        parent_hint=parent,
    )
    write_file(repo_dir(w) / name, fb.vmdk_sparse({0: PATTERN}, descriptor=desc))


def _vmdk_loop(w: Path) -> Path:
    _vmdk_child(w, "a.vmdk", "b.vmdk", 0xA, 0xB)
    _vmdk_child(w, "b.vmdk", "a.vmdk", 0xB, 0xA)
    return repo_dir(w) / "a.vmdk"


def _vmdk_too_deep(w: Path) -> Path:
    """66 snapshot descriptors, each a ZERO extent over the next: past the limit of 64."""
    for i in range(66):
        last = i == 65
        desc = fb.vmdk_descriptor(
            ["RW 8 ZERO"],
            create_type="monolithicFlat",
            cid=i,
            parent_cid=0xFFFFFFFF if last else i + 1,
            parent_hint=None if last else f"img{i + 1:02d}.vmdk",
        )
        write_file(repo_dir(w) / f"img{i:02d}.vmdk", desc)
    return repo_dir(w) / "img00.vmdk"


def _vmdk_cid_mismatch(w: Path) -> Path:
    _vmdk_child(w, "base.vmdk", "none.vmdk", 0xB, 0xFFFFFFFF)
    write_file(
        repo_dir(w) / "base.vmdk",
        fb.vmdk_sparse(
            {0: PATTERN},
            descriptor=fb.vmdk_descriptor(
                ['RW 4096 SPARSE "base.vmdk"'], create_type="monolithicSparse", cid=0xB
            ),
        ),
    )
    _vmdk_child(w, "top.vmdk", "base.vmdk", 0xC, 0xBAD)
    return repo_dir(w) / "top.vmdk"


def _vmdk_parent(hint: str) -> Callable[[Path], Path]:
    def build(w: Path) -> Path:
        write_file(w / "outside.vmdk", fb.vmdk_sparse({0: PATTERN}))
        _vmdk_child(w, "top.vmdk", hint, 0xC, 0xB)
        return repo_dir(w) / "top.vmdk"

    return build


def _patched(at: int, fmt: str, *values: int) -> Callable[[Path], Path]:
    """A valid sparse extent with header fields at ``at`` overwritten."""

    def build(w: Path) -> Path:
        data = bytearray(fb.vmdk_sparse({0: PATTERN}))
        struct.pack_into(fmt, data, at, *values)
        return write_file(repo_dir(w) / "disk.vmdk", bytes(data))

    return build


BOMB = __import__("zlib").compress(bytes(16 * MiB))  # one 64 KiB grain inflating to 16 MiB


HOSTILE_VMDK: list[HostileImage] = [
    # VMDK extents
    HostileImage(
        "vmdk-extent-etc-passwd", _flat("/etc/passwd"), RepositoryEscapeError, "absolute path"
    ),
    HostileImage(
        "vmdk-extent-dev-zero", _flat("/dev/zero"), RepositoryEscapeError, "absolute path"
    ),
    HostileImage(
        "vmdk-extent-dotdot", _flat("../outside-flat.vmdk"), RepositoryEscapeError, "climbs out"
    ),
    HostileImage(
        "vmdk-extent-fifo",
        _flat("fifo-flat.vmdk", make=_fifo),
        RepositoryEscapeError,
        "not a regular file",
    ),
    HostileImage(
        "vmdk-extent-symlink-outside",
        _flat("link-flat.vmdk", make=_link_out),
        RepositoryEscapeError,
        "outside the repository",
    ),
    HostileImage(
        "vmdk-extent-protocol", _flat("nbd://127.0.0.1/x"), BackingFileRefusedError, "protocol"
    ),
    HostileImage(
        "vmdk-extent-windows-drive",
        _flat("C:\\vms\\disk-flat.vmdk"),
        BackingFileRefusedError,
        "absolute Windows path",
    ),
    HostileImage(
        "vmdk-extent-missing",
        _flat("gone-flat.vmdk"),
        ImageNotFoundError,
        "gone-flat.vmdk",
    ),
    HostileImage(
        "vmdk-flat-extent-short",
        _desc(fb.vmdk_descriptor(['RW 4096 FLAT "d-flat.vmdk" 0']), {"d-flat.vmdk": bytes(MiB)}),
        CorruptImageError,
        "ends past the end of the file",
    ),
    HostileImage(
        "vmdk-descriptor-too-large",
        _desc(fb.vmdk_descriptor(["RW 8 ZERO"]) + b"#" * (1 << 20)),
        UnsupportedImageError,
        "larger than 1 MiB",
    ),
    HostileImage(
        "vmdk-extent-size-5000-digits",
        _desc(fb.vmdk_descriptor(["RW " + "9" * 5000 + ' FLAT "d-flat.vmdk" 0'])),
        CorruptImageError,
        "invalid VMDK extent line",
    ),
    HostileImage(
        "vmdk-create-type-vmfssparse",
        _desc(fb.vmdk_descriptor(["RW 8 ZERO"], create_type="vmfsSparse")),
        UnsupportedImageError,
        "createType 'vmfsSparse'",
    ),
    HostileImage(
        "vmdk-extent-sesparse",
        _desc(fb.vmdk_descriptor(['RW 8 SESPARSE "x.vmdk"'])),
        UnsupportedImageError,
        "SESPARSE",
    ),
    HostileImage(
        "vmdk-extent-noaccess",
        _desc(fb.vmdk_descriptor(['NOACCESS 8 FLAT "x.vmdk" 0'])),
        UnsupportedImageError,
        "NOACCESS",
    ),
    # VMDK chains
    chain_loop("vmdk-parent-loop", _vmdk_loop),
    HostileImage("vmdk-chain-too-deep", _vmdk_too_deep, BackingChainTooDeepError, "limit of 64"),
    HostileImage(
        "vmdk-parent-cid-mismatch",
        _vmdk_cid_mismatch,
        CorruptImageError,
        "not the disk it was made on",
    ),
    HostileImage(
        "vmdk-parent-etc-passwd",
        _vmdk_parent("/etc/passwd"),
        BackingFileRefusedError,
        "outside the repository",
    ),
    HostileImage(
        "vmdk-parent-dotdot",
        _vmdk_parent("../outside.vmdk"),
        BackingFileRefusedError,
        "outside the repository",
    ),
    HostileImage(
        "vmdk-parent-windows-drive",
        _vmdk_parent("D:\\vms\\base.vmdk"),
        BackingFileRefusedError,
        "absolute Windows path",
    ),
    # VMDK tables and grains
    HostileImage(
        "vmdk-gd-past-eof", _sparse(gd_offset=1 << 20), CorruptImageError, "grain directory"
    ),
    HostileImage(
        "vmdk-gd-absurd",
        _patched(12, "<QQ", 1 << 40, 1),
        UnsupportedImageError,
        "grain directory of",
    ),
    HostileImage("vmdk-gt-past-eof", _sparse(gd_entry=1 << 24), CorruptImageError, "grain table"),
    HostileImage(
        "vmdk-gt-too-large", _sparse(gtes=4096), UnsupportedImageError, "grain tables of 4096"
    ),
    HostileImage(
        "vmdk-grain-not-power-of-two",
        _sparse(grain_sectors=100),
        CorruptImageError,
        "not a power of two",
    ),
    HostileImage(
        "vmdk-grain-too-large",
        # the header's grainSize (offset 20) patched: a real 2 GiB grain would be written out
        _patched(20, "<Q", 1 << 22),
        UnsupportedImageError,
        "above QEMU's 1 GiB",
    ),
    HostileImage("vmdk-version-4", _sparse(version=4), UnsupportedImageError, "version 4"),
    HostileImage("vmdk-truncated", _sparse(overhead=1 << 20), CorruptImageError, "truncated"),
    HostileImage(
        "vmdk-compressed-grain-bomb",
        _sparse(compress=True, raw_grain=BOMB),
        CorruptImageError,
        "inflates past the grain size",
    ),
    HostileImage(
        "vmdk-compressed-grain-huge",
        _sparse(compress=True, grain_sectors=1 << 15, capacity=16 * MiB),
        UnsupportedImageError,
        "compressed grains of 32768 sectors",
    ),
    HostileImage(
        "vmdk-compressed-grain-garbage",
        _sparse(compress=True, raw_grain=b"\x78\x9c" + bytes(range(200))),
        CorruptImageError,
        "compressed grain",
    ),
    HostileImage(
        "vmdk-newline-bytes-damaged",
        lambda w: write_file(
            repo_dir(w) / "disk.vmdk",
            fb.vmdk_sparse({0: PATTERN}).replace(b"\n \r\n", b"\n \n\n", 1),
        ),
        CorruptImageError,
        "newline-detection",
    ),
]

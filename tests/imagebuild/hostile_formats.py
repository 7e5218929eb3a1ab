"""Hostile VMDK, VHD and VHDX files, built byte by byte: the sibling of hostile.py's QCOW2 list.

``HOSTILE_FORMATS`` lists ``HostileImage(name, build, error, match)`` with hostile.py's
contract: ``build(workdir)`` writes the image (and what it needs) and returns the path to
open; the repository root is ``workdir / "repo"``; files outside it (``workdir /
"outside*"``) exist so that following a name there would succeed if it were not refused.
Opening and reading the whole disk must raise exactly ``error`` with ``match`` in its message.
"""

from __future__ import annotations

import os
import struct
import uuid
from collections.abc import Callable
from pathlib import Path

from filerestore.errors import (
    BackingChainLoopError,
    BackingChainTooDeepError,
    BackingFileRefusedError,
    CorruptImageError,
    RepositoryEscapeError,
    UnsupportedImageError,
)
from tests.imagebuild import formats_bytes as fb
from tests.imagebuild.hostile import HostileImage

MiB = fb.MiB
PATTERN = bytes(range(256)) * 256  # one 64 KiB grain


def _repo(w: Path) -> Path:
    (w / "repo").mkdir(parents=True, exist_ok=True)
    return w / "repo"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _flat(extent: str, *, make: Callable[[Path], None] | None = None) -> Callable[[Path], Path]:
    """A monolithicFlat descriptor whose one extent is ``extent``; ``make`` prepares it."""

    def build(w: Path) -> Path:
        repo = _repo(w)
        _write(w / "outside-flat.vmdk", bytes(MiB))
        if make is not None:
            make(w)
        desc = fb.vmdk_descriptor([f'RW 2048 FLAT "{extent}" 0'])
        return _write(repo / "disk.vmdk", desc)

    return build


def _fifo(w: Path) -> None:
    os.mkfifo(_repo(w) / "fifo-flat.vmdk")


def _link_out(w: Path) -> None:
    (_repo(w) / "link-flat.vmdk").symlink_to(w / "outside-flat.vmdk")


def _desc(text: bytes, extra: dict[str, bytes] | None = None) -> Callable[[Path], Path]:
    def build(w: Path) -> Path:
        repo = _repo(w)
        for name, data in (extra or {}).items():
            _write(repo / name, data)
        return _write(repo / "disk.vmdk", text)

    return build


def _sparse(**kw: object) -> Callable[[Path], Path]:
    return lambda w: _write(_repo(w) / "disk.vmdk", fb.vmdk_sparse({0: PATTERN}, **kw))  # type: ignore[arg-type]


def _vmdk_child(w: Path, name: str, parent: str, cid: int, parent_cid: int) -> None:
    desc = fb.vmdk_descriptor(
        ['RW 4096 SPARSE "' + name + '"'],
        create_type="monolithicSparse",
        cid=cid,
        parent_cid=parent_cid,
        parent_hint=parent,
    )
    _write(_repo(w) / name, fb.vmdk_sparse({0: PATTERN}, descriptor=desc))


def _vmdk_loop(w: Path) -> Path:
    _vmdk_child(w, "a.vmdk", "b.vmdk", 0xA, 0xB)
    _vmdk_child(w, "b.vmdk", "a.vmdk", 0xB, 0xA)
    return _repo(w) / "a.vmdk"


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
        _write(_repo(w) / f"img{i:02d}.vmdk", desc)
    return _repo(w) / "img00.vmdk"


def _vmdk_cid_mismatch(w: Path) -> Path:
    _vmdk_child(w, "base.vmdk", "none.vmdk", 0xB, 0xFFFFFFFF)
    _write(
        _repo(w) / "base.vmdk",
        fb.vmdk_sparse(
            {0: PATTERN},
            descriptor=fb.vmdk_descriptor(
                ['RW 4096 SPARSE "base.vmdk"'], create_type="monolithicSparse", cid=0xB
            ),
        ),
    )
    _vmdk_child(w, "top.vmdk", "base.vmdk", 0xC, 0xBAD)
    return _repo(w) / "top.vmdk"


def _vmdk_parent(hint: str) -> Callable[[Path], Path]:
    def build(w: Path) -> Path:
        _write(w / "outside.vmdk", fb.vmdk_sparse({0: PATTERN}))
        _vmdk_child(w, "top.vmdk", hint, 0xC, 0xB)
        return _repo(w) / "top.vmdk"

    return build


def _patched(at: int, fmt: str, *values: int) -> Callable[[Path], Path]:
    """A valid sparse extent with header fields at ``at`` overwritten."""

    def build(w: Path) -> Path:
        data = bytearray(fb.vmdk_sparse({0: PATTERN}))
        struct.pack_into(fmt, data, at, *values)
        return _write(_repo(w) / "disk.vmdk", bytes(data))

    return build


BOMB = __import__("zlib").compress(bytes(16 * MiB))  # one 64 KiB grain inflating to 16 MiB


# --- VHD ----------------------------------------------------------------------------------

VHD_SIZE = 4 * MiB


def _vhd_dynamic(
    *,
    bat_offset: int = 1536,
    entries: int = 2,
    block: int = 2 * MiB,
    bat0: int = 0xFFFFFFFF,
    size: int = VHD_SIZE,
    truncate: int | None = None,
    footer_checksum_delta: int = 0,
) -> bytes:
    footer = bytearray(fb.vhd_footer(size, 3, uuid.uuid4().bytes))
    struct.pack_into(
        ">I",
        footer,
        64,
        (struct.unpack_from(">I", footer, 64)[0] + footer_checksum_delta) & 0xFFFFFFFF,
    )
    header = bytearray(1024)
    struct.pack_into(
        ">8sQQIIII",
        header,
        0,
        b"cxsparse",
        0xFFFFFFFFFFFFFFFF,
        bat_offset,
        0x10000,
        entries,
        block,
        0,
    )
    struct.pack_into(">I", header, 36, fb.vhd_checksum(header, 36))
    bat = struct.pack(">I", bat0) + b"\xff" * 4 * (entries - 1)
    out = bytes(footer) + bytes(header) + bat.ljust(512, b"\xff") + bytes(footer)
    return out[:truncate] if truncate else out


def _vhd(**kw: object) -> Callable[[Path], Path]:
    return lambda w: _write(_repo(w) / "disk.vhd", _vhd_dynamic(**kw))  # type: ignore[arg-type]


def _vhd_child(
    locators: dict[bytes, bytes] | None,
    *,
    parent_id: bytes | None = None,
    outside: bool = False,
    parent_name: str = "base.vhd",
) -> Callable[[Path], Path]:
    def build(w: Path) -> Path:
        base = _vhd_dynamic()
        _write((w if outside else _repo(w)) / ("outside.vhd" if outside else "base.vhd"), base)
        _repo(w)
        child = fb.vhd_differencing(
            base[:512],
            [(0, bytes(512))],
            locators=locators,
            parent_id=parent_id,
            parent_name=parent_name,
        )
        return _write(_repo(w) / "child.vhd", child)

    return build


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


# --- VHDX ---------------------------------------------------------------------------------


def _vhdx(**kw: object) -> Callable[[Path], Path]:
    return lambda w: _write(_repo(w) / "disk.vhdx", fb.vhdx_image(4 * MiB, {}, **kw))  # type: ignore[arg-type]


def _vhdx_loop(w: Path) -> Path:
    a_guid, b_guid = uuid.uuid4(), uuid.uuid4()
    for name, own, other, parent in (("a", a_guid, b_guid, "b"), ("b", b_guid, a_guid, "a")):
        locator = {"parent_linkage": "{" + str(other) + "}", "relative_path": f".\\{parent}.vhdx"}
        _write(
            _repo(w) / f"{name}.vhdx",
            fb.vhdx_image(4 * MiB, {}, locator=locator, data_write=own.bytes_le),
        )
    return _repo(w) / "a.vhdx"


def _vhdx_child(locator: dict[str, str]) -> Callable[[Path], Path]:
    return lambda w: _write(_repo(w) / "child.vhdx", fb.vhdx_image(4 * MiB, {}, locator=locator))


def _vhdx_truncated(w: Path) -> Path:
    return _write(_repo(w) / "disk.vhdx", fb.vhdx_image(4 * MiB, {})[: 300 * 1024])


UNKNOWN = uuid.UUID("01234567-89AB-CDEF-0123-456789ABCDEF").bytes_le

HOSTILE_FORMATS: list[HostileImage] = [
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
        __import__("filerestore.errors").errors.ImageNotFoundError,
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
    HostileImage("vmdk-parent-loop", _vmdk_loop, BackingChainLoopError, "already in the chain"),
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
        lambda w: _write(
            _repo(w) / "disk.vmdk", fb.vmdk_sparse({0: PATTERN}).replace(b"\n \r\n", b"\n \n\n", 1)
        ),
        CorruptImageError,
        "newline-detection",
    ),
    # VHD
    HostileImage(
        "vhd-footer-checksum", _vhd(footer_checksum_delta=1), CorruptImageError, "checksum"
    ),
    HostileImage(
        "vhd-bat-past-eof", _vhd(bat_offset=1 << 30), CorruptImageError, "block allocation table"
    ),
    HostileImage("vhd-bat-too-small", _vhd(entries=1), CorruptImageError, "too small"),
    HostileImage(
        "vhd-block-past-eof", _vhd(bat0=1 << 24), CorruptImageError, "past the end of the file"
    ),
    HostileImage("vhd-block-size-odd", _vhd(block=3 * MiB), CorruptImageError, "power of two"),
    HostileImage("vhd-too-large", _vhd(size=3 << 40, entries=2), UnsupportedImageError, "2040 GiB"),
    HostileImage(
        "vhd-truncated", _vhd(bat0=4, truncate=2048), CorruptImageError, "past the end of the file"
    ),
    HostileImage(
        "vhd-parent-w2ku-only",
        _vhd_child({b"W2ku": _utf16("C:\\vms\\base.vhd")}, parent_name=""),
        BackingFileRefusedError,
        "absolute Windows path",
    ),
    HostileImage(
        "vhd-parent-w2ru-outside",
        _vhd_child({b"W2ru": _utf16("..\\outside.vhd")}, outside=True),
        BackingFileRefusedError,
        "outside the repository",
    ),
    HostileImage(
        "vhd-parent-macx-etc",
        _vhd_child({b"MacX": b"file:///etc/passwd"}),
        BackingFileRefusedError,
        "outside the repository",
    ),
    HostileImage(
        "vhd-parent-id-mismatch",
        _vhd_child(None, parent_id=bytes(16)),
        CorruptImageError,
        "not the disk it was made on",
    ),
    # VHDX
    HostileImage(
        "vhdx-headers-bad-crc", _vhdx(bad_headers=True), CorruptImageError, "neither VHDX header"
    ),
    HostileImage(
        "vhdx-bat-past-eof",
        _vhdx(region_bat_offset=1 << 30),
        CorruptImageError,
        "ends past the end of the file",
    ),
    HostileImage(
        "vhdx-block-size-512m", _vhdx(block_size_field=512 * MiB), CorruptImageError, "block size"
    ),
    HostileImage(
        "vhdx-required-region",
        _vhdx(extra_region=(UNKNOWN, 1)),
        UnsupportedImageError,
        "required region",
    ),
    HostileImage(
        "vhdx-metadata-item-huge",
        _vhdx(item_length=(0, 64 * MiB)),
        CorruptImageError,
        "1 MB at most",
    ),
    HostileImage(
        "vhdx-metadata-item-short",
        _vhdx(item_length=(0, 4)),
        CorruptImageError,
        "is too short",
    ),
    HostileImage(
        "vhdx-required-metadata",
        _vhdx(extra_metadata=(UNKNOWN, 4)),
        UnsupportedImageError,
        "required metadata",
    ),
    HostileImage(
        "vhdx-block-past-eof",
        _vhdx(bat_override={0: (1 << 30) | 6}),
        CorruptImageError,
        "past the end of the file",
    ),
    HostileImage("vhdx-truncated", _vhdx_truncated, CorruptImageError, "shorter than its headers"),
    HostileImage("vhdx-parent-loop", _vhdx_loop, BackingChainLoopError, "already in the chain"),
    HostileImage(
        "vhdx-parent-absolute-only",
        _vhdx_child(
            {
                "parent_linkage": "{" + str(uuid.uuid4()) + "}",
                "absolute_win32_path": "C:\\vms\\base.vhdx",
            }
        ),
        BackingFileRefusedError,
        "no relative_path",
    ),
    HostileImage(
        "vhdx-parent-relative-outside",
        _vhdx_child(
            {
                "parent_linkage": "{" + str(uuid.uuid4()) + "}",
                "relative_path": "..\\..\\outside.vhdx",
            }
        ),
        BackingFileRefusedError,
        "outside the repository",
    ),
]

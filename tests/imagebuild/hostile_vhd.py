"""Hostile VHD and VHDX files, built byte by byte: headers, tables, blocks and parents.

Entries follow hostile.py's contract (see :mod:`tests.imagebuild.hostile_formats`).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from pathlib import Path

from filerestore.errors import (
    BackingFileRefusedError,
    CorruptImageError,
    UnsupportedImageError,
)
from tests.imagebuild import formats_bytes as fb
from tests.imagebuild.hostile_case import HostileImage, chain_loop, repo_dir, write_file

MiB = fb.MiB


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
    header = fb.vhd_dynamic_header(bat_offset, entries, block)
    struct.pack_into(">I", header, 36, fb.vhd_checksum(header, 36))
    bat = struct.pack(">I", bat0) + b"\xff" * 4 * (entries - 1)
    out = bytes(footer) + bytes(header) + bat.ljust(512, b"\xff") + bytes(footer)
    return out[:truncate] if truncate else out


def _vhd(**kw: object) -> Callable[[Path], Path]:
    return lambda w: write_file(repo_dir(w) / "disk.vhd", _vhd_dynamic(**kw))  # type: ignore[arg-type]


def _vhd_child(
    locators: dict[bytes, bytes] | None,
    *,
    parent_id: bytes | None = None,
    outside: bool = False,
    parent_name: str = "base.vhd",
) -> Callable[[Path], Path]:
    def build(w: Path) -> Path:
        base = _vhd_dynamic()
        write_file(
            (w if outside else repo_dir(w)) / ("outside.vhd" if outside else "base.vhd"), base
        )
        repo_dir(w)
        child = fb.vhd_differencing(
            base[:512],
            [(0, bytes(512))],
            locators=locators,
            parent_id=parent_id,
            parent_name=parent_name,
        )
        return write_file(repo_dir(w) / "child.vhd", child)

    return build


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


# --- VHDX ---------------------------------------------------------------------------------


def _vhdx(**kw: object) -> Callable[[Path], Path]:
    return lambda w: write_file(repo_dir(w) / "disk.vhdx", fb.vhdx_image(4 * MiB, {}, **kw))  # type: ignore[arg-type]


def _vhdx_loop(w: Path) -> Path:
    a_guid, b_guid = uuid.uuid4(), uuid.uuid4()
    for name, own, other, parent in (("a", a_guid, b_guid, "b"), ("b", b_guid, a_guid, "a")):
        locator = {"parent_linkage": "{" + str(other) + "}", "relative_path": f".\\{parent}.vhdx"}
        write_file(
            repo_dir(w) / f"{name}.vhdx",
            fb.vhdx_image(4 * MiB, {}, locator=locator, data_write=own.bytes_le),
        )
    return repo_dir(w) / "a.vhdx"


def _vhdx_child(locator: dict[str, str]) -> Callable[[Path], Path]:
    return lambda w: write_file(
        repo_dir(w) / "child.vhdx", fb.vhdx_image(4 * MiB, {}, locator=locator)
    )


def _vhdx_truncated(w: Path) -> Path:
    return write_file(repo_dir(w) / "disk.vhdx", fb.vhdx_image(4 * MiB, {})[: 300 * 1024])


UNKNOWN = uuid.UUID("01234567-89AB-CDEF-0123-456789ABCDEF").bytes_le

HOSTILE_VHD: list[HostileImage] = [
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
    chain_loop("vhdx-parent-loop", _vhdx_loop),
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

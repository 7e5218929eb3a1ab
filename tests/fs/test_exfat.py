"""exFAT (parsed by filerestore), against the source tree and dissect.fat's exFAT reader."""

from __future__ import annotations

import stat
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from dissect.fat import exfat as dissect_exfat

from filerestore.blockio import BytesReader, FileReader
from filerestore.errors import FilesystemError
from filerestore.fs import detect_filesystem, exfat, open_filesystem
from filerestore.fs.base import Filesystem
from filerestore.fs.entry import Entry, EntryKind
from tests.fs.conftest import opened_image
from tests.fs.treecheck import compare_contents, compare_fat_walk
from tests.imagebuild import fs_windows
from tests.imagebuild.fs_windows import BuiltImage, read_big_file

SECOND = 1_000_000_000


@pytest.fixture(scope="module")
def img() -> BuiltImage:
    return fs_windows.exfat_image()


@pytest.fixture(scope="module")
def fs(img: BuiltImage) -> Iterator[Filesystem[Any]]:
    yield from opened_image(img.image, exfat.open_fs)


@pytest.fixture(scope="module")
def theirs(img: BuiltImage) -> dict[str, Any]:
    """dissect.fat's File entry sets by path."""
    out: dict[str, Any] = {}

    def visit(prefix: str, children: dict[str, Any]) -> None:
        for name, (file, sub) in children.items():
            out[f"{prefix}/{name}"] = file
            if sub is not None:
                visit(f"{prefix}/{name}", sub)

    with img.image.open("rb") as fh:
        visit("", dissect_exfat.ExFAT(fh).files["/"][1])
    return out


def _spec_time_ns(stamp: int, ten_ms: int, tz: int) -> int:
    """exFAT spec 7.4.8-7.4.10, written independently of the module under test."""
    local = datetime(
        1980 + (stamp >> 25),
        (stamp >> 21) & 15,
        (stamp >> 16) & 31,
        (stamp >> 11) & 31,
        (stamp >> 5) & 63,
        (stamp & 31) * 2,
        tzinfo=UTC,
    )
    offset_minutes = 0
    if tz & 0x80:
        offset_minutes = ((tz & 0x7F) ^ 0x40) - 0x40  # sign-extend 7 bits
        offset_minutes *= 15
    return (int(local.timestamp()) - offset_minutes * 60) * SECOND + ten_ms * 10_000_000


def test_detect(img: BuiltImage) -> None:
    with FileReader(img.image) as reader:
        assert exfat.detect(reader) == "exfat"
        assert detect_filesystem(reader) == "exfat"  # a whole-disk exFAT image
        opened = open_filesystem(reader)
        assert opened.kind == "exfat"
        opened.close()
    assert exfat.detect(BytesReader(bytes(512))) is None
    with FileReader(fs_windows.fat_image(32).image) as reader:
        assert exfat.detect(reader) is None


def test_label(fs: Filesystem[Any]) -> None:
    assert fs.label == "FREXFAT"  # mkfs.exfat -L in the recipe


def test_walk_matches_source_tree(img: BuiltImage, walked: dict[str, Entry]) -> None:
    # exfat-fuse writes whole seconds (odd ones through the 10 ms field)
    assert compare_fat_walk(img.tree, walked, SECOND) == []
    assert [p for p, e in walked.items() if e.ctime_ns is not None] == []


def test_metadata_matches_dissect(walked: dict[str, Entry], theirs: dict[str, Any]) -> None:
    assert set(walked) == set(theirs)
    for path, entry in walked.items():
        meta, stream = theirs[path].metadata, theirs[path].stream
        assert entry.mtime_ns == _spec_time_ns(
            meta.modified_time, meta.modified_offset, meta.modified_timezone
        ), path
        assert entry.btime_ns == _spec_time_ns(
            meta.create_time, meta.create_offset, meta.create_timezone
        ), path
        assert entry.atime_ns == _spec_time_ns(meta.access_time, 0, meta.access_timezone), path
        if entry.kind is EntryKind.FILE:
            assert entry.size == stream.data_length, path


def test_names(img: BuiltImage, fs: Filesystem[Any]) -> None:
    names = {e.name for e in fs.list_dir("/unicode")}
    assert names == {p.name for p in (img.tree / "unicode").iterdir()}
    assert "emoji-😀.txt" in names  # a surrogate pair in the name entries
    long_name = "L" * 251 + ".txt"  # 17 File Name entries
    assert fs.open("/" + long_name).read_at(0, 100) == b"long name\n"
    assert fs.stat("/HELLO.TXT").path == "/hello.txt"  # Windows resolves any case


def test_contents_byte_exact(img: BuiltImage, fs: Filesystem[Any]) -> None:
    assert compare_contents(img.tree, fs) == []


def test_large_directory_listing(fs: Filesystem[Any]) -> None:
    entries = list(fs.list_dir("/many"))
    assert sorted(e.name for e in entries) == [f"file{i:05d}.txt" for i in range(2000)]


# --- hand-damaged copies ----------------------------------------------------------------------


def _set_offset(walked: dict[str, Entry], path: str) -> int:
    offset = walked[path].inode
    assert offset is not None
    return offset


def _reseal(data: bytearray, offset: int) -> None:
    count = data[offset + 1]
    raw = bytes(data[offset : offset + (count + 1) * 32])
    struct.pack_into("<H", data, offset + 2, exfat.entry_set_checksum(raw))


def test_valid_data_length_reads_zeros_past_it(img: BuiltImage, walked: dict[str, Entry]) -> None:
    data = bytearray(img.image.read_bytes())
    offset = _set_offset(walked, "/docs/data.bin")
    struct.pack_into("<Q", data, offset + 32 + 8, 100_000)  # stream ValidDataLength
    _reseal(data, offset)
    opened = exfat.open_fs(BytesReader(bytes(data)))
    reader = opened.open("/docs/data.bin")
    want = (img.tree / "docs/data.bin").read_bytes()
    assert reader.size == len(want)
    got = reader.read_at(0, reader.size)
    assert got[:100_000] == want[:100_000]
    assert got[100_000:] == bytes(len(want) - 100_000)


def test_checksum_mismatch_is_refused(img: BuiltImage, walked: dict[str, Entry]) -> None:
    data = bytearray(img.image.read_bytes())
    offset = _set_offset(walked, "/hello.txt")
    data[offset + 4] ^= 0x01  # the read-only attribute, without resealing
    with pytest.raises(FilesystemError, match="checksum"):
        list(exfat.open_fs(BytesReader(bytes(data))).list_dir("/"))
    _reseal(data, offset)  # resealed, the same change is read as the read-only attribute
    entry = exfat.open_fs(BytesReader(bytes(data))).stat("/hello.txt")
    assert entry.mode == stat.S_IFREG | 0o444


def test_looping_cluster_chain_is_refused(img: BuiltImage, walked: dict[str, Entry]) -> None:
    data = bytearray(img.image.read_bytes())
    boot = exfat.parse_boot_sector(bytes(data[:512]), len(data))
    offset = _set_offset(walked, "/docs/data.bin")
    stream = offset + 32
    data[stream + 1] &= ~exfat.FLAG_NO_FAT_CHAIN  # follow the FAT ...
    (first,) = struct.unpack_from("<I", data, stream + 20)
    struct.pack_into("<I", data, boot.fat_offset + 4 * first, first)  # ... which loops
    _reseal(data, offset)
    opened = exfat.open_fs(BytesReader(bytes(data)))
    with pytest.raises(FilesystemError, match="cluster chain"):
        opened.open("/docs/data.bin")


def test_bad_boot_sector_is_refused(img: BuiltImage) -> None:
    boot = bytearray(img.image.read_bytes()[: 1 << 20])
    boot[108] = 20  # BytesPerSectorShift past 12
    with pytest.raises(FilesystemError, match="exfat"):
        exfat.open_fs(BytesReader(bytes(boot)))


def test_read_a_large_file() -> None:
    assert read_big_file("exfat", exfat.open_fs)

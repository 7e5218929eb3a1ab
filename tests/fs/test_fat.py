"""FAT12/16/32 through libfsfat, against the source tree, 7-Zip's listing and dissect.fat."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import pytest
from dissect.fat import fat as dissect_fat

from filerestore.blockio import BytesReader, FileReader
from filerestore.errors import FilesystemError, NotASymlinkError
from filerestore.fs import detect_filesystem, fat, open_filesystem
from filerestore.fs.base import Filesystem
from filerestore.fs.entry import Entry, EntryKind
from tests.fs.conftest import opened_image
from tests.fs.treecheck import compare_contents, compare_fat_walk
from tests.imagebuild import fs_windows
from tests.imagebuild.fs_windows import (
    BuiltImage,
    read_big_file,
    seven_zip_listing,
    seven_zip_time_ns,
)

BITS = (12, 16, 32)
TWO_SECONDS = 2_000_000_000


@pytest.fixture(scope="module", params=BITS)
def img(request: pytest.FixtureRequest) -> BuiltImage:
    return fs_windows.fat_image(request.param)


@pytest.fixture(scope="module")
def fs(img: BuiltImage) -> Iterator[Filesystem[Any]]:
    yield from opened_image(img.image, fat.open_fs)


def _bits(img: BuiltImage) -> int:
    return int(img.image.name[3:5])


def test_detect_fat_type_by_cluster_count(img: BuiltImage) -> None:
    bits = _bits(img)
    with FileReader(img.image) as reader:
        assert fat.detect(reader) == f"fat{bits}"  # mkfs.vfat -F bits in the recipe
        assert detect_filesystem(reader) == f"fat{bits}"  # a whole-disk FAT image
        opened = open_filesystem(reader)
        assert opened.kind == f"fat{bits}"
        opened.close()
    with img.image.open("rb") as fh:  # and dissect.fat's own reading of the BPB
        assert dissect_fat.FATFS(fh).type.name == f"FAT{bits}"


def test_detect_refuses_other_boot_sectors() -> None:
    assert fat.detect(BytesReader(bytes(512))) is None
    with FileReader(fs_windows.ntfs_image().image) as reader:
        assert fat.detect(reader) is None
    with FileReader(fs_windows.exfat_image().image) as reader:
        assert fat.detect(reader) is None


def test_bpb_validation(img: BuiltImage) -> None:
    boot = bytearray(img.image.read_bytes()[:512])
    assert fat.parse_bpb(bytes(boot)) is not None
    for offset, value in ((11, b"\x00\x03"), (13, b"\x03"), (14, b"\x00\x00"), (16, b"\x03")):
        bad = bytearray(boot)
        bad[offset : offset + len(value)] = value
        assert fat.parse_bpb(bytes(bad)) is None, offset


def test_label(img: BuiltImage, fs: Filesystem[Any]) -> None:
    assert fs.label == f"FRFAT{_bits(img)}"


def test_walk_matches_source_tree(img: BuiltImage, walked: dict[str, Entry]) -> None:
    # FAT keeps even seconds; mcopy -m under TZ=UTC wrote the source mtime
    assert compare_fat_walk(img.tree, walked, TWO_SECONDS) == []


def test_metadata_matches_dissect(img: BuiltImage, walked: dict[str, Entry]) -> None:
    with img.image.open("rb") as fh:
        other = _dissect_walk(dissect_fat.FATFS(fh).root, "")
    assert other.keys() == {p.casefold() for p in walked}
    for path, entry in walked.items():
        theirs = other[path.casefold()]
        # dissect does not apply the NT lower-case flags
        assert theirs.name.casefold() == entry.name.casefold(), path
        assert entry.mtime_ns == _ns(theirs.mtime), path
        assert entry.btime_ns == _ns(theirs.ctime), path
        assert entry.atime_ns == _ns(theirs.atime), path
        assert entry.ctime_ns is None
        assert entry.inode is not None
        if entry.kind is EntryKind.FILE:
            assert entry.size == theirs.size


def _dissect_walk(directory: Any, prefix: str) -> dict[str, Any]:
    """dissect.fat's entries by case-folded path (one pass: its get() rescans directories)."""
    out: dict[str, Any] = {}
    for child in directory.iterdir():
        if child.name in (".", "..") or child.is_volume_id():  # the label is no file
            continue
        path = f"{prefix}/{child.name}"
        out[path.casefold()] = child
        if child.is_directory():
            out.update(_dissect_walk(child, path))
    return out


def _ns(value: Any) -> int:
    return int(value.replace(tzinfo=UTC).timestamp() * 1_000_000) * 1000


def test_metadata_matches_7zip(img: BuiltImage, walked: dict[str, Entry]) -> None:
    listing = seven_zip_listing(img.image)
    compared = 0
    for path, entry in walked.items():
        facts = listing.get(path)
        if facts is None:  # 7-Zip prints OEM 8.3 names as raw bytes ("caf\x90.txt")
            assert not path.isascii()
            continue
        assert entry.mtime_ns == seven_zip_time_ns(facts["Modified"]), path
        assert entry.btime_ns == seven_zip_time_ns(facts["Created"]), path
        if entry.kind is EntryKind.FILE:
            assert entry.size == int(facts["Size"]), path
        compared += 1
    assert compared >= len(walked) - 1


def test_names(img: BuiltImage, fs: Filesystem[Any]) -> None:
    names = {e.name for e in fs.list_dir("/unicode")}
    assert names == {p.name for p in (img.tree / "unicode").iterdir()}
    # "café.txt" has no long name: mtools wrote the 8.3 name CAF\x90.TXT + lower-case flags
    assert "café.txt" in names
    long_name = "L" * 251 + ".txt"
    assert fs.open("/" + long_name).read_at(0, 100) == b"long name\n"
    assert fs.stat("/HELLO.TXT").path == "/hello.txt"  # Windows resolves any case
    with pytest.raises(NotASymlinkError):
        fs.read_link("/hello.txt")


def test_contents_byte_exact(img: BuiltImage, fs: Filesystem[Any]) -> None:
    assert compare_contents(img.tree, fs) == []
    data = fs.open("/docs/data.bin")
    want = (img.tree / "docs/data.bin").read_bytes()
    for offset in (0, 511, 4095, 1 << 20, len(want) - 1):
        assert data.read_at(offset, 10_000) == want[offset : offset + 10_000]


def test_large_directory_listing() -> None:
    built = fs_windows.fat_image(32)
    with FileReader(built.image) as reader:
        opened = fat.open_fs(reader)
        entries = list(opened.list_dir("/many"))
        opened.close()
    assert sorted(e.name for e in entries) == [f"file{i:05d}.txt" for i in range(2000)]
    assert all(e.mtime_ns for e in entries)


def test_corrupt_directory_gives_filesystem_error(img: BuiltImage) -> None:
    data = bytearray(img.image.read_bytes())
    # a directory entry whose cluster points past the volume
    with FileReader(img.image) as reader:
        opened = fat.open_fs(reader)
        docs = opened._children_of(opened._root())["docs"]
        entry_offset = int(docs.get_identifier())
        opened.close()
    struct.pack_into("<H", data, entry_offset + 20, 0x0FFF)  # DIR_FstClusHI (FAT32 only)
    struct.pack_into("<H", data, entry_offset + 26, 0xFFF0)  # DIR_FstClusLO
    broken = fat.open_fs(BytesReader(bytes(data)))
    with pytest.raises(FilesystemError, match="fat"):
        list(broken.walk("/docs"))
    # an invalid BPB is refused by name
    data[11:13] = b"\x00\x00"
    with pytest.raises(FilesystemError, match="BPB"):
        fat.open_fs(BytesReader(bytes(data)))


def test_read_a_large_file() -> None:
    assert read_big_file("fat32", fat.open_fs)

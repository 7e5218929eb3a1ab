"""NTFS through libfsntfs, against the source tree, 7-Zip's listing and dissect.ntfs."""

from __future__ import annotations

import stat
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from filerestore.blockio import BytesReader, FileReader
from filerestore.errors import (
    FilesystemError,
    PathNotFoundError,
    SymlinkLoopError,
    UnsupportedImageError,
)
from filerestore.fs import detect_filesystem, ntfs, open_filesystem
from filerestore.fs.base import Filesystem
from filerestore.fs.entry import Entry, EntryKind
from filerestore.fs.ntfs import windows_target_to_posix
from tests.fs.conftest import opened_image
from tests.fs.treecheck import compare_contents, kind_of, tree_entries
from tests.imagebuild import fs_windows
from tests.imagebuild.fs_windows import (
    BuiltImage,
    read_big_file,
    seven_zip_listing,
    seven_zip_time_ns,
)


@pytest.fixture(scope="module")
def img() -> BuiltImage:
    return fs_windows.ntfs_image()


@pytest.fixture(scope="module")
def fs(img: BuiltImage) -> Iterator[Filesystem[Any]]:
    yield from opened_image(img.image, ntfs.open_fs)


@pytest.fixture(scope="module")
def seven_zip(img: BuiltImage) -> dict[str, dict[str, str]]:
    return seven_zip_listing(img.image)


def test_detect(img: BuiltImage) -> None:
    with FileReader(img.image) as reader:
        assert ntfs.detect(reader) == "ntfs"
        # the whole-disk image goes through the registry to the same kind
        assert detect_filesystem(reader) == "ntfs"
        opened = open_filesystem(reader)
        assert opened.kind == "ntfs"
        opened.close()
    assert ntfs.detect(BytesReader(bytes(4096))) is None
    with FileReader(fs_windows.fat_image(16).image) as reader:
        assert ntfs.detect(reader) is None


def test_label(fs: Filesystem[Any], seven_zip: dict[str, dict[str, str]]) -> None:
    assert fs.label == "FRNTFS"  # mkntfs -L in the recipe


def test_walk_matches_source_tree(img: BuiltImage, walked: dict[str, Entry]) -> None:
    expected = tree_entries(img.tree)
    assert set(walked) == set(expected)
    for path, st in expected.items():
        entry = walked[path]
        kind = kind_of(st)
        assert entry.kind is kind, path
        assert entry.name == path.rsplit("/", 1)[1]
        assert entry.uid is None and entry.gid is None
        if kind is EntryKind.FILE:
            assert entry.size == st.st_size, path
            # NTFS keeps 100 ns; cp -a through ntfs-3g copied the source's mtime
            assert entry.mtime_ns == st.st_mtime_ns // 100 * 100, path
            writable = bool(st.st_mode & stat.S_IWUSR)
            assert entry.mode == stat.S_IFREG | (0o644 if writable else 0o444), path
        elif kind is EntryKind.DIR:
            assert entry.mode == stat.S_IFDIR | 0o755
        else:
            assert entry.target == str((img.tree / path[1:]).readlink()), path
            assert entry.mode == stat.S_IFLNK | 0o777


def test_metadata_files_are_hidden(
    fs: Filesystem[Any], seven_zip: dict[str, dict[str, str]]
) -> None:
    names = {e.name for e in fs.list_dir("/")}
    system = {p.rsplit("/", 1)[1] for p in seven_zip if p.startswith("/[SYSTEM]/")}
    assert {"$MFT", "$Bitmap", "$Extend"} <= system
    assert not names & system
    with pytest.raises(PathNotFoundError):
        fs.stat("/$MFT")


def test_metadata_matches_7zip(
    walked: dict[str, Entry], seven_zip: dict[str, dict[str, str]]
) -> None:
    compared = 0
    for path, entry in walked.items():
        facts = seven_zip[path]
        assert entry.inode == int(facts["iNode"]), path
        assert entry.nlink == int(facts["Links"] or 1), path
        assert entry.mtime_ns == seven_zip_time_ns(facts["Modified"]), path
        assert entry.atime_ns == seven_zip_time_ns(facts["Accessed"]), path
        assert entry.btime_ns == seven_zip_time_ns(facts["Created"]), path
        assert entry.ctime_ns == seven_zip_time_ns(facts["Metadata Changed"]), path
        assert entry.mode is not None
        assert ("R" in facts["Attributes"]) == (not entry.mode & 0o200), path
        if entry.kind is EntryKind.FILE:
            assert entry.size == int(facts["Size"]), path
        compared += 1
    assert compared > 2000


def test_hard_links(walked: dict[str, Entry], img: BuiltImage) -> None:
    a, b = walked["/hello.txt"], walked["/docs/hello-hardlink.txt"]
    src = (img.tree / "hello.txt").stat()
    assert a.inode == b.inode and a.nlink == b.nlink == src.st_nlink == 2


def test_contents_byte_exact(img: BuiltImage, fs: Filesystem[Any]) -> None:
    assert compare_contents(img.tree, fs) == []


def test_compressed_and_sparse_files(
    img: BuiltImage, fs: Filesystem[Any], seven_zip: dict[str, dict[str, str]]
) -> None:
    for rel in fs_windows.NTFS_COMPRESSED:
        facts = seven_zip["/" + rel]
        assert "C" in facts["Attributes"], rel  # 7-Zip sees the LZNT1 attribute too
        want = (img.tree / rel).read_bytes()
        reader = fs.open("/" + rel)
        # odd-sized reads across compression units (16 clusters = 64 KiB)
        for offset in (0, 1, 65535, 65536, 100_000, len(want) - 3):
            assert reader.read_at(offset, 70_001) == want[offset : offset + 70_001], rel
    packed = int(seven_zip["/compressed/text.txt"]["Packed Size"])
    assert packed < int(seven_zip["/compressed/text.txt"]["Size"]) // 4
    sparse = fs.open("/sparse.bin")
    assert int(seven_zip["/sparse.bin"]["Packed Size"]) < 1 << 20  # holes are not allocated
    assert sparse.read_at(1 << 20, 1 << 20) == bytes(1 << 20)
    assert sparse.read_at(0, sparse.size) == (img.tree / "sparse.bin").read_bytes()


def test_symlinks(fs: Filesystem[Any], walked: dict[str, Entry]) -> None:
    # Interix links written by ntfs-3g, and Windows reparse points mapped to guest paths
    assert fs.read_link("/link-relative") == "docs/readme.md"
    assert fs.read_link("/win-link-rel") == "docs/readme.md"
    assert fs.read_link("/win-link-abs") == "/docs/sub/nested.txt"
    assert fs.read_link("/win-junction") == "/docs"
    assert walked["/win-junction"].kind is EntryKind.SYMLINK
    assert fs.open("/win-link-abs").read_at(0, 100) == b"nested\n"
    assert [e.name for e in fs.list_dir("/win-junction/sub")] == ["nested.txt"]
    assert fs.open("/link-to-dir/sub/nested.txt").read_at(0, 100) == b"nested\n"
    assert fs.stat("/link-relative", follow_symlinks=True).path == "/docs/readme.md"
    with pytest.raises(SymlinkLoopError):
        fs.open("/loop-a")
    with pytest.raises(PathNotFoundError):
        fs.open("/link-dangling")
    with pytest.raises(PathNotFoundError):  # resolved inside the guest, never the host
        fs.open("/docs/link-escape")


def test_link_targets_from_reparse_data_match_7zip(seven_zip: dict[str, dict[str, str]]) -> None:
    for name, (_, substitute, _, posix) in fs_windows.NTFS_REPARSE_LINKS.items():
        # 7-Zip prints \\?\ where the reparse data holds \??\
        assert substitute.replace("\\??\\", "\\\\?\\") in seven_zip["/" + name]["Link"]
        assert windows_target_to_posix(substitute) == posix


def test_windows_target_mapping() -> None:
    assert windows_target_to_posix("..\\a\\b") == "../a/b"
    assert windows_target_to_posix("\\??\\D:\\x") == "/x"
    assert windows_target_to_posix("C:\\") == "/"
    assert windows_target_to_posix("\\??\\UNC\\srv\\share") == "UNC/srv/share"


def test_unicode_and_long_names(img: BuiltImage, fs: Filesystem[Any]) -> None:
    names = {e.name for e in fs.list_dir("/unicode")}
    assert names == {p.name for p in (img.tree / "unicode").iterdir()}
    assert "emoji-😀.txt" in names
    long_name = "L" * 251 + ".txt"
    assert fs.stat("/" + long_name).size == len(b"long name\n")
    # lookups are exact: the listed name works, another case does not (NTFS names written
    # by ntfs-3g are POSIX-namespace, case-sensitive)
    assert fs.stat("/HELLO.TXT").path == "/hello.txt"  # Windows resolves any case


def test_large_directory_listing(fs: Filesystem[Any]) -> None:
    entries = list(fs.list_dir("/many"))
    assert sorted(e.name for e in entries) == [f"file{i:05d}.txt" for i in range(2000)]
    assert all(e.mtime_ns and e.inode for e in entries)


def _mft_offset(image: bytes | bytearray) -> int:
    bytes_per_sector, sectors_per_cluster = struct.unpack_from("<HB", image, 11)
    (mft_lcn,) = struct.unpack_from("<Q", image, 48)
    return int(mft_lcn * bytes_per_sector * sectors_per_cluster)


def test_corrupt_volume_gives_filesystem_error(img: BuiltImage) -> None:
    data = bytearray(img.image.read_bytes())
    mft = _mft_offset(data)
    broken = bytearray(data)
    broken[mft : mft + 64 * 1024] = bytes(64 * 1024)  # $MFT's own records gone
    with pytest.raises(FilesystemError, match="ntfs"):
        opened = ntfs.open_fs(BytesReader(bytes(broken)))
        list(opened.walk("/"))
    with pytest.raises(FilesystemError, match="ntfs"):
        ntfs.open_fs(BytesReader(bytes(data[: 1 << 20])))  # truncated volume


def test_read_a_large_file() -> None:
    assert read_big_file("ntfs", ntfs.open_fs)


def test_dos_alias_is_not_a_second_entry(
    fs: Filesystem[Any], seven_zip: dict[str, dict[str, str]]
) -> None:
    entry = fs.stat("/" + fs_windows.NTFS_DOS_ALIASED)
    assert seven_zip[entry.path]["Short Name"] == fs_windows.NTFS_DOS_ALIAS
    assert entry.nlink == 1
    assert fs_windows.NTFS_DOS_ALIAS not in {e.name for e in fs.list_dir("/")}


def test_encrypted_file_is_refused(img: BuiltImage, walked: dict[str, Entry]) -> None:
    """hello.txt's $STANDARD_INFORMATION attributes get the EFS bit in a copy of the image."""
    data = bytearray(img.image.read_bytes())
    inode = walked["/hello.txt"].inode
    assert inode is not None
    record = _mft_offset(data) + inode * 1024  # 1 KiB records (mkntfs default)
    assert data[record : record + 4] == b"FILE"
    (first_attr,) = struct.unpack_from("<H", data, record + 0x14)
    attr = record + first_attr
    assert struct.unpack_from("<I", data, attr)[0] == 0x10  # $STANDARD_INFORMATION
    (value_offset,) = struct.unpack_from("<H", data, attr + 0x14)
    flags_at = attr + value_offset + 32  # FileAttributes (MS-FSCC, NTFS docs)
    (flags,) = struct.unpack_from("<I", data, flags_at)
    struct.pack_into("<I", data, flags_at, flags | 0x4000)
    opened = ntfs.open_fs(BytesReader(bytes(data)))
    assert opened.stat("/hello.txt").size == 13  # still listed
    with pytest.raises(UnsupportedImageError, match="EFS"):
        opened.open("/hello.txt")


def test_alternate_data_streams_are_not_data(
    img: BuiltImage, fs: Filesystem[Any], seven_zip: dict[str, dict[str, str]]
) -> None:
    path = "/" + fs_windows.NTFS_ADS_FILE
    stream = seven_zip[f"{path}:{fs_windows.NTFS_ADS_NAME}"]  # 7-Zip lists the stream ...
    assert int(stream["Size"]) == len(fs_windows.NTFS_ADS_DATA)
    want = (img.tree / fs_windows.NTFS_ADS_FILE).read_bytes()  # ... we read the main one
    assert fs.open(path).read_at(0, 1 << 20) == want
    assert fs.stat(path).size == len(want)
    assert not [e for e in fs.list_dir("/docs") if ":" in e.name]

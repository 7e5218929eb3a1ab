"""Btrfs through dissect.btrfs, against the source tree, the kernel and btrfs-progs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from filerestore.blockio import BytesReader, FileReader
from filerestore.errors import FilesystemError, ImageError, MissingExtraError, PathNotFoundError
from filerestore.fs import btrfs
from filerestore.fs.contents import FileContents
from tests.fs.conftest import (
    LinuxImage,
    btrfs_image,
    threaded_read_problems,
    walk_matching_the_kernel,
)
from tests.imagebuild import fs_linux


@pytest.fixture(scope="module")
def img() -> LinuxImage:
    return btrfs_image()


def test_detect_needs_no_library(img: LinuxImage) -> None:
    with FileReader(img.image) as reader:
        assert btrfs.detect(reader) == "btrfs"
    assert btrfs.detect(BytesReader(bytes(0x20000))) is None


def test_missing_extra_is_named(img: LinuxImage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dissect.btrfs", None)  # import now fails as if absent
    with FileReader(img.image) as reader, pytest.raises(MissingExtraError) as info:
        btrfs.open_fs(reader)
    assert "pip install filerestore[btrfs]" in str(info.value)


def test_compressed_files(img: LinuxImage) -> None:
    with img.opened() as fs:
        for algo in fs_linux.COMPRESSIONS:
            reader = fs.open(f"/compressed/{algo}.txt")
            want = fs_linux.compressible(algo)
            assert reader.size == len(want)
            # reads that start and end inside compressed extents (128 KiB each)
            assert reader.read_at(100_000, 300_000) == want[100_000:400_000]
            assert reader.read_at(len(want) - 5, 100) == want[-5:]


def test_metadata_and_otime_match_the_kernel(img: LinuxImage) -> None:
    entries = walk_matching_the_kernel(img)
    # inode numbers repeat across subvolumes (each one's first object is 257; which entry
    # that is depends on the order cp -a copied the tree in): the walk reached both 257s
    # (a hard-linked file shows up at each of its paths)
    in_subvol = {e.path.startswith("/subvol/") for e in entries if e.inode == 257}
    assert in_subvol == {False, True}


def test_subvolumes_match_btrfs_progs(img: LinuxImage) -> None:
    dump = subprocess.run(
        ["btrfs", "inspect-internal", "dump-tree", "-t", "root", str(img.image)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    refs = re.findall(r"key \(FS_TREE ROOT_REF (\d+)\).*?name (\S+)", dump, re.S)
    assert refs == [("256", "subvol")]
    with img.opened() as fs:
        assert isinstance(fs, btrfs.BtrfsFilesystem)
        assert fs.subvolumes() == [(5, "/"), (256, "/subvol")]
        assert fs.stat("/subvol").inode == 256
        assert fs.open(f"/subvol/{fs_linux.LATIN1_NAME}").read_at(0, 100) == (
            b"latin-1 in a subvolume\n"
        )


def test_non_utf8_name_round_trips(img: LinuxImage) -> None:
    with img.opened() as fs:
        entry = next(e for e in fs.list_dir("/unicode") if e.name == fs_linux.LATIN1_NAME)
        assert fs.open(entry.path).read_at(0, 100) == b"latin-1 name\n"


def test_readers_are_safe_across_threads(img: LinuxImage) -> None:
    want = {a: fs_linux.compressible(a) for a in fs_linux.COMPRESSIONS}
    with img.opened() as fs:

        def reader_of(k: int) -> tuple[FileContents, bytes]:
            algo = fs_linux.COMPRESSIONS[k % 3]
            return fs.open(f"/compressed/{algo}.txt"), want[algo]

        errors = threaded_read_problems(
            fs, reader_of, ("/docs", 6), reads=30, stride=97_531, size=50_000
        )
    assert errors == []


def test_corrupt_superblock_gives_filesystem_error(img: LinuxImage, tmp_path: Path) -> None:
    bad = fs_linux.copy_image(img.image, tmp_path / "bad.img")
    with bad.open("r+b") as fh:
        fh.seek(0x10000 + 0x50)  # btrfs_super_block.root: the root tree's logical address
        fh.write((0x7FFF_0000_0000).to_bytes(8, "little"))
    with FileReader(bad) as reader, pytest.raises(ImageError) as info:
        list(btrfs.open_fs(reader).walk("/"))
    assert isinstance(info.value, FilesystemError)
    assert "btrfs" in str(info.value)


def test_any_subvolume_opens_as_the_root(img: LinuxImage) -> None:
    with img.opened() as fs:
        assert isinstance(fs, btrfs.BtrfsFilesystem)
        sub = fs.subvolume(256)
        names = sorted(e.name for e in sub.list_dir("/"))
        assert names == sorted(p.name for p in (img.tree / "subvol").iterdir())
        assert sub.open("/in-subvolume.txt").read_at(0, 100) == b"inside the second subvolume\n"
        top = fs.subvolume(5)
        assert top.stat("/subvol").inode == 256
        with pytest.raises(PathNotFoundError):
            fs.subvolume(4242)

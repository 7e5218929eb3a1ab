"""XFS through libfsxfs, against the source tree, the kernel and xfs_db."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from filerestore.blockio import BytesReader, FileReader
from filerestore.errors import FilesystemError, ImageError
from filerestore.fs import xfs
from tests.fs.conftest import (
    LinuxImage,
    threaded_read_problems,
    walk_matching_the_kernel,
    xfs_image,
)
from tests.imagebuild import fs_linux
from tests.imagebuild.tree import block_content


@pytest.fixture(scope="module")
def img() -> LinuxImage:
    return xfs_image()


def xfs_db(image: Path, *commands: str) -> str:
    args = ["xfs_db", "-r"]
    for c in commands:
        args += ["-c", c]
    return subprocess.run([*args, str(image)], capture_output=True, text=True, check=True).stdout


def test_detect(img: LinuxImage) -> None:
    with FileReader(img.image) as reader:
        assert xfs.detect(reader) == "xfs"
    assert xfs.detect(BytesReader(bytes(4096))) is None
    assert xfs.detect(BytesReader(b"XFSB")) is None


def test_metadata_and_birth_time_match_the_kernel(img: LinuxImage) -> None:
    entries = walk_matching_the_kernel(img)
    assert all(e.btime_ns is not None for e in entries)  # v5 inodes carry crtime


def test_non_utf8_names_round_trip(img: LinuxImage) -> None:
    """libfsxfs raises for these names; they are read from disk in both directory formats."""
    with img.opened() as fs:
        for directory, content in (
            ("/unicode", b"latin-1 name\n"),
            ("/blockdir", b"latin-1 in a block directory\n"),
        ):
            entries = {e.name: e for e in fs.list_dir(directory)}
            entry = entries[fs_linux.LATIN1_NAME]
            assert entry.inode == img.facts[entry.path]["inode"]
            assert fs.open(entry.path).read_at(0, 100) == content
            # the two directories are in the two formats the fallback parses (per xfs_db)
            parent = img.facts[directory]["inode"]
            fmt = xfs_db(img.image, f"inode {parent}", "p core.format")
            want = "local" if directory == "/unicode" else "extents"
            assert want in fmt, fmt


def test_255_byte_name(img: LinuxImage) -> None:
    with img.opened() as fs:
        assert fs.open("/" + "L" * 251 + ".txt").read_at(0, 100) == b"long name\n"


def test_readers_are_safe_across_threads(img: LinuxImage) -> None:
    expected = block_content("data.bin", 3 * 2**20 + 123)
    with img.opened() as fs:
        errors = threaded_read_problems(
            fs,
            lambda k: (fs.open("/docs/data.bin"), expected),
            ("/blockdir", 201),
            reads=40,
            stride=65_537,
            size=70_000,
        )
    assert errors == []


def test_corrupt_root_inode_gives_filesystem_error(img: LinuxImage, tmp_path: Path) -> None:
    root = int(re.search(r"rootino = (\d+)", xfs_db(img.image, "sb 0", "p rootino")).group(1))  # type: ignore[union-attr]
    where = re.search(r"\((\d+)\)", xfs_db(img.image, f"convert ino {root} byte"))
    assert where
    bad = fs_linux.copy_image(img.image, tmp_path / "bad.img")
    with bad.open("r+b") as fh:
        fh.seek(int(where.group(1)))
        fh.write(b"\xa5" * 176)  # the whole v3 inode core, magic included
    with FileReader(bad) as reader, pytest.raises(ImageError) as info:
        list(xfs.open_fs(reader).walk("/"))
    assert isinstance(info.value, FilesystemError)
    assert "xfs" in str(info.value)


def test_version_4_filesystem_reads_its_files() -> None:
    """A v4 XFS (version 2 inodes, made by mkfs.xfs -m crc=0 from a protofile) reads as the
    files put in; its version-1 twins are refused (tests/imagebuild/fs_hostile.py)."""
    from tests.imagebuild import fs_special

    with FileReader(fs_special.xfs_v4_image()) as reader:
        fs = xfs.open_fs(reader)
        files = {e.path for e in fs.walk("/") if e.kind.value == "file"}
        assert files == set(fs_special.XFS_V4_FILES)
        for path, want in fs_special.XFS_V4_FILES.items():
            assert fs.open(path).read_at(0, 1 << 20) == want
        fs.close()

"""ext2, ext3 and ext4 through libfsext, against the source tree, the kernel and debugfs."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from filerestore.blockio import BytesReader, FileReader
from filerestore.errors import FilesystemError, ImageError
from filerestore.fs import ext
from filerestore.fs.entry import EntryKind
from tests.fs.conftest import (
    FACT_FIELDS,
    LinuxImage,
    compare_with_kernel,
    compare_with_tree,
    ext_image,
    threaded_read_problems,
    walk_matching_the_kernel,
)
from tests.fs.treecheck import compare_contents
from tests.imagebuild import fs_linux
from tests.imagebuild.tree import block_content

KINDS = ("ext2", "ext3", "ext4")


@pytest.fixture(scope="module", params=KINDS)
def img(request: pytest.FixtureRequest) -> LinuxImage:
    return ext_image(request.param)


def test_detect_tells_ext_versions_apart(img: LinuxImage) -> None:
    with FileReader(img.image) as reader:
        assert ext.detect(reader) == img.kind
    # the same answer as the superblock's own feature list, read by dumpe2fs
    features = subprocess.run(
        ["dumpe2fs", "-h", str(img.image)], capture_output=True, text=True, check=True
    ).stdout
    has_journal = "has_journal" in features
    assert ("extent" in features) == (img.kind == "ext4")
    assert has_journal == (img.kind in ("ext3", "ext4"))


def test_detect_refuses_other_data() -> None:
    assert ext.detect(BytesReader(bytes(4096))) is None
    assert ext.detect(BytesReader(b"")) is None


def test_metadata_matches_the_kernel(img: LinuxImage) -> None:
    entries = walk_matching_the_kernel(img)
    # birth time exists where the inode has room for it (ext4 here: 256-byte inodes)
    has_btime = [e for e in entries if e.btime_ns is not None]
    assert bool(has_btime) == (img.kind == "ext4")


def test_listing_matches_debugfs(img: LinuxImage) -> None:
    """debugfs ls -p gives /inode/mode/uid/gid/name/size/ per entry, names as raw bytes."""
    for directory in ("/", "/docs", "/unicode"):
        out = subprocess.run(
            ["debugfs", "-R", f"ls -p {directory}", str(img.image)],
            capture_output=True,
            check=True,
        ).stdout
        expected = {}
        for line in out.splitlines():
            m = re.fullmatch(rb"/(\d+)/(\d+)/(\d+)/(\d+)/(.*)/(\d*)/", line)
            if m and m.group(5) not in (b".", b".."):
                name = os.fsdecode(m.group(5))
                expected[name] = (int(m.group(1)), int(m.group(2), 8), int(m.group(3)))
        with img.opened() as fs:
            got = {e.name: (e.inode, e.mode, e.uid) for e in fs.list_dir(directory)}
        assert got == expected, directory


def test_non_utf8_name_round_trips(img: LinuxImage) -> None:
    with img.opened() as fs:
        names = [e.name for e in fs.list_dir("/unicode")]
        assert fs_linux.LATIN1_NAME in names
        entry = next(e for e in fs.list_dir("/unicode") if e.name == fs_linux.LATIN1_NAME)
        assert os.fsencode(entry.name) == b"latin1-caf\xe9.txt"
        reader = fs.open(entry.path)
        assert reader.read_at(0, 100) == b"latin-1 name\n"


def test_255_byte_name(img: LinuxImage) -> None:
    # libfsext returns no name at all for it; our own directory parsing does
    name = "L" * 251 + ".txt"
    with img.opened() as fs:
        assert fs.stat("/" + name).size == 10
        assert fs.open("/" + name).read_at(0, 100) == b"long name\n"


def test_readers_are_safe_across_threads(img: LinuxImage) -> None:
    expected = block_content("data.bin", 3 * 2**20 + 123)
    with img.opened() as fs:
        readers = [fs.open("/docs/data.bin") for _ in range(4)]
        errors = threaded_read_problems(
            fs,
            lambda k: (readers[k], expected),
            ("/unicode", 5),
            reads=40,
            stride=65_537,
            size=70_000,
        )
    assert errors == []


def test_directory_of_10000_entries() -> None:
    img = ext_image("ext4", "ext-many")
    with img.opened() as fs:
        entries = list(fs.list_dir("/many"))
        assert sorted(e.name for e in entries) == [f"file{i:05d}.txt" for i in range(10000)]
        assert all(
            e.kind is EntryKind.FILE and e.size == len(b"%d\n" % int(e.name[4:9])) for e in entries
        )
        assert fs.open("/many/file09999.txt").read_at(0, 10) == b"9999\n"
        assert compare_with_kernel(entries, img.facts, ("inode", "nlink", "mode")) == []


def _corrupt_root_inode(src: Path, dest: Path) -> Path:
    """A copy of ``src`` whose root directory inode has garbage block pointers.

    Where the inode lives comes from debugfs (imap), not from our code.
    """
    out = subprocess.run(
        ["debugfs", "-R", "imap <2>", str(src)], capture_output=True, text=True, check=True
    ).stdout
    m = re.search(r"located at block (\d+), offset (0x[0-9a-f]+)", out)
    assert m, out
    block_size = int(
        re.search(
            r"Block size:\s+(\d+)",
            subprocess.run(
                ["dumpe2fs", "-h", str(src)], capture_output=True, text=True, check=True
            ).stdout,
        ).group(1)  # type: ignore[union-attr]
    )
    fs_linux.copy_image(src, dest)
    offset = int(m.group(1)) * block_size + int(m.group(2), 16)
    with dest.open("r+b") as fh:
        fh.seek(offset + 40)  # i_block: the extent tree root or the block map
        fh.write(b"\xa5" * 60)
    return dest


def test_corrupt_filesystem_gives_filesystem_error(img: LinuxImage, tmp_path: Path) -> None:
    bad = _corrupt_root_inode(img.image, tmp_path / "bad.img")
    with FileReader(bad) as reader, pytest.raises(ImageError) as info:
        fs = ext.open_fs(reader)
        list(fs.walk("/"))
    assert isinstance(info.value, FilesystemError)
    assert img.kind in str(info.value)


def test_truncated_volume_gives_filesystem_error(img: LinuxImage) -> None:
    with FileReader(img.image) as reader:
        head = reader.read_at(0, 64 * 1024)
    with pytest.raises(FilesystemError):
        ext.open_fs(BytesReader(head))


def test_inline_data_files_read_through_the_library() -> None:
    """ext4 with inline_data keeps files under 60 bytes in the inode: no extents to read."""
    img = ext_image("ext4", features="inline_data")
    with img.opened() as fs:
        assert compare_with_tree(img, fs) == []
        assert compare_contents(img.tree, fs) == []
        entries = list(fs.walk("/"))
    assert compare_with_kernel(entries, img.facts, (*FACT_FIELDS, "btime_ns")) == []
    # inline, per debugfs: the inode has the inline-data flag and no blocks
    out = subprocess.run(
        ["debugfs", "-R", "stat /hello.txt", str(img.image)], capture_output=True, text=True
    ).stdout
    assert "Size of inline data" in out, out


def _debugfs_times(image: Path, path: str) -> dict[str, int | None]:
    """Times, size and links of ``path`` per ``debugfs stat``; times as ns (None if absent).

    With 256-byte inodes debugfs prints seconds:extra, where extra holds the nanoseconds
    shifted left by 2 (the low 2 bits extend the seconds' epoch).
    """
    out = subprocess.run(
        ["debugfs", "-R", f"stat {path}", str(image)], capture_output=True, text=True, check=True
    ).stdout
    facts: dict[str, int | None] = {}
    for field in ("ctime", "atime", "mtime", "crtime"):
        m = re.search(rf"^ ?{field}: 0x([0-9a-f]+)(?::([0-9a-f]+))? --", out, re.M)
        if m is None:
            facts[field] = None
            continue
        extra = int(m.group(2) or "0", 16)
        seconds = int(m.group(1), 16) + ((extra & 3) << 32)
        facts[field] = seconds * 10**9 + (extra >> 2)
    facts["size"] = int(re.search(r"Size: (\d+)", out).group(1))  # type: ignore[union-attr]
    facts["links"] = int(re.search(r"Links: (\d+)", out).group(1))  # type: ignore[union-attr]
    return facts


def test_stat_matches_debugfs(img: LinuxImage) -> None:
    with img.opened() as fs:
        for path in ("/docs/data.bin", "/hello.txt", "/big-sparse.bin", "/docs", "/link-absolute"):
            entry = fs.stat(path)
            want = _debugfs_times(img.image, path)
            got = {
                "ctime": entry.ctime_ns,
                "atime": entry.atime_ns,
                "mtime": entry.mtime_ns,
                "crtime": entry.btime_ns,
                "links": entry.nlink,
            }
            assert got == {k: want[k] for k in got}, path
            if entry.kind is not EntryKind.DIR:
                assert entry.size == want["size"], path

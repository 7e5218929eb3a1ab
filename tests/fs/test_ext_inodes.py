"""ext inodes parsed by us (fs/ext_inode.py, fs/ext.py): times with nanoseconds and epoch
bits, 32-bit owners, sizes past 4 GiB, fast and slow symlinks, and inode tables found through
meta_bg group descriptors, against what the kernel wrote and reports (loop mount) and
debugfs/dumpe2fs.

The images (tests/imagebuild/ext_inodes.py) are made by mke2fs and filled through a kernel
loop mount, so every value on disk was encoded by the kernel, not by e2fsprogs' -d copy.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from filerestore.blockio import FileReader
from filerestore.errors import FilesystemError
from filerestore.fs import ext, ext_inode
from filerestore.fs.entry import EntryKind
from tests.fs.conftest import FACT_FIELDS, compare_with_kernel
from tests.imagebuild.ext_inodes import (
    BIG_SIZE,
    FAST_TARGET,
    FUTURE_NS,
    LAYOUTS,
    OWNER,
    PAST_NS,
    SLOW_TARGET,
    TOP_DIRS,
)
from tests.imagebuild.ext_inodes import image as _image
from tests.imagebuild.fs_linux import mount_facts, run


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def image(request: pytest.FixtureRequest) -> Path:
    return _image(request.param)


def _facts(image: Path) -> dict[str, dict[str, object]]:
    kind = "ext4" if "ext4" in image.name else "ext2"
    loaded: dict[str, dict[str, object]] = json.loads(mount_facts(image, kind).read_text())
    return loaded


def test_every_entry_matches_the_kernel(image: Path) -> None:
    facts = _facts(image)
    with FileReader(image) as reader:
        fs = ext.open_fs(reader)
        entries = list(fs.walk("/"))
        fs.close()
    assert sorted(e.path for e in entries) == sorted(facts)
    assert compare_with_kernel(entries, facts, (*FACT_FIELDS, "btime_ns", "target")) == []
    for e in entries:
        if e.kind is not EntryKind.DIR:
            assert e.size == facts[e.path]["size"], e.path


def test_times_owner_size_and_links(image: Path) -> None:
    """The values set through the kernel, read back (ext2 has whole seconds and 32-bit
    signed times only, so it keeps 1930 and cannot hold 2200)."""
    with FileReader(image) as reader:
        fs = ext.open_fs(reader)
        times, owned, big = fs.stat("/times"), fs.stat("/owned"), fs.stat("/big")
        fast, slow, fifo = fs.stat("/fast"), fs.stat("/slow"), fs.stat("/fifo")
        fs.close()
    if "ext4" in image.name:
        assert (times.atime_ns, times.mtime_ns) == (PAST_NS, FUTURE_NS)
        assert times.btime_ns is not None
    else:
        assert times.atime_ns == PAST_NS - PAST_NS % 10**9
        assert times.btime_ns is None
    assert (owned.uid, owned.gid, owned.nlink) == (*OWNER, 2)
    assert big.size == BIG_SIZE
    assert (fast.target, slow.target) == (FAST_TARGET, SLOW_TARGET)
    assert (fast.size, slow.size) == (len(FAST_TARGET), len(SLOW_TARGET))
    assert fifo.kind is EntryKind.OTHER


def test_symlinks_fast_and_slow() -> None:
    inode = ext_inode.Inode(0o120777, 3, 3, 0, b"abc" + bytes(57))
    assert ext_inode.fast_symlink_target(inode) == b"abc"
    # a data block, extents, an xattr block or inline data: the target is not in i_block
    assert ext_inode.fast_symlink_target(inode._replace(blocks=2)) is None
    assert ext_inode.fast_symlink_target(inode._replace(flags=ext_inode.EXTENTS_FL)) is None
    assert ext_inode.fast_symlink_target(inode._replace(flags=ext_inode.INLINE_DATA_FL)) is None
    assert ext_inode.fast_symlink_target(inode._replace(file_acl=9)) is None
    assert ext_inode.fast_symlink_target(inode._replace(size=60, size_lo=60)) is None


def _dumpe2fs_groups(image: Path) -> dict[int, str]:
    out = subprocess.run(
        ["dumpe2fs", str(image)], capture_output=True, text=True, check=True
    ).stdout
    parts = re.split(r"^Group (\d+):", out, flags=re.M)
    return {int(parts[i]): parts[i + 1] for i in range(1, len(parts), 2)}


def test_superblock_copies_and_inode_tables_match_dumpe2fs(image: Path) -> None:
    groups = _dumpe2fs_groups(image)
    with FileReader(image) as reader:
        fs = ext.open_fs(reader)
        sb = fs.superblock
        assert len(groups) > 100
        for group, text in groups.items():
            assert ext.group_has_super(sb, group) == ("superblock at" in text), group
            m = re.search(r"Inode table at (\d+)-", text)
            assert m, text
            assert fs._inode_table(group) == int(m.group(1)), group
        fs.close()


def test_inode_locations_match_debugfs(image: Path) -> None:
    """Where each top directory's inode lies, per debugfs imap, is where we read it."""
    facts = _facts(image)
    with FileReader(image) as reader:
        fs = ext.open_fs(reader)
        sb = fs.superblock
        groups_seen = set()
        for i in range(0, TOP_DIRS, 3):
            ino = int(facts[f"/d{i:02}"]["inode"])  # type: ignore[call-overload]
            out = run("debugfs", "-R", f"imap <{ino}>", image)
            m = re.search(r"located at block (\d+), offset (0x[0-9a-f]+)", out)
            assert m, out
            want = int(m.group(1)) * sb.block_size + int(m.group(2), 16)
            group, index = divmod(ino - 1, sb.inodes_per_group)
            groups_seen.add(group)
            assert fs._inode_table(group) * sb.block_size + index * sb.inode_size == want
        fs.close()
    assert len(groups_seen) > 3  # the directories really are spread over several groups


def test_parse_inode_refuses_short_data() -> None:
    with pytest.raises(FilesystemError):
        ext_inode.parse_inode(bytes(100))
    with pytest.raises(FilesystemError):
        ext_inode.parse_inode(bytes(256), offset=200, inode_size=128)


def test_inode_past_the_inode_count_is_refused(image: Path) -> None:
    with FileReader(image) as reader:
        fs = ext.open_fs(reader)
        with pytest.raises(FilesystemError):
            fs._read_inodes([fs.superblock.inodes_count + 1])
        fs.close()

"""fs/xfs_changes.py against what the kernel and xfs_db say: the inode chunks its inode
B+tree reader finds (two-level trees, v5 with sparse chunks and v4), the changed inodes
between two states, and a corrupt tree refused by name."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest

from filerestore.blockio import FileReader
from filerestore.errors import FilesystemError
from filerestore.fs.xfs import XfsFilesystem, inode_to_byte, open_fs
from filerestore.fs.xfs_changes import byte_to_inode, changed_inodes, inode_spans
from tests.imagebuild.xfs_inode_chunks import xfs_inode_chunks


@pytest.fixture(scope="module", params=["v5", "v4"])
def chunks(request: pytest.FixtureRequest) -> Path:
    return xfs_inode_chunks(request.param)


def facts(chunks: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((chunks / "facts.json").read_text())
    return data


def opened(image: Path) -> XfsFilesystem:
    return open_fs(FileReader(image))


def test_the_chunks_are_the_ones_xfs_db_counts_and_hold_every_inode(chunks: Path) -> None:
    fs = opened(chunks / "a.img")
    try:
        spans = inode_spans(fs)
        isize = fs.superblock.inode_size
        assert sum(length for _, length in spans) // isize == sum(
            ag["count"] for ag in facts(chunks)["agi"]
        )
        starts = sorted(spans)
        for path, ino in facts(chunks)["inodes"].items():
            at = inode_to_byte(fs.superblock, ino)
            assert any(s <= at < s + n for s, n in starts), path
            assert byte_to_inode(fs.superblock, at) == ino
    finally:
        fs.close()


def test_changed_inodes_are_the_chmodded_files(chunks: Path) -> None:
    new, old = opened(chunks / "b.img"), opened(chunks / "a.img")
    try:
        everything = [(0, (chunks / "a.img").stat().st_size)]
        assert changed_inodes(new, old, everything) == facts(chunks)["chmodded"]
        assert changed_inodes(new, old, []) == []
        assert changed_inodes(new, new, everything) == []
    finally:
        new.close()
        old.close()


def _refused(chunks: Path, tmp_path: Path, edit: Any, match: str) -> None:
    """``edit(file, superblock)`` applied to a copy of a.img: finding its inode chunks is
    refused with a FilesystemError matching ``match``."""
    image = tmp_path / "corrupt.img"
    shutil.copyfile(chunks / "a.img", image)
    fs = opened(image)
    sb = fs.superblock
    fs.close()
    with image.open("r+b") as fh:
        edit(fh, sb)
    fs = opened(image)
    try:
        with pytest.raises(FilesystemError, match=match):
            inode_spans(fs)
    finally:
        fs.close()


def test_a_corrupt_inode_header_is_refused_by_name(chunks: Path, tmp_path: Path) -> None:
    def edit(fh: Any, sb: Any) -> None:
        # AG 1's inode header (AGI): libfsxfs reads AG 0's to open the filesystem
        fh.seek(sb.ag_blocks * sb.block_size + 2 * sb.sect_size)
        fh.write(b"XXXX")

    _refused(chunks, tmp_path, edit, "allocation group 1 has no inode header")


def test_a_tree_pointing_back_at_its_root_is_refused(chunks: Path, tmp_path: Path) -> None:
    agno = 1  # not AG 0, whose tree libfsxfs reads to open the filesystem
    assert facts(chunks)["agi"][agno]["level"] >= 2

    def edit(fh: Any, sb: Any) -> None:
        ag_start = agno * sb.ag_blocks * sb.block_size
        fh.seek(ag_start + 2 * sb.sect_size + 20)
        (root,) = struct.unpack(">I", fh.read(4))
        header = 56 if sb.version == 5 else 16
        node_max = (sb.block_size - header) // 8
        fh.seek(ag_start + root * sb.block_size + header + node_max * 4)
        fh.write(struct.pack(">I", root))  # the root's first child is the root

    _refused(chunks, tmp_path, edit, "inode B\\+tree")

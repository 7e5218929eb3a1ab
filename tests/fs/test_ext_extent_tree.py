"""A directory's extent tree read by ext_inode.tree_extents (ExtFilesystem.dir_extents),
against debugfs's ``ex`` on a kernel-made image (tests/imagebuild/ext_extent_dirs.py) whose
directories' trees are 0, 1 and 2 levels deep; and trees that are not trees (a node that
points to itself, a leaf reached twice) refused without a hang, the directory then read
through the library, which refuses it by name."""

from __future__ import annotations

import contextlib
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from filerestore.blockio import CachedReader, FileReader
from filerestore.errors import FilesystemError
from filerestore.fs import open_filesystem
from filerestore.fs.ext import ExtFilesystem
from tests.imagebuild.ext_extent_dirs import DIRS, entry_name, extent_tree, image


@pytest.fixture(scope="module")
def img() -> Path:
    return image()


@contextlib.contextmanager
def _open(path: Path) -> Iterator[ExtFilesystem]:
    with FileReader(path) as reader:
        fs = open_filesystem(CachedReader(reader))
        assert isinstance(fs, ExtFilesystem)
        try:
            yield fs
        finally:
            fs.close()


@pytest.mark.parametrize("name", sorted(DIRS))
def test_a_directory_s_extents_are_debugfs_s(img: Path, name: str) -> None:
    depth, leaves = extent_tree(img, f"/{name}")
    assert depth == DIRS[name][1]
    with _open(img) as fs:
        node = fs._resolve(f"/{name}", follow_final=True)[1]
        bs = fs.superblock.block_size
        size = fs.dir_size(node)
        ours = fs.tree_extents(node, size)  # read here, not by the library
        assert ours is not None
        blocks = [(e.logical // bs, (e.physical or 0) // bs, e.length // bs) for e in ours]
        assert all(e.physical is not None for e in ours)
        assert blocks == leaves
        assert fs.dir_extents(node, size) == ours
        listed = sorted(e.name for e in fs.list_dir(f"/{name}"))
        assert listed == sorted(entry_name(i) for i in range(DIRS[name][0]))


def _index_block(fs: ExtFilesystem) -> tuple[int, int]:
    """(byte offset, block number) of the first index node below /deep's root: its root
    (in the inode) points to it."""
    node = fs._resolve("/deep", follow_final=True)[1]
    _, lo, hi = struct.unpack_from("<IIH", node.i_block, 12)
    block = hi << 32 | lo
    return block * fs.superblock.block_size, block


def _corrupt(img: Path, tmp_path: Path, edit: str) -> Path:
    bad = tmp_path / "bad.img"
    shutil.copyfile(img, bad)
    with _open(img) as fs:
        offset, block = _index_block(fs)
    with bad.open("r+b") as f:
        f.seek(offset)
        node = bytearray(f.read(1024))
        magic, count, _, level = struct.unpack_from("<HHHH", node, 0)
        assert (magic, level) == (0xF30A, 1) and count >= 2
        if edit == "loop":  # its first entry points to itself
            struct.pack_into("<IH", node, 12 + 4, block & 0xFFFFFFFF, block >> 32)
        else:  # its second entry leads to the first one's leaf again
            node[24 + 4 : 24 + 10] = node[12 + 4 : 12 + 10]
        f.seek(offset)
        f.write(node)
    return bad


@pytest.mark.parametrize("edit", ["loop", "leaf-twice"])
def test_a_tree_that_is_not_one_is_not_read_as_one(img: Path, tmp_path: Path, edit: str) -> None:
    bad = _corrupt(img, tmp_path, edit)
    with _open(bad) as fs:
        node = fs._resolve("/deep", follow_final=True)[1]
        assert fs.tree_extents(node, fs.dir_size(node)) is None
        # the library's reading of it is refused too (it cannot open the inode; or the
        # blocks it maps leave a hole in the directory): by name, not a traceback or a hang
        with pytest.raises(FilesystemError):
            list(fs.list_dir("/deep"))

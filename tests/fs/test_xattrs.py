"""Extended attributes through the one interface (Filesystem.xattrs), against the values the
source trees were given (tests/imagebuild/fs_xattrs.py, checked there by the kernel)."""

from __future__ import annotations

import struct

import pytest

from filerestore.blockio import FileReader
from filerestore.errors import FilesystemError
from filerestore.fs import ext_xattr, open_filesystem
from tests.imagebuild import fs_windows, fs_xattrs


@pytest.mark.parametrize("fstype", ["ext4", "xfs"])
def test_every_attribute_reads_back(fstype: str) -> None:
    with FileReader(fs_xattrs.xattr_image(fstype)) as reader:
        fs = open_filesystem(reader)
        want = fs_xattrs.expected(fstype)
        # twice: libfsext 20260821 lists in-inode attributes only on an inode's first open
        for _ in range(2):
            assert {path: fs.xattrs(path) for path in want} == want
        assert fs.xattrs("/no-xattrs.txt") == {}
        fs.close()


def test_formats_without_xattrs_have_none() -> None:
    for built in (fs_windows.ntfs_image(), fs_windows.fat_image(32)):
        with FileReader(built.image) as reader:
            fs = open_filesystem(reader)
            # NTFS alternate data streams are not extended attributes
            assert fs.xattrs("/docs/readme.md") == {}
            fs.close()


def _entry(name: bytes, index: int, value_offs: int, size: int, inum: int = 0) -> bytes:
    raw = struct.pack("<BBHIII", len(name), index, value_offs, inum, size, 0) + name
    return raw + bytes(-len(raw) % 4)


def test_damaged_attribute_regions_are_refused() -> None:
    block = bytearray(4096)
    block[:4] = ext_xattr.XATTR_MAGIC.to_bytes(4, "little")
    entry = _entry(b"color", 1, 4000, 4)
    block[32 : 32 + len(entry)] = entry
    block[4000:4004] = b"blue"
    assert ext_xattr.in_block(bytes(block)) == {"user.color": b"blue"}
    with pytest.raises(FilesystemError, match="runs past"):
        ext_xattr.in_block(bytes(block[:4002]))
    with pytest.raises(FilesystemError, match="no xattr magic"):
        ext_xattr.in_block(bytes(4096))
    inum = _entry(b"big", 1, 0, 100000, inum=77)
    block[32 : 32 + len(inum)] = inum
    with pytest.raises(FilesystemError, match="ea_inode"):
        ext_xattr.in_block(bytes(block))

"""ext2, ext3 and ext4, read through libfsext (pyfsext).

# References: "ext4 Data Structures and Algorithms" (kernel.org, Documentation/filesystems/
# ext4/): the superblock (section 3.1), linear directory entries (ext4_dir_entry_2, 4.1.1),
# and util-linux libblkid/src/superblocks/ext.c for telling ext2, ext3 and ext4 apart.

libfsext 20260821 returns no name (None) for a 255-byte name and raises for a name that is not
valid UTF-8, so directories are read here from their on-disk entries (name bytes, inode
number), and each inode is then opened by number; the library's own sub-entry list is used
only for inline-data directories, which have no blocks to read.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import pyfsext

from filerestore.blockio import Reader
from filerestore.errors import FilesystemError
from filerestore.fs.libyal import (
    ExtentReader,
    LibyalFilesystem,
    LibyalNode,
    extents_from_library,
    fsdecode,
)

SUPERBLOCK_OFFSET = 1024
EXT_MAGIC = 0xEF53

# s_feature_compat / s_feature_incompat / s_feature_ro_compat bits (ext4 docs, section 3.1)
COMPAT_HAS_JOURNAL = 0x0004
INCOMPAT_FILETYPE = 0x0002
INCOMPAT_RECOVER = 0x0004
INCOMPAT_JOURNAL_DEV = 0x0008
INCOMPAT_META_BG = 0x0010
RO_COMPAT_SPARSE_SUPER = 0x0001
RO_COMPAT_LARGE_FILE = 0x0002
RO_COMPAT_BTREE_DIR = 0x0004
# what ext3 understands (libblkid EXT3_FEATURE_*_SUPP); anything beyond is ext4
EXT3_INCOMPAT_SUPP = INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_META_BG
EXT3_RO_COMPAT_SUPP = RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | RO_COMPAT_BTREE_DIR


@dataclass(frozen=True, slots=True)
class Superblock:
    magic: int
    log_block_size: int
    feature_compat: int
    feature_incompat: int
    feature_ro_compat: int
    volume_name: bytes

    @property
    def block_size(self) -> int:
        return 1024 << self.log_block_size


def parse_superblock(data: bytes) -> Superblock:
    """The fields of the 1024-byte superblock this module needs."""
    (log_block_size,) = struct.unpack_from("<I", data, 24)
    (magic,) = struct.unpack_from("<H", data, 56)
    compat, incompat, ro_compat = struct.unpack_from("<III", data, 92)
    return Superblock(magic, log_block_size, compat, incompat, ro_compat, data[120:136])


def kind_of(sb: Superblock) -> str:
    """ext2, ext3 or ext4 by feature flags, as libblkid decides it."""
    if sb.feature_incompat & ~EXT3_INCOMPAT_SUPP or sb.feature_ro_compat & ~EXT3_RO_COMPAT_SUPP:
        return "ext4"
    if sb.feature_compat & COMPAT_HAS_JOURNAL:
        return "ext3"
    return "ext2"


def detect(reader: Reader) -> str | None:
    data = reader.read_at(SUPERBLOCK_OFFSET, 1024)
    if len(data) < 1024:
        return None
    sb = parse_superblock(data)
    # a journal device carries an ext superblock but no files
    if sb.magic != EXT_MAGIC or sb.feature_incompat & INCOMPAT_JOURNAL_DEV:
        return None
    if sb.log_block_size > 6:  # blocks of 1 KiB to 64 KiB
        return None
    return kind_of(sb)


def parse_dir_block(block: bytes, filetype: bool) -> Iterator[tuple[bytes, int]]:
    """(name bytes, inode) of each live entry of one directory block, "." and ".." left out.

    Works for htree directories too: their index blocks are entries with inode 0 that span
    the block, and the checksum tail is an entry with inode 0.
    """
    pos = 0
    size = len(block)
    while pos + 8 <= size:
        inode, rec_len, name_len, file_type = struct.unpack_from("<IHBB", block, pos)
        if not filetype:
            name_len |= file_type << 8
        if size >= 65536:  # ext4_rec_len_from_disk: 64 KiB blocks steal two low bits
            rec_len = 65536 if rec_len in (0, 0xFFFF) else (rec_len & 0xFFFC) | (rec_len & 3) << 16
        if rec_len < 8 or pos + rec_len > size or 8 + name_len > rec_len:
            raise FilesystemError(f"ext: corrupt directory entry at byte {pos} of a block")
        if inode:
            name = block[pos + 8 : pos + 8 + name_len]
            if name not in (b".", b"..") and name:
                yield name, inode
        pos += rec_len


class ExtFilesystem(LibyalFilesystem):
    library = pyfsext

    def __init__(self, reader: Reader, kind: str, superblock: Superblock) -> None:
        self.kind = kind
        self.superblock = superblock
        super().__init__(reader)

    def _read_label(self) -> str | None:
        name = self.superblock.volume_name.split(b"\x00", 1)[0]
        return fsdecode(name) if name else None

    def _children(self, node: LibyalNode) -> Iterator[tuple[str, LibyalNode]]:
        with self._library_errors("read a directory"):
            # libfsext reports 0 as a directory's size: its blocks are what its extents map
            count = int(node.get_number_of_extents())
            if count == 0:  # inline data: no blocks of its own to parse
                return super()._children(node)
            mapped = [node.get_extent(i) for i in range(count)]
            size = sum(int(length) for _, length, _ in mapped)
            extents = extents_from_library(mapped, size, self.reader.size)
            if extents is None:
                raise FilesystemError("ext: a directory's extents point outside the volume")
            data = ExtentReader(self.reader, extents, size).read_at(0, size)
            out: list[tuple[str, LibyalNode]] = []
            bs = self.superblock.block_size
            filetype = bool(self.superblock.feature_incompat & INCOMPAT_FILETYPE)
            for start in range(0, len(data), bs):
                for raw, inode in parse_dir_block(data[start : start + bs], filetype):
                    if b"/" in raw:
                        raise FilesystemError("ext: a directory entry name holds '/'")
                    child = self._volume.get_file_entry_by_inode(inode)
                    out.append((fsdecode(raw), child))
        return iter(out)


def open_fs(reader: Reader) -> ExtFilesystem:
    sb = parse_superblock(reader.read_at(SUPERBLOCK_OFFSET, 1024))
    kind = detect(reader)
    if kind is None:
        raise FilesystemError("not an ext2/3/4 filesystem")
    return ExtFilesystem(reader, kind, sb)

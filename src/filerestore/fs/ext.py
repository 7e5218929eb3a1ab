# References: "ext4 Data Structures and Algorithms" (kernel.org, Documentation/filesystems/
# ext4/): the superblock (section 3.1), linear directory entries (ext4_dir_entry_2, 4.1.1),
# and util-linux libblkid/src/superblocks/ext.c for telling ext2, ext3 and ext4 apart.
"""ext2, ext3 and ext4, read through libfsext (pyfsext).

libfsext 20260821 returns no name (None) for a 255-byte name and raises for a name that is not
valid UTF-8, so directories are read here from their on-disk entries (name bytes, inode
number), and each inode is then opened by number; the library's own sub-entry list is used
only for inline-data directories, which have no blocks to read.

It also drops i_size_high of block-mapped (ext2/ext3) files and loses the blocks behind a
triple-indirect block, so a file's size comes from its inode and block maps are walked here;
extent-mapped files use the library's extents, which were exact in every test.
"""

from __future__ import annotations

import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyfsext

from filerestore.blockio import Reader
from filerestore.errors import FilesystemError
from filerestore.fs.libyal import (
    Extent,
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


INCOMPAT_64BIT = 0x0080
GOOD_OLD_INODE_SIZE = 128
GROUP_DESC_SIZE = 32  # without INCOMPAT_64BIT
# i_flags bits (ext4 docs, section 4.1)
EXTENTS_FL = 0x80000
INLINE_DATA_FL = 0x10000000
DIRECT_BLOCKS = 12  # i_block[0..11]; then single, double and triple indirect


@dataclass(frozen=True, slots=True)
class Superblock:
    magic: int
    log_block_size: int
    feature_compat: int
    feature_incompat: int
    feature_ro_compat: int
    volume_name: bytes
    first_data_block: int = 0
    inodes_per_group: int = 0
    inode_size: int = GOOD_OLD_INODE_SIZE
    desc_size: int = GROUP_DESC_SIZE

    @property
    def block_size(self) -> int:
        return 1024 << self.log_block_size


def parse_superblock(data: bytes) -> Superblock:
    """The fields of the 1024-byte superblock this module needs."""
    first_data_block, log_block_size = struct.unpack_from("<II", data, 20)
    (inodes_per_group,) = struct.unpack_from("<I", data, 40)
    (magic,) = struct.unpack_from("<H", data, 56)
    (rev_level,) = struct.unpack_from("<I", data, 76)
    (inode_size,) = struct.unpack_from("<H", data, 88)
    compat, incompat, ro_compat = struct.unpack_from("<III", data, 92)
    (desc_size,) = struct.unpack_from("<H", data, 254)
    return Superblock(
        magic,
        log_block_size,
        compat,
        incompat,
        ro_compat,
        data[120:136],
        first_data_block,
        inodes_per_group,
        inode_size if rev_level >= 1 else GOOD_OLD_INODE_SIZE,
        desc_size if incompat & INCOMPAT_64BIT and desc_size else GROUP_DESC_SIZE,
    )


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


@dataclass(frozen=True, slots=True)
class Inode:
    """The fields of an on-disk inode (ext4 docs, section 4.1) this module reads itself."""

    mode: int
    size: int  # i_size_lo | i_size_high << 32 (regular files; i_dir_acl in old directories)
    size_lo: int
    flags: int
    block: tuple[int, ...]  # i_block: 15 block numbers, or an extent tree root


def parse_inode(raw: bytes) -> Inode:
    (mode,) = struct.unpack_from("<H", raw, 0)
    (size_lo,) = struct.unpack_from("<I", raw, 4)
    (flags,) = struct.unpack_from("<I", raw, 32)
    block = struct.unpack_from("<15I", raw, 40)
    (size_high,) = struct.unpack_from("<I", raw, 108)
    return Inode(mode, size_lo | size_high << 32, size_lo, flags, block)


def block_map_extents(
    read_block: Callable[[int], bytes], inode: Inode, block_size: int, max_blocks: int
) -> list[Extent]:
    """A block-mapped (ext2/ext3) file's data as extents; unmapped blocks are holes.

    ``max_blocks`` bounds the walk (the volume's block count): a hostile indirect tree
    cannot make it run longer than a real file on the same volume.
    """
    per = block_size // 4
    nblocks = (
        -(-inode.size // block_size)
        if stat.S_ISREG(inode.mode)
        else -(-inode.size_lo // block_size)
    )
    runs: list[list[int]] = []  # [first logical block, first physical block, count]
    budget = [max_blocks]

    def leaf(logical: int, physical: int) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            raise FilesystemError("ext: a block map maps more blocks than the volume has")
        if runs and runs[-1][0] + runs[-1][2] == logical and runs[-1][1] + runs[-1][2] == physical:
            runs[-1][2] += 1
        else:
            runs.append([logical, physical, 1])

    def walk(ptr: int, level: int, first: int) -> None:
        if ptr == 0 or first >= nblocks:
            return
        if level == 0:
            leaf(first, ptr)
            return
        span = per ** (level - 1)
        for i, child in enumerate(struct.unpack(f"<{per}I", read_block(ptr))):
            walk(child, level - 1, first + i * span)

    for i in range(DIRECT_BLOCKS):
        walk(inode.block[i], 0, i)
    first = DIRECT_BLOCKS
    for level in (1, 2, 3):
        walk(inode.block[DIRECT_BLOCKS + level - 1], level, first)
        first += per**level
    return [Extent(lo * block_size, ph * block_size, n * block_size) for lo, ph, n in runs]


class ExtFilesystem(LibyalFilesystem):
    library = pyfsext

    def __init__(self, reader: Reader, kind: str, superblock: Superblock) -> None:
        self.kind = kind
        self.superblock = superblock
        self._inode_tables: dict[int, int] = {}
        super().__init__(reader)

    def _inode(self, node: LibyalNode) -> Inode | None:
        """The node's on-disk inode, read by us; None where we cannot locate it (meta_bg)."""
        where = self._inode_offset(int(node.get_inode_number()))
        if where is None:
            return None
        raw = self.reader.read_at(where, GOOD_OLD_INODE_SIZE)
        if len(raw) != GOOD_OLD_INODE_SIZE:
            raise FilesystemError("ext: an inode lies past the end of the volume")
        return parse_inode(raw)

    def _size(self, node: LibyalNode) -> int:
        # libfsext 20260821 drops i_size_high for block-mapped (ext2/ext3) files: a 5 GiB
        # file reads as 1 GiB. The inode itself has the full size.
        size = int(node.get_size())
        inode = self._inode(node) if stat.S_ISREG(int(node.get_file_mode())) else None
        return size if inode is None else inode.size

    def _extents(self, node: LibyalNode, size: int) -> list[Extent] | None:
        inode = self._inode(node)
        if inode is None or inode.flags & EXTENTS_FL:
            return super()._extents(node, size)
        if inode.flags & INLINE_DATA_FL:
            return None
        # libfsext 20260821 loses the blocks behind a triple-indirect block (the tail of a
        # 5 GiB sparse ext2 file read as zeros): block maps are walked here
        bs = self.superblock.block_size
        volume_blocks = self.reader.size // bs

        def read_block(n: int) -> bytes:
            if n >= volume_blocks:
                raise FilesystemError(f"ext: block {n} lies past the end of the volume")
            return self.reader.read_at(n * bs, bs)

        extents = block_map_extents(read_block, inode, bs, volume_blocks)
        if any(
            e.physical is not None and e.physical + e.length > self.reader.size for e in extents
        ):
            raise FilesystemError("ext: a file's blocks lie past the end of the volume")
        return extents

    def _inode_offset(self, ino: int) -> int | None:
        """Byte offset of inode ``ino``, from the group descriptor table; None with meta_bg."""
        sb = self.superblock
        if sb.feature_incompat & INCOMPAT_META_BG or not sb.inodes_per_group or ino < 1:
            return None
        group, index = divmod(ino - 1, sb.inodes_per_group)
        table = self._inode_tables.get(group)
        if table is None:
            gdt = (sb.first_data_block + 1) * sb.block_size
            desc = self.reader.read_at(gdt + group * sb.desc_size, sb.desc_size)
            if len(desc) != sb.desc_size:
                raise FilesystemError("ext: a group descriptor lies past the end of the volume")
            table = int.from_bytes(desc[8:12], "little")
            if sb.desc_size >= 64:
                table |= int.from_bytes(desc[0x28:0x2C], "little") << 32
            self._inode_tables[group] = table
        return table * sb.block_size + index * sb.inode_size

    def _read_label(self) -> str | None:
        name = self.superblock.volume_name.split(b"\x00", 1)[0]
        return fsdecode(name) if name else None

    def _children(self, node: LibyalNode) -> Iterator[tuple[str, LibyalNode]]:
        with self._library_errors("read a directory"):
            inode = self._inode(node)
            if inode is not None:
                size = inode.size_lo
                extents = self._extents(node, size) if size else []
                if extents is None:  # inline data: no blocks of its own to parse
                    return super()._children(node)
            else:  # libfsext reports 0 as a directory's size: its extents map its blocks
                count = int(node.get_number_of_extents())
                if count == 0:
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
                for raw, ino in parse_dir_block(data[start : start + bs], filetype):
                    if b"/" in raw:
                        raise FilesystemError("ext: a directory entry name holds '/'")
                    child = self._volume.get_file_entry_by_inode(ino)
                    out.append((fsdecode(raw), child))
        return iter(out)


def open_fs(reader: Reader) -> ExtFilesystem:
    sb = parse_superblock(reader.read_at(SUPERBLOCK_OFFSET, 1024))
    kind = detect(reader)
    if kind is None:
        raise FilesystemError("not an ext2/3/4 filesystem")
    return ExtFilesystem(reader, kind, sb)

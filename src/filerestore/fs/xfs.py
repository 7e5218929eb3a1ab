# References: "XFS Algorithms & Data Structures" (kernel.org, Documentation/filesystems/xfs/
# xfs-on-disk-format): superblock (ch. 12), inode core and data fork (ch. 16), extent
# records (ch. 17, 128-bit packed), short-form directories and directory data blocks (ch. 19).
"""XFS, read through libfsxfs (pyfsxfs); names it cannot decode are read from disk here.

libfsxfs 20260901 raises for an entry name that is not valid UTF-8 (its listing is otherwise
exact), so for a directory holding such names the entries are read from disk
(fs/xfs_dir.py: short-form, extents and B+tree data forks). The same reader gives a page of
a large directory its names and kinds (the entries' file type) without the library making
a file entry of each.

libfsxfs also reports extent offsets in any allocation group but the first wrongly (its
``read_buffer`` is right): file data is read through extents translated here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import pyfsxfs

from filerestore.blockio import Reader
from filerestore.errors import FilesystemError, UnsupportedImageError
from filerestore.fs.contents import FileContents
from filerestore.fs.corrupt import parse_errors
from filerestore.fs.libyal import (
    EXTENT_FLAG_SPARSE,
    LibyalFilesystem,
    LibyalNode,
    fsdecode,
)
from filerestore.fs.limits import XFS_MAX_FILE_SIZE
from filerestore.fs.named_dirs import signed_dirs, signed_locations

XFS_MAGIC = b"XFSB"
INODE_MAGIC = b"IN"
DIR2_LEAF_OFFSET = 32 << 30  # byte offset where a directory's leaf/free space starts
DATA_MAGICS_V4 = (b"XD2B", b"XD2D")  # block form, data block (16-byte header)
DATA_MAGICS_V5 = (b"XDB3", b"XDD3")  # with CRC, owner, LSN (64-byte header)
FORMAT_LOCAL, FORMAT_EXTENTS = 1, 2
INCOMPAT_FTYPE = 0x1
INCOMPAT_SPINODES = 0x2  # sparse inode chunks: inode B+tree records carry a hole mask
VERSION2_FTYPE = 0x200
VERSION_NLINKBIT = 0x0020  # sb_versionnum: 32-bit link counts, i.e. version 2 inodes


@dataclass(frozen=True, slots=True)
class XfsSuperblock:
    block_size: int
    ag_blocks: int
    inode_size: int
    version: int
    ag_blk_log: int
    inop_blog: int
    dir_blk_log: int
    has_ftype: bool
    nlink: bool = True
    ag_count: int = 1
    sect_size: int = 512
    sparse_inodes: bool = False

    @property
    def inode_version(self) -> int:
        """The inode version this filesystem writes: 3 on v5; 2 with NLINKBIT; else 1."""
        if self.version == 5:
            return 3
        return 2 if self.nlink else 1

    @property
    def dir_block_size(self) -> int:
        return self.block_size << self.dir_blk_log


def parse_superblock(data: bytes) -> XfsSuperblock:
    (block_size,) = struct.unpack_from(">I", data, 4)
    (ag_blocks,) = struct.unpack_from(">I", data, 84)
    (versionnum,) = struct.unpack_from(">H", data, 100)
    (ag_count,) = struct.unpack_from(">I", data, 88)
    (sect_size,) = struct.unpack_from(">H", data, 102)
    (inode_size,) = struct.unpack_from(">H", data, 104)
    inop_blog, ag_blk_log = data[123], data[124]
    dir_blk_log = data[192]
    (features2,) = struct.unpack_from(">I", data, 200)
    version = versionnum & 0xF
    incompat = struct.unpack_from(">I", data, 216)[0] if version == 5 else 0
    ftype = bool(incompat & INCOMPAT_FTYPE if version == 5 else features2 & VERSION2_FTYPE)
    return XfsSuperblock(
        block_size,
        ag_blocks,
        inode_size,
        version,
        ag_blk_log,
        inop_blog,
        dir_blk_log,
        ftype,
        bool(versionnum & VERSION_NLINKBIT),
        ag_count,
        sect_size,
        bool(incompat & INCOMPAT_SPINODES),
    )


def fsblock_to_byte(sb: XfsSuperblock, fsblock: int) -> int:
    """XFS_FSB_TO_DADDR: a filesystem block number (AG number in the high bits) to bytes."""
    agno = fsblock >> sb.ag_blk_log
    agbno = fsblock & ((1 << sb.ag_blk_log) - 1)
    return (agno * sb.ag_blocks + agbno) * sb.block_size


def inode_to_byte(sb: XfsSuperblock, ino: int) -> int:
    """XFS_INO_TO_FSB plus the inode's slot inside its block, in bytes."""
    slot = ino & ((1 << sb.inop_blog) - 1)
    return fsblock_to_byte(sb, ino >> sb.inop_blog) + slot * sb.inode_size


def parse_extent(rec: bytes) -> tuple[int, int, int]:
    """A packed bmbt record as (logical block, filesystem block, block count)."""
    hi, lo = struct.unpack(">QQ", rec)
    startoff = (hi >> 9) & ((1 << 54) - 1)
    startblock = ((hi & 0x1FF) << 43) | (lo >> 21)
    count = lo & ((1 << 21) - 1)
    return startoff, startblock, count


def inode_version(volume: Reader, sb: XfsSuperblock, ino: int) -> int:
    """di_version of inode ``ino`` (the inode core's byte 4), checked against the magic."""
    core = volume.read_at(inode_to_byte(sb, ino), 8)
    if core[:2] != INODE_MAGIC:
        raise FilesystemError(f"xfs: inode {ino} has no inode magic (corrupt)")
    return core[4]


def detect(reader: Reader) -> str | None:
    data = reader.read_at(0, 512)
    if len(data) < 512 or data[:4] != XFS_MAGIC:
        return None
    sb = parse_superblock(data)
    if sb.block_size < 512 or sb.block_size & (sb.block_size - 1) or not sb.ag_blocks:
        return None
    return "xfs"


class XfsFilesystem(LibyalFilesystem):
    kind = "xfs"
    library = pyfsxfs

    def __init__(self, reader: Reader, superblock: XfsSuperblock) -> None:
        self.superblock = superblock
        if superblock.inode_version == 1:
            # xfsprogs and the kernel refuse these too ("V1 inodes unsupported"); libfsxfs
            # reads their link counts from the wrong field and has listed an empty root
            raise UnsupportedImageError(
                "xfs: unsupported inode version 1 (a version 4 filesystem without NLINKBIT)"
            )
        super().__init__(reader)
        self._check_inode(self._root_node)

    def _check_inode(self, node: LibyalNode) -> None:
        """Refuse an inode whose version is not the one this filesystem writes."""
        ino = int(node.get_inode_number())
        version = inode_version(self.reader, self.superblock, ino)
        if version != self.superblock.inode_version:
            raise UnsupportedImageError(
                f"xfs: unsupported inode version {version} (inode {ino}, on a version "
                f"{self.superblock.version} filesystem)"
            )

    def _max_file_size(self, node: LibyalNode) -> int:
        return XFS_MAX_FILE_SIZE

    def _open(self, node: LibyalNode) -> FileContents:
        with self._library_errors("read an inode"):
            self._check_inode(node)
        return super()._open(node)

    def _volume_offset(self, offset: int, flags: int) -> int:
        # libfsxfs 20260901 reports an extent's offset as filesystem block * block size, but
        # an XFS block number carries the AG number in its high bits (XFS_FSB_TO_DADDR): in
        # any AG but the first that offset is wrong, so it is translated here.
        if flags & EXTENT_FLAG_SPARSE:
            return offset
        bs = self.superblock.block_size
        return fsblock_to_byte(self.superblock, offset // bs) + offset % bs

    def _children(self, node: LibyalNode) -> Iterator[tuple[str, LibyalNode]]:
        named: list[tuple[str, LibyalNode]] = []
        unnamed: list[LibyalNode] = []
        with self._library_errors("read a directory"):
            self._check_inode(node)
            for i in range(node.get_number_of_sub_file_entries()):
                child = node.get_sub_file_entry(i)
                try:
                    name = child.get_name()
                except OSError:
                    unnamed.append(child)
                    continue
                if name is not None and name not in (".", "..") and "/" not in name:
                    named.append((str(name), child))
            if unnamed:
                named.extend(self._name_from_disk(node, named, unnamed))
        return iter(named)

    def _name_from_disk(
        self, node: LibyalNode, named: list[tuple[str, LibyalNode]], unnamed: list[LibyalNode]
    ) -> Iterator[tuple[str, LibyalNode]]:
        from filerestore.fs.xfs_dir import read_dir_entries

        try:
            entries = read_dir_entries(self.reader, self.superblock, int(node.get_inode_number()))
        except FilesystemError:
            entries = []
        known = {name for name, _ in named}
        by_inode: dict[int, list[bytes]] = {}
        for raw, ino, _ in entries:
            if fsdecode(raw) not in known and b"/" not in raw:
                by_inode.setdefault(ino, []).append(raw)
        for child in unnamed:
            ino = int(child.get_inode_number())
            names = by_inode.get(ino)
            yield (fsdecode(names.pop(0)) if names else f"<undecodable-name-inode-{ino}>"), child

    # --- a page of a large directory: names and kinds from its entries' file type ----------

    def _located(self, node: LibyalNode) -> list[tuple[str, int]] | None:
        """From disk (fs/xfs_dir.py); None (the library's listing) without the ftype
        feature, or for a directory our reader refuses. Locations: inode numbers, negated
        for directories (named_dirs.signed_locations)."""
        from filerestore.fs.xfs_dir import FT_DIR, read_dir_entries

        if not self.superblock.has_ftype:
            return None
        try:
            with self._library_errors("read an inode"):
                ino = int(node.get_inode_number())
            entries = read_dir_entries(self.reader, self.superblock, ino)
        except FilesystemError:
            return None
        if any(b"/" in n for n, _, _ in entries):
            entries = [e for e in entries if b"/" not in e[0]]
        return signed_locations(entries, FT_DIR)

    def _located_dirs(self, named: dict[str, int]) -> list[tuple[str, bool]]:
        return signed_dirs(named)

    def _nodes_at(self, node: LibyalNode, wheres: list[int]) -> list[LibyalNode]:
        with self._library_errors("read an inode"):
            return [self._volume.get_file_entry_by_inode(abs(ino)) for ino in wheres]


def open_fs(reader: Reader) -> XfsFilesystem:
    with parse_errors("xfs", "open the filesystem"):
        if detect(reader) is None:
            raise FilesystemError("not an XFS filesystem")
        return XfsFilesystem(reader, parse_superblock(reader.read_at(0, 512)))

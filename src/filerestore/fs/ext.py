# References: "ext4 Data Structures and Algorithms" (kernel.org, Documentation/filesystems/
# ext4/): the superblock (section 3.1), block group descriptors (3.4), inodes and their
# extra time fields (4.1), linear directory entries (ext4_dir_entry_2, 4.1.1); the kernel's
# fs/ext4/super.c (descriptor_loc, ext4_bg_has_super) for meta_bg; util-linux
# libblkid/src/superblocks/ext.c for telling ext2, ext3 and ext4 apart.
"""ext2, ext3 and ext4, read through libfsext (pyfsext) and, for metadata, by us.

libfsext 20260821 returns no name (None) for a 255-byte name and raises for a name that is not
valid UTF-8, so directories are read here from their on-disk entries (name bytes, inode
number); the library's own sub-entry list is used only for inline-data directories, which
have no blocks to read.

Inodes are read here too, from the inode tables (found through the group descriptors,
meta_bg included), a directory's worth at a time: opening each child through the library
cost more than half of a listing. Nodes are :class:`Inode` tuples; the library opens an
inode by number only to map an extent-mapped file's data, list an inline-data directory, or
read a symlink whose target is not in the inode.

libfsext drops i_size_high of block-mapped (ext2/3) files and the blocks behind a triple-
indirect block: block maps are walked here; extent maps are the library's (exact in tests).
"""

from __future__ import annotations

import stat
import struct
from collections.abc import Hashable, Iterator
from typing import NamedTuple

import pyfsext

from filerestore.blockio import Reader
from filerestore.errors import FilesystemError
from filerestore.fs.contents import FileContents
from filerestore.fs.corrupt import parse_errors
from filerestore.fs.entry import Entry, EntryKind
from filerestore.fs.ext_dir import FT_DIR, check_directory_size, directory_entries
from filerestore.fs.ext_inode import (
    EXTENTS_FL,
    GOOD_OLD_INODE_SIZE,
    INLINE_DATA_FL,
    MAX_EXTENT_DEPTH,
    Inode,
    block_map_extents,
    fast_symlink_target,
    parse_inode,
    tree_extents,
)
from filerestore.fs.libyal import (
    Extent,
    ExtentReader,
    LibraryFileReader,
    LibyalFilesystem,
    LibyalNode,
    fsdecode,
)
from filerestore.fs.limits import ext4_extent_max_size, ext_block_map_max_size
from filerestore.fs.named_dirs import signed_dirs, signed_locations

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
RO_COMPAT_HUGE_FILE = 0x0008
INCOMPAT_LARGEDIR = 0x4000
# what ext3 understands (libblkid EXT3_FEATURE_*_SUPP); anything beyond is ext4
EXT3_INCOMPAT_SUPP = INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_META_BG
EXT3_RO_COMPAT_SUPP = RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | RO_COMPAT_BTREE_DIR


INCOMPAT_64BIT = 0x0080
COMPAT_SPARSE_SUPER2 = 0x0200
GROUP_DESC_SIZE = 32  # without INCOMPAT_64BIT


# A NamedTuple, not a frozen dataclass: creating a dataclass compiles its methods,
# which every CLI start-up would pay for (issue 14)
class Superblock(NamedTuple):
    """The fields of an ext2/3/4 superblock this module reads."""

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
    inodes_count: int = 0
    blocks_per_group: int = 0
    first_meta_bg: int = 0
    backup_bgs: tuple[int, int] = (0, 0)

    @property
    def block_size(self) -> int:
        return 1024 << self.log_block_size


def parse_superblock(data: bytes) -> Superblock:
    """The fields of the 1024-byte superblock this module needs."""
    first_data_block, log_block_size = struct.unpack_from("<II", data, 20)
    (inodes_count,) = struct.unpack_from("<I", data, 0)
    (blocks_per_group,) = struct.unpack_from("<I", data, 32)
    (inodes_per_group,) = struct.unpack_from("<I", data, 40)
    (magic,) = struct.unpack_from("<H", data, 56)
    (rev_level,) = struct.unpack_from("<I", data, 76)
    (inode_size,) = struct.unpack_from("<H", data, 88)
    compat, incompat, ro_compat = struct.unpack_from("<III", data, 92)
    (desc_size,) = struct.unpack_from("<H", data, 254)
    (first_meta_bg,) = struct.unpack_from("<I", data, 260)
    backup_bg0, backup_bg1 = struct.unpack_from("<II", data, 588)
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
        inodes_count,
        blocks_per_group,
        first_meta_bg,
        (backup_bg0, backup_bg1),
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


def _is_power_of(n: int, base: int) -> bool:
    while n % base == 0:
        n //= base
    return n == 1


def group_has_super(sb: Superblock, group: int) -> bool:
    """Whether block group ``group`` holds a superblock copy (the kernel's ext4_bg_has_super)."""
    if group == 0:
        return True
    if sb.feature_compat & COMPAT_SPARSE_SUPER2:
        return group in sb.backup_bgs
    if group <= 1 or not sb.feature_ro_compat & RO_COMPAT_SPARSE_SUPER:
        return True
    if not group & 1:
        return False
    return _is_power_of(group, 3) or _is_power_of(group, 5) or _is_power_of(group, 7)


def group_desc_offset(sb: Superblock, group: int) -> int:
    """Byte offset of block group ``group``'s descriptor (the kernel's descriptor_loc).

    Without meta_bg the descriptors follow the superblock's block; with it, each meta group
    (one descriptor block's worth of groups) keeps its block in its own first group, after
    that group's superblock copy.
    """
    bs = sb.block_size
    per_block = bs // sb.desc_size
    nr, index = divmod(group, per_block)
    if not sb.feature_incompat & INCOMPAT_META_BG or nr < sb.first_meta_bg:
        block = sb.first_data_block + 1 + nr
    else:
        first = nr * per_block
        block = first * sb.blocks_per_group + sb.first_data_block + group_has_super(sb, first)
        if bs == 1024 and nr == 0 and sb.first_data_block == 0:
            block += 1
    return block * bs + index * sb.desc_size


_KIND_BY_FORMAT = {
    stat.S_IFDIR: EntryKind.DIR,
    stat.S_IFREG: EntryKind.FILE,
    stat.S_IFLNK: EntryKind.SYMLINK,
}
_OTHER = EntryKind.OTHER
_DIR = EntryKind.DIR
_SYMLINK = EntryKind.SYMLINK
ROOT_INODE = 2
_INODE_CHUNK = 64 * 1024  # inode table read in aligned chunks (the volume cache's block size)


class ExtFilesystem(LibyalFilesystem):
    """Nodes are :class:`Inode` tuples read by us from the inode table; the library opens an
    inode by number only to map an extent-mapped file's data, to list an inline-data
    directory, or to read a symlink that is not a fast one."""

    library = pyfsext

    def __init__(self, reader: Reader, kind: str, superblock: Superblock) -> None:
        self.kind = kind
        self.superblock = superblock
        self._inode_tables: dict[int, int] = {}
        self._kept: dict[int, bytes] = {}  # inodes' bytes as the volume holds them (ext_changes)
        self.has_filetype = bool(superblock.feature_incompat & INCOMPAT_FILETYPE)
        sb = superblock
        if not sb.inodes_per_group or not sb.inodes_count or sb.desc_size < GROUP_DESC_SIZE:
            raise FilesystemError(f"{kind}: the superblock gives no inode table geometry")
        if sb.desc_size > sb.block_size:  # divides the block; a larger one divided by zero
            raise FilesystemError(
                f"{kind}: group descriptor size {sb.desc_size} exceeds the block size (corrupt)"
            )
        if sb.inode_size < GOOD_OLD_INODE_SIZE or sb.inode_size > sb.block_size:
            raise FilesystemError(f"{kind}: inode size {sb.inode_size} is out of range")
        if sb.feature_incompat & INCOMPAT_META_BG and not sb.blocks_per_group:
            raise FilesystemError(f"{kind}: the superblock gives no blocks per group")
        huge = bool(sb.feature_ro_compat & RO_COMPAT_HUGE_FILE)
        bits = sb.log_block_size + 10
        self._max_sizes = (ext_block_map_max_size(bits, huge), ext4_extent_max_size(bits, huge))
        super().__init__(reader)
        self._root_inode = self._read_inodes([ROOT_INODE])[0]

    # --- inodes, read by us -------------------------------------------------------------

    def _inode_table(self, group: int) -> int:
        """Block number of ``group``'s inode table, from its group descriptor."""
        table = self._inode_tables.get(group)
        if table is None:
            sb = self.superblock
            where = group_desc_offset(sb, group)
            desc = self.reader.read_at(where, sb.desc_size)
            if len(desc) != sb.desc_size:
                raise FilesystemError("ext: a group descriptor lies past the end of the volume")
            table = int.from_bytes(desc[8:12], "little")
            if sb.desc_size >= 64:
                table |= int.from_bytes(desc[0x28:0x2C], "little") << 32
            self._inode_tables[group] = table
        return table

    def _read_inodes(self, numbers: list[int]) -> list[Inode]:
        """The inodes ``numbers``, read off the inode tables in aligned chunks."""
        raw = self._raw_inodes(numbers)
        isize = self.superblock.inode_size
        return [parse_inode(*raw[ino], isize, ino) for ino in numbers]

    def _raw_inodes(self, numbers: list[int]) -> dict[int, tuple[bytes, int]]:
        """(chunk, offset in it) of each inode, the aligned chunks of the inode tables read
        in inode-number order."""
        sb = self.superblock
        bs, isize, per_group, count = (
            sb.block_size,
            sb.inode_size,
            sb.inodes_per_group,
            sb.inodes_count,
        )
        read_at, kept = self.reader.read_at, self._kept
        chunks: dict[int, bytes] = {}
        out: dict[int, tuple[bytes, int]] = {}
        for ino in sorted(set(numbers)):
            if not 0 < ino <= count:
                raise FilesystemError(f"ext: inode {ino} is outside the inode table")
            if kept and ino in kept:
                out[ino] = (kept[ino], 0)
                continue
            group, index = divmod(ino - 1, per_group)
            where = self._inode_table(group) * bs + index * isize
            first = where - where % _INODE_CHUNK
            data = chunks.get(first)
            if data is None:
                data = chunks[first] = read_at(first, _INODE_CHUNK)
            offset = where - first
            if offset + isize > len(data):  # past the end of the volume, or of the chunk
                data, offset = read_at(where, isize), 0
                if len(data) < isize:
                    raise FilesystemError("ext: an inode lies past the end of the volume")
            out[ino] = (data, offset)
        return out

    def _handle(self, node: Inode) -> LibyalNode:
        """The library's file entry for the inode (opened by number, not by path)."""
        with self._library_errors("open an inode"):
            return self._volume.get_file_entry_by_inode(node.number)

    def dir_size(self, node: Inode) -> int:
        # ext4_isize: i_size_high is a directory's only with largedir (else i_dir_acl)
        large = self.superblock.feature_incompat & INCOMPAT_LARGEDIR
        return node.size if large else node.size_lo

    def dir_extents(self, node: Inode, size: int) -> list[Extent] | None:
        """Directory ``node``'s blocks (``size`` bytes of them): its extent tree read here,
        else through the library; None for inline data (no blocks)."""
        if not size:
            return []
        return self.tree_extents(node, size) or self._extents(node, size)

    def tree_extents(self, node: Inode, size: int) -> list[Extent] | None:
        """Directory ``node``'s extents from its extent tree read here (ext_inode), or None."""
        bs = self.superblock.block_size
        # a tree has at most a node per block it maps, and a few above them
        return tree_extents(node, bs, self._read_block, 2 * (size // bs) + MAX_EXTENT_DEPTH)

    def _read_block(self, n: int) -> bytes:
        bs = self.superblock.block_size
        if n >= self.reader.size // bs:
            raise FilesystemError(f"ext: block {n} lies past the end of the volume")
        return self.reader.read_at(n * bs, bs)

    def _extents(self, node: Inode, size: int) -> list[Extent] | None:
        if node.flags & INLINE_DATA_FL:
            return None
        if node.flags & EXTENTS_FL:
            return super()._extents(self._handle(node), size)
        # libfsext 20260821 loses the blocks behind a triple-indirect block (the tail of a
        # 5 GiB sparse ext2 file read as zeros): block maps are walked here
        bs = self.superblock.block_size
        volume_blocks = self.reader.size // bs
        extents = block_map_extents(self._read_block, node, bs, volume_blocks)
        if any(
            e.physical is not None and e.physical + e.length > self.reader.size for e in extents
        ):
            raise FilesystemError("ext: a file's blocks lie past the end of the volume")
        return extents

    def _read_label(self) -> str | None:
        name = self.superblock.volume_name.split(b"\x00", 1)[0]
        return fsdecode(name) if name else None

    # --- base hooks -----------------------------------------------------------------------

    def _root(self) -> Inode:
        return self._root_inode

    def _kind(self, node: Inode) -> EntryKind:
        return _KIND_BY_FORMAT.get(node.mode & 0o170000, _OTHER)

    kind_of = _kind

    def _key(self, node: Inode) -> Hashable:
        return node.number

    def _entry(self, name: str, path: str, node: Inode) -> Entry:
        kind = _KIND_BY_FORMAT.get(node.mode & 0o170000, _OTHER)
        return Entry(
            name,
            path,
            kind,
            0 if kind is _DIR else node.size,
            node.mode,
            node.uid,
            node.gid,
            node.mtime_ns,
            node.atime_ns,
            node.ctime_ns,
            node.btime_ns,
            node.number,
            node.links,
            self._link_target(node) if kind is _SYMLINK else None,
        )

    def _link_target(self, node: Inode) -> str:
        target = fast_symlink_target(node)
        if target is not None:
            return fsdecode(target)
        if node.size > self.superblock.block_size:  # ext4_symlink: at most one block
            raise FilesystemError(
                f"ext: symbolic link inode {node.number} claims a {node.size}-byte target: corrupt"
            )
        return super()._link_target(self._handle(node))

    def _claimed_size(self, node: Inode) -> int | None:
        return node.size

    def _max_file_size(self, node: Inode) -> int:
        return self._max_sizes[1 if node.flags & EXTENTS_FL else 0]

    def _xattrs(self, node: Inode) -> dict[str, bytes]:
        # read here, not through the library: see fs/ext_xattr.py (imported with the first
        # xattrs read: a listing needs none; CLI start-up, issue 14)
        from filerestore.fs import ext_xattr

        sb = self.superblock
        found: dict[str, bytes] = {}
        if sb.inode_size > GOOD_OLD_INODE_SIZE:
            group, index = divmod(node.number - 1, sb.inodes_per_group)
            where = self._inode_table(group) * sb.block_size + index * sb.inode_size
            raw = self.reader.read_at(where, sb.inode_size)
            extra_isize = int.from_bytes(raw[128:130], "little")
            if 128 + extra_isize <= len(raw):
                found.update(ext_xattr.in_inode(raw, extra_isize))
        if node.file_acl:
            bs = sb.block_size
            if node.file_acl >= self.reader.size // bs:
                raise FilesystemError("ext: an xattr block lies past the end of the volume")
            block = ext_xattr.in_block(self.reader.read_at(node.file_acl * bs, bs))
            found.update(block)  # the kernel lists in-inode attributes first, as here
        return found

    def _open(self, node: Inode) -> FileContents:
        size = node.size
        with self._library_errors("read a file's extents"):
            extents = self._extents(node, size) if size else []
        if extents is None:
            return LibraryFileReader(self, self._handle(node), size)
        return ExtentReader(self.reader, extents, size)

    def _inline_children(self, handle: LibyalNode) -> list[tuple[str, int]]:
        """(name, inode number) of an inline-data directory's entries, from the library."""
        listed = []
        for i in range(int(handle.get_number_of_sub_file_entries())):
            child = handle.get_sub_file_entry(i)
            ino = int(child.get_inode_number())
            try:
                name = child.get_name()
            except OSError:  # not valid UTF-8: listed under a name that still resolves
                name = f"<undecodable-name-{ino}>"
            if name is not None and str(name) not in (".", "..") and "/" not in str(name):
                listed.append((str(name), ino))
        return listed

    def _children(self, node: Inode) -> Iterator[tuple[str, Inode]]:
        listed = self._dir_entries(node)
        inodes = self._read_inodes([ino for _, ino in listed])
        return iter([(name, inode) for (name, _), inode in zip(listed, inodes, strict=True)])

    def _iter_all(self) -> Iterator[tuple[Entry, list[Entry]]]:
        from filerestore.fs.ext_walk import iter_all  # the bulk walk's own module

        return iter_all(self)

    def _dir_entries(self, node: Inode) -> list[tuple[str, int]]:
        """(name, inode number) of each entry of directory ``node``."""
        raw = self._raw_entries(node)
        if raw is None:  # inline data: no blocks of its own to parse
            with self._library_errors("read a directory"):
                return self._inline_children(self._handle(node))
        return [(name.decode("utf-8", "surrogateescape"), ino) for name, ino, _ in raw]

    def _raw_entries(self, node: Inode) -> list[tuple[bytes, int, int]] | None:
        """(name bytes, inode number, file type) of each entry of directory ``node``, from
        its blocks; None for an inline-data directory (the library lists it)."""
        size = self.dir_size(node)
        check_directory_size(size, self.reader.size, node.number)
        with self._library_errors("read a directory"):
            extents = self.dir_extents(node, size)
            if extents is None:
                return None
            return directory_entries(
                self.reader,
                extents,
                size,
                self.superblock.block_size,
                self.has_filetype,
                node.number,
            )

    # --- a page of a large directory: names and kinds from the entries' file type --------
    # (ext4 Data Structures, 4.1.1: ext4_dir_entry_2.file_type, the kernel's d_type; on in every
    # ext4 and in ext2/3 made by mke2fs for decades; an entry of type 0 sorts as a file)

    def _located(self, node: Inode) -> list[tuple[str, int]] | None:
        """Locations: inode numbers, negated for directories (named_dirs.signed_locations)."""
        raw = self._raw_entries(node) if self.has_filetype else None
        if raw is None:  # no file types, or inline data: the usual listing
            return None
        return signed_locations(raw, FT_DIR)

    def _located_dirs(self, named: dict[str, int]) -> list[tuple[str, bool]]:
        return signed_dirs(named)

    def _nodes_at(self, node: Inode, wheres: list[int]) -> list[Inode]:
        return self._read_inodes([abs(ino) for ino in wheres])


def open_fs(reader: Reader) -> ExtFilesystem:
    with parse_errors("ext", "open the filesystem"):
        sb = parse_superblock(reader.read_at(SUPERBLOCK_OFFSET, 1024))
        kind = detect(reader)
        if kind is None:
            raise FilesystemError("not an ext2/3/4 filesystem")
        return ExtFilesystem(reader, kind, sb)

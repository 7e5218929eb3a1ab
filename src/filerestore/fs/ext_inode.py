# References: "ext4 Data Structures and Algorithms" (kernel.org, Documentation/filesystems/
# ext4/): the inode (section 4.1) with its extra time fields (4.1.4 "Inode Timestamps"),
# direct/indirect block maps (4.2.1); the kernel's fs/ext4/ext4.h (ext4_decode_extra_time,
# EXT4_FITS_IN_INODE) and fs/ext4/inode.c (ext4_inode_is_fast_symlink).
"""An ext2/3/4 on-disk inode parsed into an :class:`Inode`, and its block map walked."""

from __future__ import annotations

import stat
import struct
from collections.abc import Callable
from typing import NamedTuple

from filerestore.errors import FilesystemError
from filerestore.fs.libyal import Extent

GOOD_OLD_INODE_SIZE = 128
# i_flags bits (ext4 docs, section 4.1)
EXTENTS_FL = 0x80000
INLINE_DATA_FL = 0x10000000
ENCRYPT_FL = 0x800
HUGE_FILE_FL = 0x40000
EA_INODE_FL = 0x200000
_NOT_FAST_SYMLINK = EXTENTS_FL | INLINE_DATA_FL | ENCRYPT_FL | HUGE_FILE_FL | EA_INODE_FL
DIRECT_BLOCKS = 12  # i_block[0..11]; then single, double and triple indirect
EXTENT_MAGIC = 0xF30A
EXT_INIT_MAX_LEN = 32768  # an ee_len above it marks an unwritten extent (ext4_extents.h)
_EXTENT_HEADER = struct.Struct("<HHHH4x")  # eh_magic, eh_entries, eh_max, eh_depth
_EXTENT = struct.Struct("<IHHI")  # ee_block, ee_len, ee_start_hi, ee_start_lo
_EXTENT_INDEX = struct.Struct("<IIH2x")  # ei_block, ei_leaf_lo, ei_leaf_hi, ei_unused
MAX_EXTENT_DEPTH = 5  # EXT4_MAX_EXTENT_DEPTH (fs/ext4/ext4_extents.h)
ROOT_EXTENTS = 4  # entries the 60-byte i_block holds after the header


class Inode(NamedTuple):
    """The fields of an on-disk inode (ext4 docs, section 4.1) this module reads itself.

    A NamedTuple, not a frozen dataclass: a listing builds one per entry, and a frozen
    dataclass pays a ``object.__setattr__`` call per field. Times are ns since the epoch,
    None where unset (0) or where the inode has no room for the field.
    """

    mode: int
    size: int  # i_size_lo | i_size_high << 32 (regular files; i_dir_acl in old directories)
    size_lo: int
    flags: int
    i_block: bytes  # 60 bytes: 15 block numbers, an extent tree root, or a fast symlink
    uid: int = 0
    gid: int = 0
    links: int = 0
    atime_ns: int | None = None
    ctime_ns: int | None = None
    mtime_ns: int | None = None
    btime_ns: int | None = None
    blocks: int = 0  # i_blocks (lo | high << 32)
    file_acl: int = 0
    number: int = 0  # the inode number it was read as (not stored in the inode)

    @property
    def block(self) -> tuple[int, ...]:
        """i_block as 15 little-endian 32-bit block numbers."""
        return struct.unpack("<15I", self.i_block)


# i_mode .. l_i_gid_high: the 124 bytes every inode has (osd2 read as Linux's)
_CORE_FIELDS = "HHIiii4xHHII4x60s4xII4xHHHH"
# i_extra_isize, i_checksum_hi, i_ctime_extra, i_mtime_extra, i_atime_extra, i_crtime,
# i_crtime_extra: the large-inode fields at byte 128, after l_i_reserved
_EXTRA_FIELDS = "HHIIIiI"
_INODE_CORE = struct.Struct("<" + _CORE_FIELDS)
_LARGE_INODE = struct.Struct("<" + _CORE_FIELDS + "4x" + _EXTRA_FIELDS)  # both in one call
#: an inode of at least this many bytes has room for every large-inode field read here
LARGE_INODE_SIZE = _LARGE_INODE.size
_NO_EXTRA = (0,) * len(_EXTRA_FIELDS)  # an inode too short for them: i_extra_isize 0
_EXTRA_AT = GOOD_OLD_INODE_SIZE
_ALL_EXTRA = 24  # i_extra_isize that holds every large field (through i_crtime_extra)
_NSEC = 1_000_000_000
_Ns = int | None
#: the fields of an :class:`Inode` but its number, in its order
InodeFields = tuple[int, int, int, int, bytes, int, int, int, _Ns, _Ns, _Ns, _Ns, int, int]


def _extra_time(seconds: int, extra: int) -> int | None:
    # ext4_decode_extra_time: the low 2 bits extend the signed seconds by 2^32 epochs,
    # the upper 30 bits are nanoseconds
    ns = (seconds + ((extra & 3) << 32)) * _NSEC + (extra >> 2)
    return ns or None


def parse_inode(raw: bytes, offset: int = 0, inode_size: int = 0, number: int = 0) -> Inode:
    """The inode at ``raw[offset:offset + inode_size]`` (``inode_size`` 0: to the end).

    Large-inode fields (nanoseconds, creation time) are read only where ``i_extra_isize``
    says the inode has them, as the kernel's EXT4_FITS_IN_INODE decides.
    """
    available = (len(raw) - offset) if inode_size <= 0 else inode_size
    if available < GOOD_OLD_INODE_SIZE or offset + available > len(raw):
        raise FilesystemError("ext: an inode lies past the end of the volume")
    return Inode(*inode_fields(raw, offset, available), number)


def inode_fields(raw: bytes, offset: int, available: int) -> InodeFields:
    """The fields of the inode of ``available`` bytes (at least 128, inside ``raw``) at
    ``offset``: the one unpacker of :func:`parse_inode` and the bulk walk (ext_walk), which
    takes them as they are for a file, without building an :class:`Inode`."""
    if available >= LARGE_INODE_SIZE:
        fields = _LARGE_INODE.unpack_from(raw, offset)
    else:
        fields = _INODE_CORE.unpack_from(raw, offset) + _NO_EXTRA
    (
        mode,
        uid,
        size_lo,
        atime,
        ctime,
        mtime,
        gid,
        links,
        blocks_lo,
        flags,
        i_block,
        file_acl_lo,
        size_high,
        blocks_high,
        file_acl_high,
        uid_high,
        gid_high,
        extra_isize,
        _,
        ctime_x,
        mtime_x,
        atime_x,
        crtime,
        crtime_x,
    ) = fields
    if _EXTRA_AT + extra_isize > available:  # the kernel refuses such an inode
        extra_isize = 0
    if extra_isize >= _ALL_EXTRA:  # the common case, so _extra_time written out (speed)
        ctime_ns = ((ctime + ((ctime_x & 3) << 32)) * _NSEC + (ctime_x >> 2)) or None
        mtime_ns = ((mtime + ((mtime_x & 3) << 32)) * _NSEC + (mtime_x >> 2)) or None
        atime_ns = ((atime + ((atime_x & 3) << 32)) * _NSEC + (atime_x >> 2)) or None
        btime_ns = ((crtime + ((crtime_x & 3) << 32)) * _NSEC + (crtime_x >> 2)) or None
    else:
        ctime_ns, mtime_ns, atime_ns, btime_ns = _short_extra_times(
            extra_isize, ctime, ctime_x, mtime, mtime_x, atime, atime_x, crtime
        )
    return (
        mode,
        size_lo | size_high << 32,
        size_lo,
        flags,
        i_block,
        uid | uid_high << 16,
        gid | gid_high << 16,
        links,
        atime_ns,
        ctime_ns,
        mtime_ns,
        btime_ns,
        blocks_lo | blocks_high << 32,
        file_acl_lo | file_acl_high << 32,
    )


def _short_extra_times(
    extra_isize: int,
    ctime: int,
    ctime_x: int,
    mtime: int,
    mtime_x: int,
    atime: int,
    atime_x: int,
    crtime: int,
) -> tuple[_Ns, _Ns, _Ns, _Ns]:
    """ctime, mtime, atime and creation time of an inode without every large field: each
    extra field is read only where ``extra_isize`` covers it."""
    if extra_isize >= 16:  # ctime, mtime and atime extra all fit (0x84..0x90)
        ctime_ns = _extra_time(ctime, ctime_x)
        mtime_ns = _extra_time(mtime, mtime_x)
        atime_ns = _extra_time(atime, atime_x)
    else:
        ctime_ns = ctime * _NSEC if ctime else None
        mtime_ns = mtime * _NSEC if mtime else None
        atime_ns = atime * _NSEC if atime else None
        if extra_isize >= 8:
            ctime_ns = _extra_time(ctime, ctime_x)
        if extra_isize >= 12:
            mtime_ns = _extra_time(mtime, mtime_x)
    btime_ns = crtime * _NSEC if extra_isize >= 20 and crtime else None
    return ctime_ns, mtime_ns, atime_ns, btime_ns


def fast_symlink_target(inode: Inode) -> bytes | None:
    """A fast symlink's target, kept in i_block; None when the target lives elsewhere.

    As ext4_inode_is_fast_symlink: no data blocks (and no xattr block to account for), no
    inline data; anything unusual (extents, encryption, an EA inode) is left to the library.
    """
    if inode.flags & _NOT_FAST_SYMLINK or inode.blocks or inode.file_acl:
        return None
    if not 0 < inode.size < len(inode.i_block):
        return None
    return inode.i_block[: inode.size]


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


def tree_extents(
    inode: Inode,
    block_size: int,
    read_block: Callable[[int], bytes],
    max_nodes: int,
) -> list[Extent] | None:
    """The extents of an extent-mapped inode, all written, from its extent tree (ext4
    docs, 4.2.2): the root in i_block and, with ``read_block`` (a block's bytes by number),
    at most ``max_nodes`` tree blocks below it. None for anything else (inline data, a block
    map, an unwritten extent, a tree that is not one: wrong magic, depth or counts, extents
    out of order, more blocks than allowed), which the caller reads the long way."""
    if not inode.flags & EXTENTS_FL or inode.flags & INLINE_DATA_FL:
        return None
    out: list[Extent] = []
    budget = max_nodes

    def walk(node: bytes, depth: int | None, most: int) -> bool:
        nonlocal budget
        magic, count, limit, level = _EXTENT_HEADER.unpack_from(node, 0)
        if magic != EXTENT_MAGIC or count > limit or limit > most or level > MAX_EXTENT_DEPTH:
            return False
        if depth is not None and level != depth:
            return False
        for i in range(count):
            if level:
                _, lo, hi = _EXTENT_INDEX.unpack_from(node, 12 + 12 * i)
                budget -= 1
                if budget < 0:
                    return False
                child = read_block(hi << 32 | lo)
                if len(child) != block_size or not walk(child, level - 1, (block_size - 12) // 12):
                    return False
                continue
            logical, length, hi, lo = _EXTENT.unpack_from(node, 12 + 12 * i)
            if length > EXT_INIT_MAX_LEN or length == 0:
                return False
            if out and logical * block_size < out[-1].logical + out[-1].length:
                return False  # out of order, or overlapping the extent before
            physical = hi << 32 | lo
            out.append(Extent(logical * block_size, physical * block_size, length * block_size))
        return True

    return out if walk(inode.i_block, None, ROOT_EXTENTS) else None

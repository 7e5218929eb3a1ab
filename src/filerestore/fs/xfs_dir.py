# References: "XFS Algorithms & Data Structures" (kernel.org, Documentation/filesystems/xfs/
# xfs-on-disk-format): the inode core (di_format at byte 5, di_nextents at 76, di_forkoff at
# 82) and the data fork (ch. 16); extent records and B+tree extent lists (ch. 17:
# xfs_bmdr_block in the inode, long-format btree blocks "BMAP"/"BMA3" of 24/72-byte headers);
# short-form directories and directory data blocks (ch. 19, the entry's ftype byte after its
# name where the filesystem has it).
"""An XFS directory's entries read from disk: short-form, extents and B+tree data forks.

Each entry comes as (name bytes, inode, file type); the file type is 0 (unknown) on a
filesystem without the ftype feature. Everything is bounded by the volume: a B+tree is
walked level by level with its depth, fan-out and blocks checked, and directory blocks are
read one at a time, so a corrupt inode costs a clean refusal (FilesystemError).
"""

from __future__ import annotations

import struct

from filerestore.blockio import Reader
from filerestore.errors import FilesystemError
from filerestore.fs.xfs import (
    DATA_MAGICS_V4,
    DATA_MAGICS_V5,
    DIR2_LEAF_OFFSET,
    FORMAT_EXTENTS,
    FORMAT_LOCAL,
    INODE_MAGIC,
    XfsSuperblock,
    fsblock_to_byte,
    inode_to_byte,
    parse_extent,
)

FORMAT_BTREE = 3
FT_DIR = 2  # XFS_DIR3_FT_DIR
BMBT_MAGICS = {b"BMAP": 24, b"BMA3": 72}  # long-format btree block magic: header size
MAX_BMBT_LEVELS = 12  # the kernel's XFS_BM_MAXLEVELS is 9 for 64-bit extent counts
_ENTRY_HEAD = struct.Struct(">QB")  # inumber, namelen

Entry = tuple[bytes, int, int]


def parse_shortform(fork: bytes, ftype: bool) -> list[Entry]:
    """(name, inode, file type) of a short-form directory kept in the inode's data fork."""
    count, i8count = fork[0], fork[1]
    inum_size = 8 if i8count else 4
    pos = 2 + inum_size
    out = []
    for _ in range(count):
        namelen = fork[pos]
        name = bytes(fork[pos + 3 : pos + 3 + namelen])
        kind = fork[pos + 3 + namelen] if ftype else 0
        pos += 3 + namelen + (1 if ftype else 0)
        ino = int.from_bytes(fork[pos : pos + inum_size], "big")
        pos += inum_size
        if len(name) != namelen:
            raise FilesystemError("xfs: short-form directory runs past its inode")
        out.append((name, ino, kind))
    return out


def parse_data_block(block: bytes, v5: bool, ftype: bool) -> list[Entry]:
    """(name, inode, file type) of each entry of a directory data block (block form or leaf
    form), "." and ".." left out."""
    magic = block[:4]
    if magic not in (DATA_MAGICS_V5 if v5 else DATA_MAGICS_V4):
        return []
    block = bytes(block)  # slices of bytes are bytes: names compare and decode as they are
    pos = 64 if v5 else 16
    end = len(block)
    if magic in (b"XD2B", b"XDB3"):  # block form: leaf entries and a tail end the block
        (count,) = struct.unpack_from(">I", block, end - 8)
        end = end - 8 - count * 8
    out: list[Entry] = []
    append = out.append
    head = _ENTRY_HEAD.unpack_from
    extra = 8 + 1 + (1 if ftype else 0) + 2 + 7  # inumber, namelen, ftype, tag, rounding to 8
    last = end - 8  # the last offset an entry may begin at
    while pos <= last:
        if block[pos] == 0xFF == block[pos + 1]:  # an unused region
            (length,) = struct.unpack_from(">H", block, pos + 2)
            if length < 8:
                raise FilesystemError("xfs: corrupt unused region in a directory block")
            pos += length
            continue
        ino, namelen = head(block, pos)
        start = pos + 9
        name = block[start : start + namelen]
        if namelen > 2 or (name != b"." and name != b".."):
            append((name, ino, block[start + namelen] if ftype else 0))
        pos += (namelen + extra) & ~7
    return out


def read_dir_entries(volume: Reader, sb: XfsSuperblock, ino: int) -> list[Entry]:
    """(name, inode, file type) of every entry of directory ``ino``, "." and ".." left out.

    Raises FilesystemError for a corrupt directory or a data fork format not handled here.
    """
    try:
        return _read_dir_entries(volume, sb, ino)
    except (IndexError, struct.error) as exc:
        raise FilesystemError(f"xfs: corrupt directory inode {ino}") from exc


def _read_dir_entries(volume: Reader, sb: XfsSuperblock, ino: int) -> list[Entry]:
    fork, blocks = _data_blocks(volume, sb, ino)
    if blocks is None:
        return parse_shortform(fork, sb.has_ftype)
    out: list[Entry] = []
    dbs = sb.dir_block_size
    for where in blocks:
        block = volume.read_at(where, dbs)
        if len(block) != dbs:
            raise FilesystemError(f"xfs: directory inode {ino} ends past the volume")
        out += parse_data_block(block, sb.version == 5, sb.has_ftype)
    return out


def data_blocks(volume: Reader, sb: XfsSuperblock, ino: int) -> list[int] | None:
    """The volume byte offsets of directory ``ino``'s data blocks, in order; None for a
    short-form directory (its entries are in its inode). FilesystemError as
    :func:`read_dir_entries`."""
    try:
        return _data_blocks(volume, sb, ino)[1]
    except (IndexError, struct.error) as exc:
        raise FilesystemError(f"xfs: corrupt directory inode {ino}") from exc


def _data_blocks(volume: Reader, sb: XfsSuperblock, ino: int) -> tuple[bytes, list[int] | None]:
    """The inode's data fork, and where its directory data blocks lie (None: short form)."""
    raw = volume.read_at(inode_to_byte(sb, ino), sb.inode_size)
    if raw[:2] != INODE_MAGIC:
        raise FilesystemError(f"xfs: inode {ino} has no inode magic")
    version, fmt = raw[4], raw[5]
    core = 176 if version >= 3 else 100
    fork = raw[core:]
    if fmt == FORMAT_LOCAL:
        return fork, None
    if fmt == FORMAT_EXTENTS:
        (nextents,) = struct.unpack_from(">I", raw, 76)
        records = [fork[i * 16 : i * 16 + 16] for i in range(nextents)]
    elif fmt == FORMAT_BTREE:
        forkoff = raw[82]
        size = forkoff * 8 if forkoff else len(fork)
        records = _btree_records(volume, sb, fork[:size], ino)
    else:
        raise FilesystemError(f"xfs: directory inode {ino} has data fork format {fmt}")
    out: list[int] = []
    dbs = sb.dir_block_size
    for rec in records:
        startoff, startblock, count = parse_extent(rec)
        if startoff * sb.block_size >= DIR2_LEAF_OFFSET:
            continue
        where = fsblock_to_byte(sb, startblock)
        # one directory block at a time: an extent may claim 2^21 blocks
        for start in range(0, count * sb.block_size - dbs + 1, dbs):
            if (len(out) + 1) * dbs > volume.size:
                raise FilesystemError(f"xfs: directory inode {ino} is larger than its volume")
            out.append(where + start)
    return fork, out


def _btree_records(volume: Reader, sb: XfsSuperblock, root: bytes, ino: int) -> list[bytes]:
    """The 16-byte extent records at the leaves of a B+tree data fork, in key order."""
    level, numrecs = struct.unpack_from(">HH", root, 0)
    maxrecs = (len(root) - 4) // 16  # xfs_bmdr_maxrecs: a key and a pointer a record
    if not 0 < level <= MAX_BMBT_LEVELS or numrecs > maxrecs:
        raise FilesystemError(f"xfs: directory inode {ino} has a corrupt B+tree root")
    ptrs = [struct.unpack_from(">Q", root, 4 + maxrecs * 8 + i * 8)[0] for i in range(numrecs)]
    seen: set[int] = set()
    budget = volume.size // sb.block_size  # no tree holds more blocks than the volume
    records: list[bytes] = []
    for depth in range(level - 1, -1, -1):  # the level of the blocks ``ptrs`` lead to
        children: list[int] = []
        for ptr in ptrs:
            if ptr in seen or len(seen) >= budget:
                raise FilesystemError(f"xfs: directory inode {ino}'s B+tree loops")
            seen.add(ptr)
            block = volume.read_at(fsblock_to_byte(sb, ptr), sb.block_size)
            header = BMBT_MAGICS.get(block[:4])
            if header is None or len(block) != sb.block_size:
                raise FilesystemError(f"xfs: directory inode {ino}'s B+tree has a bad block")
            got, count = struct.unpack_from(">HH", block, 4)
            if got != depth:
                raise FilesystemError(f"xfs: directory inode {ino}'s B+tree levels disagree")
            if depth == 0:  # a leaf: extent records
                if header + count * 16 > len(block):
                    raise FilesystemError(f"xfs: directory inode {ino}'s B+tree leaf overflows")
                records += [block[header + i * 16 : header + i * 16 + 16] for i in range(count)]
                continue
            fan = (sb.block_size - header) // 16  # keys, then as many pointers
            if count > fan:
                raise FilesystemError(f"xfs: directory inode {ino}'s B+tree node overflows")
            base = header + fan * 8
            children += [struct.unpack_from(">Q", block, base + i * 8)[0] for i in range(count)]
        ptrs = children
    return records

# References: "XFS Algorithms & Data Structures" (kernel.org, Documentation/filesystems/xfs/
# xfs-on-disk-format): the AG inode header (ch. 13, xfs_agi: agi_root at byte 20, agi_level
# at 24, in the AG's third sector), the inode B+tree (ch. 14: short-format btree blocks
# "IABT"/"IAB3" of 16/56-byte headers; xfs_inobt_rec of 16 bytes: ir_startino, then
# ir_freecount, or on a filesystem with sparse inode chunks ir_holemask, ir_count and a
# one-byte ir_freecount, then ir_free; a hole mask bit covers 4 of the chunk's 64 inodes);
# the kernel's fs/xfs/xfs_inode.c and xfs_dir2.c (a directory's mtime and ctime are set with
# every entry it gains or loses), for why a changed directory is a changed inode.
"""What changed between two states of one XFS filesystem, from the bytes that changed.

As on ext (fs/ext_changes.py): the inodes whose bytes differ within the ranges the
incremental's overlay holds are the changed files, and a directory whose entries changed
is one of them. XFS allocates inodes in chunks of 64 anywhere in an allocation group; each
AG's inode B+tree says where, so only those chunks (of either state) are compared, not
every changed byte. A changed directory's data blocks that lie in those ranges and differ
are parsed in both states (fs/xfs_dir.py) and their entries compared by (name, inode); a
short-form directory, or one whose blocks moved, is read whole in both.

Limits, where the caller must walk instead (``changed_inodes`` returns None): the two
filesystems differ in geometry (block, AG or inode size, AG count: a grown filesystem). A
corrupt AG header or inode B+tree raises FilesystemError.
"""

from __future__ import annotations

import stat
import struct

from filerestore.errors import FilesystemError
from filerestore.fs.libyal import fsdecode
from filerestore.fs.xfs import INODE_MAGIC, XfsFilesystem, XfsSuperblock, inode_to_byte
from filerestore.fs.xfs_dir import data_blocks, parse_data_block, read_dir_entries
from filerestore.image.allocation import differing_units, overlaps

AGI_MAGIC = b"XAGI"
INOBT_MAGICS = {4: b"IABT", 5: b"IAB3"}  # by superblock version
INOBT_HEADERS = {4: 16, 5: 56}  # short-format btree block header, without and with CRC
INODES_PER_CHUNK = 64
INODES_PER_HOLE_BIT = 4
MAX_INOBT_LEVELS = 9  # the kernel's XFS_BTREE_MAXLEVELS
_AGI_ROOT = struct.Struct(">II")  # agi_root, agi_level
_BLOCK_HEAD = struct.Struct(">HH")  # bb_level, bb_numrecs (after the magic)
_REC = struct.Struct(">IHBBQ")  # startino, holemask (or freecount's high bytes), count, ...

Delta = tuple[set[tuple[str, int]], set[tuple[str, int]]]


def changed_inodes(
    new: XfsFilesystem, old: XfsFilesystem, ranges: list[tuple[int, int]]
) -> list[int] | None:
    """Inode numbers whose on-disk bytes differ between ``old`` and ``new``, looking only at
    the inode chunks (of either state) inside the volume byte ``ranges`` (offset, length)
    that may differ; None when the geometry changed (see the module docstring)."""
    a, b = new.superblock, old.superblock
    geometry = ("block_size", "ag_blocks", "ag_count", "inode_size", "inop_blog", "ag_blk_log")
    if any(getattr(a, f) != getattr(b, f) for f in geometry):
        return None
    isize = a.inode_size
    spans = sorted(set(inode_spans(new)) | set(inode_spans(old)))
    out: set[int] = set()
    for start, length in spans:
        for lo, hi in overlaps(ranges, start, start + length):
            lo = start + (lo - start) // isize * isize  # whole inodes only
            for at in differing_units(new.reader, old.reader, lo, hi, isize, "xfs: an inode chunk"):
                out.add(byte_to_inode(a, at))
    return sorted(out)


def byte_to_inode(sb: XfsSuperblock, at: int) -> int:
    """The number of the inode at volume byte ``at`` (the inverse of xfs.inode_to_byte)."""
    block, within = divmod(at, sb.block_size)
    agno, agbno = divmod(block, sb.ag_blocks)
    return (((agno << sb.ag_blk_log) | agbno) << sb.inop_blog) | within // sb.inode_size


def inode_spans(fs: XfsFilesystem) -> list[tuple[int, int]]:
    """Volume byte ranges (offset, length) of every inode chunk the inode B+trees hold, the
    holes of sparse chunks left out."""
    sb = fs.superblock
    out: list[tuple[int, int]] = []
    for agno in range(sb.ag_count):
        ag_start = agno * sb.ag_blocks * sb.block_size
        for startino, holemask in _chunks(fs, agno):
            first = ag_start + (startino >> sb.inop_blog) * sb.block_size
            first += (startino & ((1 << sb.inop_blog) - 1)) * sb.inode_size
            if not holemask:
                out.append((first, INODES_PER_CHUNK * sb.inode_size))
                continue
            piece = INODES_PER_HOLE_BIT * sb.inode_size
            out += [(first + i * piece, piece) for i in range(16) if not holemask >> i & 1]
    return out


def _chunks(fs: XfsFilesystem, agno: int) -> list[tuple[int, int]]:
    """(AG-relative first inode, hole mask) of each record of AG ``agno``'s inode B+tree,
    walked level by level with its magic, levels and record counts checked."""
    sb = fs.superblock
    version = 5 if sb.version == 5 else 4
    magic, header = INOBT_MAGICS[version], INOBT_HEADERS[version]
    ag_start = agno * sb.ag_blocks * sb.block_size
    agi = fs.reader.read_at(ag_start + 2 * sb.sect_size, 32)
    if agi[:4] != AGI_MAGIC or len(agi) < 28:
        raise FilesystemError(f"xfs: allocation group {agno} has no inode header (corrupt)")
    root, level = _AGI_ROOT.unpack_from(agi, 20)
    if not 0 < level <= MAX_INOBT_LEVELS:
        raise FilesystemError(f"xfs: allocation group {agno}'s inode B+tree has {level} levels")
    what = f"xfs: allocation group {agno}'s inode B+tree"
    leaf_max = (sb.block_size - header) // 16
    node_max = (sb.block_size - header) // 8  # a 4-byte key and a 4-byte pointer each
    seen: set[int] = set()
    blocks, out = [root], []
    for depth in range(level - 1, -1, -1):
        below: list[int] = []
        for agbno in blocks:
            if agbno in seen or agbno >= sb.ag_blocks:
                raise FilesystemError(f"{what} loops or points past its AG")
            seen.add(agbno)
            block = fs.reader.read_at(ag_start + agbno * sb.block_size, sb.block_size)
            if block[:4] != magic or len(block) != sb.block_size:
                raise FilesystemError(f"{what} has a block without its magic")
            got, count = _BLOCK_HEAD.unpack_from(block, 4)
            if got != depth or count > (node_max if depth else leaf_max):
                raise FilesystemError(f"{what} has a block of the wrong level or size")
            if depth:
                base = header + node_max * 4
                below += struct.unpack_from(f">{count}I", block, base)
                continue
            for i in range(count):
                startino, holes, _, _, _ = _REC.unpack_from(block, header + i * 16)
                out.append((startino, holes if sb.sparse_inodes else 0))
        blocks = below
    return out


def changed_entries(
    new: XfsFilesystem, old: XfsFilesystem, number: int, ranges: list[tuple[int, int]]
) -> Delta | None:
    """(added, removed) (name, inode) pairs of directory inode ``number``: where its data
    blocks lie where they lay, from those of them in ``ranges`` whose bytes differ (an
    entry that moved between two of them is neither), else from all its entries read in
    both states; None where either state's inode is no directory our reader reads (the
    caller lists it whole)."""
    if not (is_directory(new, number) and is_directory(old, number)):
        return None
    try:
        blocks = data_blocks(new.reader, new.superblock, number)
        if blocks is not None and blocks == data_blocks(old.reader, old.superblock, number):
            now, before = _differing_blocks(new, old, blocks, ranges)
        else:
            now, before = _named(new, number), _named(old, number)
    except FilesystemError:
        return None
    return _decoded(now - before), _decoded(before - now)


def _differing_blocks(
    new: XfsFilesystem, old: XfsFilesystem, blocks: list[int], ranges: list[tuple[int, int]]
) -> tuple[set[tuple[bytes, int]], set[tuple[bytes, int]]]:
    """The (name, inode) pairs of the directory blocks at ``blocks`` that lie in ``ranges``
    and differ, in each state."""
    sb = new.superblock
    size, v5, ftype = sb.dir_block_size, sb.version == 5, sb.has_ftype
    now: set[tuple[bytes, int]] = set()
    before: set[tuple[bytes, int]] = set()
    for where in blocks:
        if next(overlaps(ranges, where, where + size), None) is None:
            continue  # not in the overlay: the same bytes in both states
        x, y = new.reader.read_at(where, size), old.reader.read_at(where, size)
        if x == y:
            continue
        now.update((name, ino) for name, ino, _ in parse_data_block(x, v5, ftype))
        before.update((name, ino) for name, ino, _ in parse_data_block(y, v5, ftype))
    return now, before


def is_directory(fs: XfsFilesystem, number: int) -> bool:
    """Whether inode ``number`` holds the inode magic and a directory's mode."""
    core = fs.reader.read_at(inode_to_byte(fs.superblock, number), 4)
    return core[:2] == INODE_MAGIC and stat.S_ISDIR(int.from_bytes(core[2:4], "big"))


def _named(fs: XfsFilesystem, number: int) -> set[tuple[bytes, int]]:
    return {(n, ino) for n, ino, _ in read_dir_entries(fs.reader, fs.superblock, number)}


def _decoded(pairs: set[tuple[bytes, int]]) -> set[tuple[str, int]]:
    # named as the walk names them: a name holding "/" is no entry it lists
    return {(fsdecode(name), ino) for name, ino in pairs if b"/" not in name}

# References: "ext4 Data Structures and Algorithms" (kernel.org, Documentation/filesystems/
# ext4/): linear directory entries (ext4_dir_entry_2, section 4.1.1), hash tree directories
# (4.1.3); the kernel's fs/ext4/namei.c (__ext4_read_dirblock: "Directory hole found",
# ext4_rec_len_from_disk) and fs/ext4/inode.c (ext4_isize: i_size_high counts for directories
# only with largedir).
"""An ext directory's blocks read in bounded pieces and parsed into (name, inode) pairs.

The directory's size comes from its inode, so it is checked before anything is read: it
must fit in the volume, and every block up to it must be mapped (the kernel refuses a hole in
a directory). Blocks are then read a piece at a time, so a directory inode that claims
4 GiB costs one piece of memory and a clean refusal, never 4 GiB.
"""

from __future__ import annotations

import struct

from filerestore.blockio import Reader
from filerestore.errors import FilesystemError
from filerestore.fs.contents import merged
from filerestore.fs.libyal import Extent, ExtentReader

DIR_READ_PIECE = 256 * 1024  # bytes of directory read at a time (a multiple of any block size)
# ext4_dir_entry_2.file_type (ext4 Data Structures, 4.1.1): 0 unknown, 2 a directory
FT_UNKNOWN = 0
FT_DIR = 2
_ENTRY_HEAD = struct.Struct("<IHBB")  # inode, rec_len, name_len, file_type


def parse_dir_block(
    block: bytes, filetype: bool, start: int = 0, end: int | None = None
) -> list[tuple[bytes, int, int]]:
    """(name bytes, inode, file type) of each live entry of one directory block, "." and
    ".." left out; with ``start`` (an entry's offset) and ``end``, only the entries that
    begin in between. The file type is :data:`FT_UNKNOWN` without the filetype feature. A
    name holding "/" is corrupt (FilesystemError).

    Works for htree directories too: their index blocks are entries with inode 0 that span
    the block, and the checksum tail is an entry with inode 0. A list, built in one loop: a
    100,000-entry directory is parsed for a page of it (fs/named_dirs.py).
    """
    out: list[tuple[bytes, int, int]] = []
    append = out.append
    unpack = _ENTRY_HEAD.unpack_from
    pos = start
    size = len(block)
    stop = size if end is None else min(end, size)
    big = size >= 65536
    last = min(size - 8, stop - 1)  # the last offset an entry may begin at
    while pos <= last:
        inode, rec_len, name_len, file_type = unpack(block, pos)
        if not filetype:
            name_len |= file_type << 8
            file_type = FT_UNKNOWN
        if big:  # ext4_rec_len_from_disk: 64 KiB blocks steal two low bits
            rec_len = 65536 if rec_len in (0, 0xFFFF) else (rec_len & 0xFFFC) | (rec_len & 3) << 16
        if rec_len < 8 + name_len or pos + rec_len > size:
            raise FilesystemError(f"ext: corrupt directory entry at byte {pos} of a block")
        if inode:
            name = block[pos + 8 : pos + 8 + name_len]
            if name_len > 2 or (name and name != b"." and name != b".."):
                append((name, inode, file_type))
        pos += rec_len
    for name, _, _ in out:  # once the block is parsed: one loop, not a test per entry
        if b"/" in name:
            raise FilesystemError("ext: a directory entry name holds '/'")
    return out


def check_directory_size(size: int, volume_size: int, number: int) -> None:
    """A directory larger than its volume is corrupt (checked before its blocks are mapped)."""
    if size > volume_size:
        raise FilesystemError(
            f"ext: directory inode {number} claims {size} bytes, more than its volume "
            f"holds ({volume_size}): corrupt"
        )


def directory_entries(
    volume: Reader,
    extents: list[Extent],
    size: int,
    block_size: int,
    filetype: bool,
    number: int,
) -> list[tuple[bytes, int, int]]:
    """(name bytes, inode, file type) of every entry of directory inode ``number``, read in
    pieces."""
    check_directory_size(size, volume.size, number)
    mapped = list(merged(((e.logical, e.length) for e in extents if e.physical is not None), size))
    if mapped != [(0, size)]:
        hole = mapped[0][1] if mapped and mapped[0][0] == 0 else 0
        raise FilesystemError(f"ext: directory inode {number} has a hole at byte {hole}: corrupt")
    reader = ExtentReader(volume, extents, size)
    out: list[tuple[bytes, int, int]] = []
    for piece in range(0, size, DIR_READ_PIECE):
        data = reader.read_at(piece, DIR_READ_PIECE)
        for start in range(0, len(data), block_size):
            out += parse_dir_block(data[start : start + block_size], filetype)
    return out

# References: https://btrfs.readthedocs.io/en/latest/dev/On-disk-format.html (struct
# btrfs_header, btrfs_item, btrfs_inode_item, btrfs_dir_item, btrfs_file_extent_item).
"""Btrfs on-disk items as data: the checks a node passes before dissect.btrfs reads it, and
the pure parsers of the items :mod:`filerestore.fs.btrfs` decodes itself (inodes, directory
items, file extents) and of compressed extent data."""

from __future__ import annotations

import io
import operator
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import google_crc32c
import zstandard

from filerestore.errors import FileRestoreError, FilesystemError

if TYPE_CHECKING:
    from filerestore.fs.btrfs_tree import RawTree

COMPRESS_NONE, COMPRESS_ZLIB, COMPRESS_LZO, COMPRESS_ZSTD = 0, 1, 2, 3
FILE_EXTENT_INLINE, FILE_EXTENT_REG, FILE_EXTENT_PREALLOC = 0, 1, 2
# item key types (BTRFS_*_KEY)
INODE_ITEM_KEY, DIR_INDEX_KEY, EXTENT_DATA_KEY, ROOT_ITEM_KEY = 1, 96, 108, 132
NOT_NAMES = (b"", b".", b"..")  # no directory entry is named so
FT_DIR = 2  # btrfs_dir_item.type of a directory (BTRFS_FT_DIR, btrfs_tree.h)
LEAF_HEADER_SIZE = 101  # struct btrfs_header
LEAF_ITEM_SIZE = 25  # struct btrfs_item: disk key (17), data offset, data size

# dissect.btrfs trusts every node it reads: a corrupt node count or a node that points to
# itself makes its searches loop for ever. Metadata is checked here before dissect sees it.
CSUM_CRC32C = 0
NODE_HEADER_SIZE = 101
KEY_PTR_SIZE = 33
MAX_LEVEL = 8  # BTRFS_MAX_LEVEL
# struct btrfs_key_ptr: disk key (objectid, type, offset), blockptr, generation
KEY_PTR = struct.Struct("<QBQQQ")
# struct btrfs_item: disk key, data offset, data size
_LEAF_ITEM = struct.Struct("<QBQII")
# the same records in the parts check_node needs: keys, and an item's data offset and size
_PTR_KEY, _ITEM_KEY = struct.Struct("<QBQ16x"), struct.Struct("<QBQ8x")
_ITEM_SPAN = struct.Struct("<17xII")
# struct btrfs_dir_item: location key (objectid, type, offset), transid, data_len, name_len, type
DIR_ITEM = struct.Struct("<QBQQHHB")
MAX_COMPRESSED = 128 * 1024  # BTRFS_MAX_COMPRESSED: no compressed extent is larger on disk


def check_superblock(sb: bytes) -> None:
    """Refuse a superblock whose checksum or geometry is wrong (FilesystemError)."""
    (csum_type,) = struct.unpack_from("<H", sb, 0xC4)
    if csum_type == CSUM_CRC32C and not _crc32c_ok(sb):
        raise FilesystemError("btrfs: the superblock checksum does not match (corrupt)")
    sectorsize, nodesize = struct.unpack_from("<II", sb, 0x90)
    (sys_chunk_array_size,) = struct.unpack_from("<I", sb, 0xA0)
    for value, low in ((sectorsize, 4096), (nodesize, sectorsize)):
        if value < low or value > 65536 or value & (value - 1):
            raise FilesystemError(f"btrfs: impossible sector or node size {value}")
    if sys_chunk_array_size > 2048:
        raise FilesystemError("btrfs: system chunk array larger than its field")


def check_node(node: bytes, address: int, nodesize: int, csum_type: int, fsids: set[bytes]) -> None:
    """Refuse a tree node that is not the node stored at ``address`` (FilesystemError)."""
    nritems, level = check_header(node, address, nodesize, csum_type, fsids)
    per_item = KEY_PTR_SIZE if level else LEAF_ITEM_SIZE
    # tree-checker: keys strictly increase inside a node (so no two pointers of one node
    # lead to the same child, see btrfs_guard.py), and a leaf's item data lies in the leaf
    region = node[NODE_HEADER_SIZE : NODE_HEADER_SIZE + nritems * per_item]
    keys = list((_PTR_KEY if level else _ITEM_KEY).iter_unpack(region))
    if not all(map(operator.lt, keys, keys[1:])):  # each key below the next, in C
        raise FilesystemError(f"btrfs: tree node at {address:#x} has keys out of order")
    if not level and NODE_HEADER_SIZE + max(map(sum, _ITEM_SPAN.iter_unpack(region))) > nodesize:
        raise FilesystemError(f"btrfs: leaf at {address:#x} has an item past its end")


def check_header(
    node: bytes, address: int, nodesize: int, csum_type: int, fsids: set[bytes]
) -> tuple[int, int]:
    """The checks of :func:`check_node` on the node's header alone (its size, checksum,
    address, filesystem, level and item count): (item count, level)."""
    if len(node) != nodesize:
        raise FilesystemError(f"btrfs: tree node at {address:#x} lies outside the volume")
    if csum_type == CSUM_CRC32C and not _crc32c_ok(node):
        raise FilesystemError(f"btrfs: tree node at {address:#x} fails its checksum (corrupt)")
    (bytenr,) = struct.unpack_from("<Q", node, 0x30)
    (nritems,) = struct.unpack_from("<I", node, 0x60)
    level = node[0x64]
    per_item = KEY_PTR_SIZE if level else LEAF_ITEM_SIZE
    if bytenr != address or bytes(node[0x20:0x30]) not in fsids or level >= MAX_LEVEL:
        raise FilesystemError(f"btrfs: tree node at {address:#x} is not a node of this volume")
    if not nritems or NODE_HEADER_SIZE + nritems * per_item > nodesize:
        raise FilesystemError(f"btrfs: tree node at {address:#x} has {nritems} items")
    return nritems, level


def _crc32c_ok(block: bytes) -> bool:
    return int(google_crc32c.value(bytes(block[0x20:]))) == int.from_bytes(block[:4], "little")


@dataclass(frozen=True, slots=True)
class FileExtent:
    """``length`` bytes of a file at ``logical``.

    ``physical`` is None for a hole; for a compressed extent it is where the compressed
    ``disk_length`` bytes start and ``skip`` is where this file's bytes start in the
    decompressed data; ``inline`` holds data kept in the tree.
    """

    logical: int
    length: int
    physical: int | None = None
    compression: int = COMPRESS_NONE
    disk_length: int = 0
    skip: int = 0
    inline: bytes | None = None


@dataclass(frozen=True, slots=True)
class InodeItem:
    """The fields of a btrfs_inode_item (160 bytes) an Entry needs; times in ns."""

    size: int
    nlink: int
    uid: int
    gid: int
    mode: int
    atime_ns: int
    ctime_ns: int
    mtime_ns: int
    otime_ns: int


def parse_inode_item(data: bytes) -> InodeItem:
    """generation, transid, size, nbytes, block_group (u64); nlink, uid, gid, mode (u32);
    rdev, flags, sequence, reserved[4] (u64); atime, ctime, mtime, otime (s64 sec, u32 ns)."""
    if len(data) < 160:
        raise FilesystemError("btrfs: truncated inode item")
    (size,) = struct.unpack_from("<Q", data, 16)
    nlink, uid, gid, mode = struct.unpack_from("<IIII", data, 40)
    times = [struct.unpack_from("<qI", data, off) for off in (112, 124, 136, 148)]
    a, c, m, o = (sec * 1_000_000_000 + nsec for sec, nsec in times)
    return InodeItem(size, nlink, uid, gid, mode, a, c, m, o)


def dir_index(tree: RawTree, inum: int) -> list[tuple[str, tuple[int, int, int]]]:
    """(name, (location objectid, location key type, file type)) of each DIR_INDEX item of
    directory ``inum`` (one btrfs_dir_item each), in key order; names that cannot be a
    directory entry's (empty, dot, dot-dot, holding a slash) are left out. Each item is
    decoded in place in its leaf: a directory of 100,000 entries is 100,000 items, read for
    a page of it.
    """
    out: list[tuple[str, tuple[int, int, int]]] = []
    append, dir_at = out.append, DIR_ITEM.unpack_from
    for leaf, headers in tree.leaves(inum, DIR_INDEX_KEY):
        # the leaf's DIR_INDEX items of ``inum``: they are one run, in key order
        ours = [
            h for h in _LEAF_ITEM.iter_unpack(headers) if h[0] == inum and h[1] == DIR_INDEX_KEY
        ]
        for _, _, _, data_off, data_size in ours:
            if data_size < 30:  # check_node saw that the item lies in its leaf
                raise FilesystemError("btrfs: truncated directory item")
            start = LEAF_HEADER_SIZE + data_off
            location, location_type, _, _, _, name_len, file_type = dir_at(leaf, start)
            if 30 + name_len > data_size:
                raise FilesystemError("btrfs: truncated directory item name")
            if location_type != INODE_ITEM_KEY and location_type != ROOT_ITEM_KEY:
                raise FilesystemError(f"btrfs: directory item of key type {location_type}")
            raw = leaf[start + 30 : start + 30 + name_len]
            if raw in NOT_NAMES or b"/" in raw:
                continue
            append((raw.decode("utf-8", "surrogateescape"), (location, location_type, file_type)))
        if len(ours) < len(headers) // LEAF_ITEM_SIZE:
            return out  # the leaf holds keys after them: the run ended here
    return out


def scan_items(tree: RawTree, lo: int, key_type: int, hi: int) -> Iterator[tuple[int, int, bytes]]:
    """(objectid, key offset, data) of ``key_type`` items with lo <= objectid <= hi, in order."""
    for leaf, headers in tree.leaves(lo, key_type):
        for objectid, typ, offset, data_off, data_size in _LEAF_ITEM.iter_unpack(headers):
            if objectid > hi or (objectid == hi and typ > key_type):
                return
            if typ == key_type and objectid >= lo:
                start = LEAF_HEADER_SIZE + data_off
                yield objectid, offset, bytes(leaf[start : start + data_size])


def parse_file_extent(file_offset: int, item: bytes) -> FileExtent:
    """A btrfs_file_extent_item at ``file_offset``; ``physical`` is still a logical address.

    Layout: generation u64, ram_bytes u64, compression u8, encryption u8, other_encoding
    u16, type u8; then inline data, or disk_bytenr, disk_num_bytes, offset, num_bytes (u64).
    """
    if len(item) < 21:
        raise FilesystemError("btrfs: truncated file extent item")
    ram_bytes, compression, encryption, other, kind = struct.unpack_from("<QBBHB", item, 8)
    if encryption or other:
        raise FilesystemError("btrfs: encrypted or encoded file extents are not supported")
    if kind == FILE_EXTENT_INLINE:
        data = item[21:]
        if compression == COMPRESS_NONE:
            data = data[:ram_bytes]
        return FileExtent(file_offset, len(data), compression=compression, inline=data)
    if len(item) < 53:
        raise FilesystemError("btrfs: truncated file extent item")
    disk_bytenr, disk_num_bytes, offset, num_bytes = struct.unpack_from("<QQQQ", item, 21)
    if kind == FILE_EXTENT_PREALLOC or disk_bytenr == 0:  # allocated, never written: zeros
        return FileExtent(file_offset, num_bytes)
    if kind != FILE_EXTENT_REG:
        raise FilesystemError(f"btrfs: unknown file extent type {kind}")
    if compression != COMPRESS_NONE and disk_num_bytes > MAX_COMPRESSED:
        raise FilesystemError(
            f"btrfs: a compressed extent claims {disk_num_bytes} bytes on disk, more than "
            "128 KiB (corrupt)"
        )
    return FileExtent(file_offset, num_bytes, disk_bytenr, compression, disk_num_bytes, offset)


MAX_UNCOMPRESSED = 128 * 1024  # BTRFS_MAX_UNCOMPRESSED: no compressed extent holds more


def decompress(data: bytes, compression: int, sector_size: int) -> bytes:
    """One compressed extent's data (btrfs pads the compressed stream to a sector).

    Any failure of a decompressor (a Rust panic from the LZO one included) and any output
    past what an extent can hold become FilesystemError.
    """
    try:
        plain = _decompress(data, compression, sector_size)
    except FileRestoreError:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # pyo3's PanicException is not an Exception
        raise FilesystemError(f"btrfs: cannot decompress a file extent: {exc}") from exc
    if len(plain) > MAX_UNCOMPRESSED:
        raise FilesystemError("btrfs: a compressed extent expands past 128 KiB")
    return plain


def _decompress(data: bytes, compression: int, sector_size: int) -> bytes:
    if compression == COMPRESS_ZLIB:
        return zlib.decompressobj().decompress(data, MAX_UNCOMPRESSED + 1)
    if compression == COMPRESS_ZSTD:
        # the kernel writes frames without a content size: stream-decode the first frame
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data))
        return bytes(reader.read(MAX_UNCOMPRESSED + 1))
    if compression == COMPRESS_LZO:
        from dissect.btrfs.stream import decode_extent  # btrfs's own LZO segment framing

        return bytes(decode_extent(data, compression, 0, sector_size))
    raise FilesystemError(f"btrfs: unknown compression type {compression}")

# References: https://btrfs.readthedocs.io/en/latest/dev/On-disk-format.html (superblock at
# 64 KiB with magic "_BHRfS_M" at +0x40; file extent items; chunk items mapping logical to
# physical addresses); dissect.btrfs 1.10 for the tree walking.
"""Btrfs, read through dissect.btrfs (AGPL-3.0, the optional extra ``filerestore[btrfs]``).

The root is the default subvolume. Other subvolumes are directories where they are linked
into the tree (``btrfs subvolume create /mnt/a/b`` shows as ``/a/b``), as the kernel shows
them; :meth:`BtrfsFilesystem.subvolumes` lists them all (id, path from the top level), and
:meth:`BtrfsFilesystem.subvolume` opens any one of them as the root, which reaches those a
``set-default`` subvolume does not contain. Entry keys are
(subvolume id, inode number), since inode numbers repeat across subvolumes.

File data is read by :class:`BtrfsFileReader` straight from the volume reader: dissect walks
the tree to the file's extent items (under the fs lock), they are decoded here
(``parse_file_extent``), dissect's chunk map turns logical addresses into volume offsets
(single, DUP and RAID1 chunks on this one device), and compressed extents (zlib, LZO, zstd)
are decompressed here, one extent at a time, with the last one cached.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import io
import struct
import threading
import zlib
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Any

import zstandard

from filerestore.blockio import Reader, ReaderFile, clamp
from filerestore.errors import (
    FileRestoreError,
    FilesystemError,
    MissingExtraError,
    PathNotFoundError,
)
from filerestore.fs.base import Filesystem
from filerestore.fs.entry import Entry, EntryKind, kind_from_mode

SUPERBLOCK_OFFSET = 0x10000
MAGIC_OFFSET = SUPERBLOCK_OFFSET + 0x40
BTRFS_MAGIC = b"_BHRfS_M"

COMPRESS_NONE, COMPRESS_ZLIB, COMPRESS_LZO, COMPRESS_ZSTD = 0, 1, 2, 3
FILE_EXTENT_INLINE, FILE_EXTENT_REG, FILE_EXTENT_PREALLOC = 0, 1, 2
# item key types (BTRFS_*_KEY)
INODE_ITEM_KEY, DIR_INDEX_KEY, EXTENT_DATA_KEY, ROOT_ITEM_KEY = 1, 96, 108, 132
LEAF_HEADER_SIZE = 101  # struct btrfs_header
LEAF_ITEM_SIZE = 25  # struct btrfs_item: disk key (17), data offset, data size
INODE_CACHE_ENTRIES = 100_000
# chunk profiles whose data is striped across devices: a logical address is not one offset
_STRIPED = 0x8 | 0x40 | 0x80 | 0x100  # RAID0, RAID10, RAID5, RAID6 (BTRFS_BLOCK_GROUP_*)
BtrfsNode = Any  # a dissect.btrfs INode


def detect(reader: Reader) -> str | None:
    return "btrfs" if reader.read_at(MAGIC_OFFSET, 8) == BTRFS_MAGIC else None


# dissect.btrfs trusts every node it reads: a corrupt node count or a node that points to
# itself makes its searches loop for ever. Metadata is checked here before dissect sees it.
CSUM_CRC32C = 0
NODE_HEADER_SIZE = 101
KEY_PTR_SIZE = 33
MAX_LEVEL = 8  # BTRFS_MAX_LEVEL


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


def _crc32c_ok(block: bytes) -> bool:
    from dissect.util.hash import crc32c  # installed with dissect.btrfs

    return int(crc32c.crc32c(bytes(block[0x20:]))) == int.from_bytes(block[:4], "little")


def _checked_btrfs(fh: ReaderFile) -> Any:
    """dissect's Btrfs with every tree node checked as it is first read."""
    from dissect.btrfs import Btrfs

    class CheckedBtrfs(Btrfs):  # type: ignore[misc]
        def _read_node(self, address: int) -> bytes:
            node: bytes = super()._read_node(address)
            fsids = {bytes(self.sb.fsid), bytes(self.sb.metadata_uuid)}
            check_node(node, address, int(self.node_size), int(self.sb.csum_type), fsids)
            return node

    return CheckedBtrfs(fh)


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


def parse_dir_item(data: bytes) -> tuple[int, int, int, bytes]:
    """A btrfs_dir_item as (location objectid, location key type, file type, name)."""
    if len(data) < 30:
        raise FilesystemError("btrfs: truncated directory item")
    objectid, key_type = struct.unpack_from("<QB", data, 0)
    name_len, file_type = struct.unpack_from("<HB", data, 27)
    name = data[30 : 30 + name_len]
    if len(name) != name_len:
        raise FilesystemError("btrfs: truncated directory item name")
    return objectid, key_type, file_type, name


def scan_items(tree: Any, lo: int, key_type: int, hi: int) -> Iterator[tuple[int, int, bytes]]:
    """(objectid, key offset, data) of ``key_type`` items with lo <= objectid <= hi, in order.

    dissect's cursor positions us and steps between leaves; each leaf's items are decoded
    here with struct, which is several times faster than a cstruct parse per item.
    """
    cursor = tree.cursor()
    if not cursor.search(lo, key_type, 0):
        return
    while True:
        leaf = cursor._node  # the leaf node's bytes (dissect.btrfs 1.10 Cursor internals)
        (nritems,) = struct.unpack_from("<I", leaf, 96)
        for i in range(cursor._index, nritems):
            at = LEAF_HEADER_SIZE + i * LEAF_ITEM_SIZE
            objectid, typ, offset, data_off, data_size = struct.unpack_from("<QBQII", leaf, at)
            if objectid > hi or (objectid == hi and typ > key_type):
                return
            if typ == key_type and objectid >= lo:
                start = LEAF_HEADER_SIZE + data_off
                yield objectid, offset, bytes(leaf[start : start + data_size])
        cursor._index = nritems - 1
        try:
            cursor.next()
        except ValueError:  # past the last leaf
            return


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


class BtrfsFileReader:
    """A file's contents from its extents; needs no library handle, safe from many threads."""

    def __init__(self, volume: Reader, extents: list[FileExtent], size: int, sector: int) -> None:
        self._volume = volume
        self._extents = extents
        self._starts = [e.logical for e in extents]
        self._size = size
        self._sector = sector
        self._cache_lock = threading.Lock()
        self._cached: tuple[int, bytes] | None = None

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        n = clamp(self._size, offset, length)
        end = offset + n
        parts: list[bytes] = []
        pos = offset
        while pos < end:
            i = bisect.bisect_right(self._starts, pos) - 1
            ext = self._extents[i] if i >= 0 else None
            if ext is None or pos >= ext.logical + ext.length:  # a gap: a hole
                stop = min(end, self._starts[i + 1]) if i + 1 < len(self._starts) else end
                parts.append(bytes(stop - pos))
                pos = stop
                continue
            stop = min(end, ext.logical + ext.length)
            parts.append(self._extent_bytes(i, ext, pos - ext.logical, stop - pos))
            pos = stop
        return b"".join(parts)

    def _extent_bytes(self, index: int, ext: FileExtent, start: int, count: int) -> bytes:
        if ext.inline is not None:
            data = ext.inline[start : start + count]
            return data + bytes(count - len(data))
        if ext.physical is None:
            return bytes(count)
        if ext.compression == COMPRESS_NONE:
            data = self._volume.read_at(ext.physical + ext.skip + start, count)
            if len(data) != count:
                raise FilesystemError("btrfs: a file extent ends past the end of the volume")
            return data
        with self._cache_lock:
            cached = self._cached
        if cached is not None and cached[0] == index:
            plain = cached[1]
        else:
            raw = self._volume.read_at(ext.physical, ext.disk_length)
            plain = decompress(raw, ext.compression, self._sector)
            with self._cache_lock:
                self._cached = (index, plain)
        data = plain[ext.skip + start : ext.skip + start + count]
        if len(data) != count:
            raise FilesystemError("btrfs: a compressed extent holds less data than it maps")
        return data


class BtrfsFilesystem(Filesystem[BtrfsNode]):
    kind = "btrfs"

    def __init__(self, reader: Reader, subvolume_id: int | None = None) -> None:
        super().__init__()
        try:
            import dissect.btrfs  # noqa: F401 - only to name the missing extra
        except ImportError as exc:
            raise MissingExtraError(
                "this is a Btrfs filesystem; its reader is an optional extra: "
                "pip install filerestore[btrfs]"
            ) from exc
        self.reader = reader
        self._file = ReaderFile(reader)
        with self._errors("open the volume"):
            check_superblock(reader.read_at(SUPERBLOCK_OFFSET, 4096))
            self._fs = _checked_btrfs(self._file)
            self._root_node = self._fs.root
            self.label = self._fs.label or None
            self._sector = int(self._fs.sector_size)
        self._inodes: dict[tuple[int, int], InodeItem] = {}
        if subvolume_id is not None:
            self._root_node = self._subvolume_root(subvolume_id)

    def _subvolume_root(self, subvolume_id: int) -> BtrfsNode:
        if subvolume_id not in {sid for sid, _ in self.subvolumes()}:
            raise PathNotFoundError(f"btrfs: no subvolume with id {subvolume_id}")
        with self._errors(f"open subvolume {subvolume_id}"):
            return self._fs.open_subvolume(subvolume_id).root

    def subvolume(self, subvolume_id: int) -> BtrfsFilesystem:
        """The same volume with subvolume ``subvolume_id`` as the root: reaches a subvolume
        that is not linked below the default one (after ``btrfs subvolume set-default``)."""
        return BtrfsFilesystem(self.reader, subvolume_id)

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except FileRestoreError:
            raise
        except Exception as exc:  # a pure-Python parser fails on corrupt data in many ways
            raise FilesystemError(f"btrfs: cannot {what} (corrupt or unsupported): {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._file.close()
            self._dirs.clear()

    def subvolumes(self) -> list[tuple[int, str]]:
        """(id, path from the top-level subvolume) of every subvolume."""
        with self._lock, self._errors("list subvolumes"):
            return [(int(s.objectid), "/" + s.path) for s in self._fs.subvolumes()]

    # --- hooks ---------------------------------------------------------------------------

    def _root(self) -> BtrfsNode:
        return self._root_node

    def _children(self, node: BtrfsNode) -> Iterator[tuple[str, BtrfsNode]]:
        with self._errors("read a directory"):
            out: list[tuple[str, BtrfsNode]] = []
            subvol = node.subvolume
            for _, _, data in scan_items(subvol.tree, node.inum, DIR_INDEX_KEY, node.inum):
                objectid, key_type, file_type, raw = parse_dir_item(data)
                if raw in (b"", b".", b"..") or b"/" in raw:
                    continue
                if key_type == ROOT_ITEM_KEY:  # another subvolume, linked here
                    child = self._fs.open_subvolume(objectid, node).root
                elif key_type == INODE_ITEM_KEY:
                    child = subvol.inode(objectid, file_type, node)
                else:
                    raise FilesystemError(f"btrfs: directory item of key type {key_type}")
                out.append((raw.decode("utf-8", "surrogateescape"), child))
            self._prefetch_inodes(subvol, [c for _, c in out if c.subvolume is subvol])
        return iter(out)

    def _prefetch_inodes(self, subvol: Any, nodes: list[BtrfsNode]) -> None:
        """Read the inode items of a directory's children in one pass over the leaves.

        Children made together have neighbouring inode numbers, so their items sit in a few
        leaves; a tree search per child costs a descent from the root each.
        """
        sid = int(subvol.objectid)
        want = {int(n.inum) for n in nodes if (sid, int(n.inum)) not in self._inodes}
        if len(want) < 8:
            return
        lo, hi = min(want), max(want)
        if hi - lo > 4 * len(want):  # scattered: per-child searches read less
            return
        if len(self._inodes) + len(want) > INODE_CACHE_ENTRIES:
            self._inodes.clear()
        for objectid, _, data in scan_items(subvol.tree, lo, INODE_ITEM_KEY, hi):
            if objectid in want:
                self._inodes[(sid, objectid)] = parse_inode_item(data)

    def _inode_item(self, node: BtrfsNode) -> InodeItem:
        key = (int(node.subvolume.objectid), int(node.inum))
        item = self._inodes.get(key)
        if item is None:
            _, data = node.subvolume.tree.find(node.inum, INODE_ITEM_KEY)
            item = parse_inode_item(bytes(data))
            if len(self._inodes) >= INODE_CACHE_ENTRIES:
                self._inodes.clear()
            self._inodes[key] = item
        return item

    def _kind(self, node: BtrfsNode) -> EntryKind:
        with self._errors("read an inode"):
            return kind_from_mode(self._inode_item(node).mode)

    def _key(self, node: BtrfsNode) -> Hashable:
        return (int(node.subvolume.objectid), int(node.inum))

    def _entry(self, name: str, path: str, node: BtrfsNode) -> Entry:
        with self._errors(f"read the metadata of {path}"):
            item = self._inode_item(node)
            kind = kind_from_mode(item.mode)
            return Entry(
                name=name,
                path=path,
                kind=kind,
                size=item.size if kind is not EntryKind.DIR else 0,
                mode=item.mode,
                uid=item.uid,
                gid=item.gid,
                mtime_ns=item.mtime_ns,
                atime_ns=item.atime_ns,
                ctime_ns=item.ctime_ns,
                btime_ns=item.otime_ns or None,
                inode=int(node.inum),
                nlink=item.nlink,
                target=self._link_target(node) if kind is EntryKind.SYMLINK else None,
            )

    def _link_target(self, node: BtrfsNode) -> str:
        reader = self._open(node)
        return reader.read_at(0, reader.size).decode("utf-8", "surrogateescape")

    def _open(self, node: BtrfsNode) -> Reader:
        with self._errors("read a file's extents"):
            size = self._inode_item(node).size
            extents = self._file_extents(node) if size else []
        return BtrfsFileReader(self.reader, extents, size, self._sector)

    def _file_extents(self, node: BtrfsNode) -> list[FileExtent]:
        """The file's EXTENT_DATA items as FileExtents (dissect walks the tree; we decode)."""
        out: list[FileExtent] = []
        for _, offset, data in scan_items(
            node.subvolume.tree, node.inum, EXTENT_DATA_KEY, node.inum
        ):
            item_extent = parse_file_extent(offset, data)
            if item_extent.inline is not None and item_extent.compression != COMPRESS_NONE:
                plain = decompress(item_extent.inline, item_extent.compression, self._sector)
                item_extent = FileExtent(item_extent.logical, len(plain), inline=plain)
            elif item_extent.physical is not None:
                span = (
                    item_extent.disk_length
                    if item_extent.compression != COMPRESS_NONE
                    else item_extent.skip + item_extent.length
                )
                phys = self._physical(item_extent.physical, span)
                item_extent = dataclasses.replace(item_extent, physical=phys)
            out.append(item_extent)
        return out

    def _physical(self, logical: int, length: int) -> int:
        """The volume offset of ``length`` bytes at a logical address (one chunk, one copy)."""
        chunks = self._fs._logical_fh  # dissect's chunk map (ChunkStream); pinned version
        i = bisect.bisect_right(chunks._chunk_offsets, logical) - 1
        if i < 0:
            raise FilesystemError(f"btrfs: logical address {logical:#x} is in no chunk")
        chunk = chunks.chunks[i]
        if logical + length > chunk.offset + chunk.length:
            raise FilesystemError(f"btrfs: extent at {logical:#x} crosses its chunk's end")
        if int(chunk.type) & _STRIPED or not chunk.stripes or chunk.stripes[0].fh is None:
            raise FilesystemError("btrfs: striped (RAID0/10/5/6) data chunks are not supported")
        return int(chunk.stripes[0].offset) + (logical - int(chunk.offset))


def open_fs(reader: Reader) -> BtrfsFilesystem:
    if detect(reader) is None:
        raise FilesystemError("not a Btrfs filesystem")
    return BtrfsFilesystem(reader)

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
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any, NamedTuple

from filerestore.blockio import Reader, ReaderFile
from filerestore.errors import (
    FileRestoreError,
    FilesystemError,
    MissingExtraError,
    PathNotFoundError,
    VolumeUnavailableError,
)
from filerestore.fs import btrfs_guard
from filerestore.fs.base import Filesystem
from filerestore.fs.btrfs_items import (
    COMPRESS_NONE,
    EXTENT_DATA_KEY,
    FT_DIR,
    INODE_ITEM_KEY,
    ROOT_ITEM_KEY,
    FileExtent,
    InodeItem,
    check_node,
    check_superblock,
    decompress,
    dir_index,
    parse_file_extent,
    parse_inode_item,
    scan_items,
)
from filerestore.fs.btrfs_tree import RawTree
from filerestore.fs.contents import merged
from filerestore.fs.corrupt import parse_errors
from filerestore.fs.entry import Entry, EntryKind, kind_from_mode
from filerestore.fs.libyal import ExtentReader
from filerestore.fs.limits import BTRFS_MAX_FILE_SIZE, BTRFS_MAX_SYMLINK

SUPERBLOCK_OFFSET = 0x10000
MAGIC_OFFSET = SUPERBLOCK_OFFSET + 0x40
BTRFS_MAGIC = b"_BHRfS_M"
# btrfs_super_block: num_devices (u64) and the dev_item's devid (u64)
NUM_DEVICES_OFFSET = 0x88
DEVID_OFFSET = 0xC9

INODE_CACHE_ENTRIES = 100_000
#: inode numbers further apart than this are read by two passes over the leaves, not one.
#: Measured on bench/index.py's Btrfs image (100,000 files, 4.1 items per inode number): a
#: pass costs 0.38 us an item, a tree search 175 us: the items of about 110 numbers
PREFETCH_GAP = 64
# chunk profiles whose data is striped across devices: a logical address is not one offset
_STRIPED = 0x8 | 0x40 | 0x80 | 0x100  # RAID0, RAID10, RAID5, RAID6 (BTRFS_BLOCK_GROUP_*)


class BtrfsNode(NamedTuple):
    """An inode of a subvolume: all this module needs of one. Not dissect's INode, whose
    constructor wraps two methods in a cache per object (about 20 us: 2 s of a 100,000-file
    walk)."""

    subvolume: Any  # a dissect.btrfs Subvolume
    inum: int


def _node(inode: Any) -> BtrfsNode:
    """Ours for a dissect INode (a subvolume's root)."""
    return BtrfsNode(inode.subvolume, int(inode.inum))


def detect(reader: Reader) -> str | None:
    return "btrfs" if reader.read_at(MAGIC_OFFSET, 8) == BTRFS_MAGIC else None


def check_one_device(sb: bytes) -> None:
    """Refuse a filesystem that spans several devices: this volume is only one of them.

    Chunks (data and metadata) may live on any device, so reading one half would list some
    directories as empty or lose files silently; dissect's reader only sees the devices it
    is given, and a volume is one device.
    """
    devices = int.from_bytes(sb[NUM_DEVICES_OFFSET : NUM_DEVICES_OFFSET + 8], "little")
    if devices > 1:
        devid = int.from_bytes(sb[DEVID_OFFSET : DEVID_OFFSET + 8], "little")
        raise VolumeUnavailableError(
            f"btrfs: device missing: this filesystem spans {devices} devices and this volume "
            f"is only device {devid} of them (multi-device Btrfs is not supported)"
        )


def _checked_btrfs(fh: ReaderFile) -> Any:
    """dissect's Btrfs with every tree node checked as it is first read."""
    from dissect.btrfs import Btrfs

    btrfs_guard.install()

    class CheckedBtrfs(Btrfs):  # type: ignore[misc]
        def _read_node(self, address: int) -> bytes:
            node: bytes = super()._read_node(address)
            fsids = {bytes(self.sb.fsid), bytes(self.sb.metadata_uuid)}
            check_node(node, address, int(self.node_size), int(self.sb.csum_type), fsids)
            return node

    return CheckedBtrfs(fh)


class BtrfsFileReader(ExtentReader[FileExtent]):
    """A file's contents from its extents (inline, compressed or on the volume); needs no
    library handle, safe from many threads."""

    def __init__(self, volume: Reader, extents: list[FileExtent], size: int, sector: int) -> None:
        super().__init__(volume, extents, size)
        self._sector = sector
        self._cache_lock = threading.Lock()
        self._cached: tuple[int, bytes] | None = None

    def data_ranges(self) -> Iterator[tuple[int, int]]:
        mapped = (
            (e.logical, e.length)
            for e in self._extents
            if e.inline is not None or e.physical is not None
        )
        return merged(mapped, self._size)

    def _extent_bytes(self, index: int, ext: FileExtent, start: int, count: int) -> bytes:
        if ext.inline is not None:
            data = ext.inline[start : start + count]
            return data + bytes(count - len(data))
        if ext.physical is None:
            return bytes(count)
        if ext.compression == COMPRESS_NONE:
            return super()._extent_bytes(index, ext, ext.skip + start, count)
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
            superblock = reader.read_at(SUPERBLOCK_OFFSET, 4096)
            check_superblock(superblock)
            check_one_device(superblock)
            self._fs = _checked_btrfs(self._file)
            self._root_node = _node(self._fs.root)
            self.label = self._fs.label or None
            self._sector = int(self._fs.sector_size)
        self._inodes: dict[tuple[int, int], InodeItem] = {}
        self._trees: dict[int, RawTree] = {}
        if subvolume_id is not None:
            self._root_node = self._subvolume_root(subvolume_id)

    def _subvolume_root(self, subvolume_id: int) -> BtrfsNode:
        if subvolume_id not in {sid for sid, _ in self.subvolumes()}:
            raise PathNotFoundError(f"btrfs: no subvolume with id {subvolume_id}")
        with self._errors(f"open subvolume {subvolume_id}"):
            return _node(self._fs.open_subvolume(subvolume_id).root)

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
            self._folded.clear()
            self.named_dirs.clear()

    def subvolumes(self) -> list[tuple[int, str]]:
        """(id, path from the top-level subvolume) of every subvolume."""
        out: list[tuple[int, str]] = []
        with self._lock, self._errors("list subvolumes"):
            for sub in self._fs.subvolumes():  # follows ROOT_REF items: refuse a cycle
                sid = int(sub.objectid)
                if any(sid == known for known, _ in out):
                    raise FilesystemError(f"btrfs: subvolume {sid} is referenced in a loop")
                out.append((sid, "/" + self._subvolume_path(sid)))
        return out

    def _subvolume_path(self, objectid: int) -> str:
        """The path of a subvolume from the top level (its ROOT_BACKREF items)."""
        from dissect.btrfs.c_btrfs import c_btrfs

        def step(sid: int) -> tuple[list[str], int]:
            item, data = self._fs._root_tree.find(sid, c_btrfs.BTRFS_ROOT_BACKREF_KEY)
            ref = c_btrfs.btrfs_root_ref(data)
            parent = int(item.key.offset)
            inside = self._dir_path(parent, int(ref.dirid))
            name = bytes(ref.name).decode("utf-8", "surrogateescape")
            return [name, inside] if inside else [name], parent

        return _path_up(objectid, int(c_btrfs.BTRFS_FS_TREE_OBJECTID), "subvolume", step)

    def _dir_path(self, subvolume_id: int, objectid: int) -> str:
        """The path of directory ``objectid`` inside a subvolume, from its INODE_REF items."""
        from dissect.btrfs.c_btrfs import c_btrfs

        tree = self._fs.open_subvolume(subvolume_id).tree

        def step(dir_id: int) -> tuple[list[str], int]:
            item, data = tree.find(dir_id, c_btrfs.BTRFS_INODE_REF_KEY)
            name = bytes(c_btrfs.btrfs_inode_ref(data).name)
            return [name.decode("utf-8", "surrogateescape")], int(item.key.offset)

        return _path_up(objectid, int(c_btrfs.BTRFS_FIRST_FREE_OBJECTID), "directory", step)

    # --- hooks ---------------------------------------------------------------------------

    def _root(self) -> BtrfsNode:
        return self._root_node

    def _children(self, node: BtrfsNode) -> Iterator[tuple[str, BtrfsNode]]:
        with self._errors("read a directory"):
            out = [
                (name, self._child_node(node, at[0], at[1]))
                for name, at in dir_index(self._tree(node.subvolume), node.inum)
            ]
            self._prefetch_inodes(
                node.subvolume, [c for _, c in out if c.subvolume is node.subvolume]
            )
        return iter(out)

    def _child_node(self, node: BtrfsNode, objectid: int, key_type: int) -> BtrfsNode:
        if key_type == ROOT_ITEM_KEY:  # another subvolume, linked here
            return _node(self._fs.open_subvolume(objectid).root)
        return BtrfsNode(node.subvolume, objectid)

    # --- a page of a large directory: names and kinds from its DIR_INDEX items -------------

    def _located(self, node: BtrfsNode) -> list[tuple[str, tuple[int, int, int]]]:
        with self._errors("read a directory"):
            return dir_index(self._tree(node.subvolume), node.inum)

    def _located_dirs(self, named: dict[str, tuple[int, int, int]]) -> list[tuple[str, bool]]:
        # (location, key type, file type): a subvolume linked here is a directory (its root)
        return [
            (name, where[1] == ROOT_ITEM_KEY or where[2] == FT_DIR) for name, where in named.items()
        ]

    def _nodes_at(self, node: BtrfsNode, wheres: list[tuple[int, int, int]]) -> list[BtrfsNode]:
        with self._errors("read a directory"):
            return [self._child_node(node, at[0], at[1]) for at in wheres]

    def _prefetch_inodes(self, subvol: Any, nodes: list[BtrfsNode]) -> None:
        """Read the inode items of a directory's children a run of neighbouring inode
        numbers at a time, each run in one pass over its leaves.

        Children made together have neighbouring inode numbers, so their items sit in a few
        leaves; a tree search per child costs a descent from the root each. A child made
        later (a file added to an old directory) has a number far from the others: one run
        from the lowest number to the highest would pass over most of the tree, so the
        numbers are split where two lie more than ``PREFETCH_GAP`` apart; a number alone
        is left to its own search.
        """
        sid = int(subvol.objectid)
        want = sorted({int(n.inum) for n in nodes if (sid, int(n.inum)) not in self._inodes})
        if len(want) < 8:
            return
        if len(self._inodes) + len(want) > INODE_CACHE_ENTRIES:
            self._inodes.clear()
        wanted = set(want)
        for lo, hi in number_runs(want, PREFETCH_GAP):
            if lo == hi:
                continue
            for objectid, _, data in scan_items(self._tree(subvol), lo, INODE_ITEM_KEY, hi):
                if objectid in wanted:
                    self._inodes[(sid, objectid)] = parse_inode_item(data)

    def cache_inode_items(self, subvolume_id: int, items: dict[int, bytes]) -> None:
        """Keep inode items read elsewhere (inode number -> INODE_ITEM data) for the next
        entries made of those inodes."""
        with self._errors("read an inode"):
            parsed = {(subvolume_id, n): parse_inode_item(data) for n, data in items.items()}
        if len(self._inodes) + len(parsed) > INODE_CACHE_ENTRIES:
            self._inodes.clear()
        self._inodes.update(parsed)

    def _tree(self, subvolume: Any) -> RawTree:
        """Our reader of a subvolume's tree (fs/btrfs_tree.py)."""
        sid = int(subvolume.objectid)
        tree = self._trees.get(sid)
        if tree is None:
            tree = self._trees[sid] = RawTree(self.tree_node, int(subvolume.tree.root_offset))
        return tree

    def tree_node(self, address: int, check: Callable[..., object] = check_node) -> bytes:
        """The tree node at logical ``address``, read from the volume and checked by
        ``check`` (btrfs_items.check_node; check_header where the caller bounds its parse)."""
        size, sb = int(self._fs.node_size), self._fs.sb
        node = self.reader.read_at(self._physical(address, size), size)
        check(node, address, size, int(sb.csum_type), {bytes(sb.fsid), bytes(sb.metadata_uuid)})
        return node

    def _inode_item(self, node: BtrfsNode) -> InodeItem:
        key = (int(node.subvolume.objectid), int(node.inum))
        item = self._inodes.get(key)
        if item is None:
            data = self._tree(node.subvolume).find((int(node.inum), INODE_ITEM_KEY, 0))
            if data is None:
                raise FilesystemError(f"btrfs: inode {int(node.inum)} has no inode item")
            item = parse_inode_item(data)
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
        if reader.size > BTRFS_MAX_SYMLINK:
            raise FilesystemError(
                f"btrfs: symbolic link inode {int(node.inum)} claims a {reader.size}-byte "
                "target: corrupt"
            )
        return reader.read_at(0, reader.size).decode("utf-8", "surrogateescape")

    def _max_file_size(self, node: BtrfsNode) -> int:
        return BTRFS_MAX_FILE_SIZE

    def _open(self, node: BtrfsNode) -> BtrfsFileReader:
        with self._errors("read a file's extents"):
            size = self._inode_item(node).size
            extents = self._file_extents(node) if size else []
        return BtrfsFileReader(self.reader, extents, size, self._sector)

    def _file_extents(self, node: BtrfsNode) -> list[FileExtent]:
        """The file's EXTENT_DATA items as FileExtents (dissect walks the tree; we decode)."""
        out: list[FileExtent] = []
        for _, offset, data in scan_items(
            self._tree(node.subvolume), node.inum, EXTENT_DATA_KEY, node.inum
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


def _path_up(
    objectid: int, top: int, what: str, step: Callable[[int], tuple[list[str], int]]
) -> str:
    """The path from ``top`` down to ``objectid``: ``step(id)`` gives an id's names, the
    last one first, and its parent's id. A loop of references is refused (dissect's
    Subvolume.path follows them for ever)."""
    parts: list[str] = []
    seen: set[int] = set()
    while objectid != top:
        if objectid in seen:
            raise FilesystemError(f"btrfs: {what} {objectid} is its own ancestor")
        seen.add(objectid)
        names, objectid = step(objectid)
        parts.extend(names)
    return "/".join(reversed(parts))


def open_fs(reader: Reader) -> BtrfsFilesystem:
    with parse_errors("btrfs", "open the filesystem"):
        if detect(reader) is None:
            raise FilesystemError("not a Btrfs filesystem")
        return BtrfsFilesystem(reader)


def number_runs(numbers: list[int], gap: int) -> list[tuple[int, int]]:
    """(first, last) of each run of the sorted ``numbers`` in which no two neighbours lie
    more than ``gap`` apart."""
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and n - runs[-1][1] <= gap:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs

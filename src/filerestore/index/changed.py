"""The changed-block incremental: only what the overlay's clusters can have changed is read.

For an incremental on an ext filesystem in a partition (a contiguous volume), whose backing
file is the previous backup of its line:

1. the guest ranges the overlay holds itself (image.allocation) give the volume ranges that
   may differ from the previous backup, whose disk is the overlay's backing layer;
2. the inode-table bytes in those ranges, compared with the previous backup's, give the
   changed inodes (fs/ext_changes.py);
3. each changed inode that is a live directory in the index is listed again and compared
   with its live entries (walks.diff_directory); a directory that appears in one (new,
   moved in, renamed) is walked whole; one that disappears has everything below it ended;
4. every other live path of a changed inode (a file written, a chmod, a hard link's count)
   whose directory was not listed again gets a new version if its metadata changed.

Anything else (another filesystem, a logical volume, a chain whose backing file is not the
previous backup, a resized filesystem) returns False and the pass walks the whole tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from filerestore.blockio import CachedReader, Reader
from filerestore.errors import FileRestoreError
from filerestore.fs import Filesystem, open_filesystem
from filerestore.fs.entry import Entry, EntryKind
from filerestore.fs.ext import ExtFilesystem
from filerestore.image import DiskImage
from filerestore.image.allocation import changed_since
from filerestore.index.paths import DirPaths
from filerestore.index.rows import DIR_CODE, meta_of, same_version
from filerestore.index.store import IndexStore
from filerestore.index.text import from_db, to_db
from filerestore.index.volume_writer import ROOT_DIR_NO, ROOT_PARENT, VolumeWriter
from filerestore.index.walks import DirChanges, apply_diff, diff_directory, diff_root, live_named
from filerestore.volume import Volume, list_volumes

_LOOKUP_CHUNK = 500
_META = (
    "v.kind, v.size, v.mode, v.uid, v.gid, v.mtime_ns, v.ctime_delta, v.atime_delta, "
    "v.btime_delta, v.inode, v.nlink, v.target, v.data_location"
)


def changed_blocks_pass(
    disk: DiskImage, volume: Volume, fs: Filesystem[Any], vw: VolumeWriter
) -> bool:
    """Write the volume's changes from its changed blocks; False when this method does not
    apply (see the module docstring) and nothing was written."""
    if not isinstance(fs, ExtFilesystem) or volume.offset is None:
        return False
    guest = changed_since(disk, 1)
    if guest is None or len(disk.layers) < 2:
        return False
    ranges = _volume_ranges(guest, volume.offset, volume.size)
    old_fs = _previous_filesystem(disk.layers[1], volume)
    if not isinstance(old_fs, ExtFilesystem):
        if old_fs is not None:
            old_fs.close()
        return False
    try:
        from filerestore.fs.ext_changes import changed_inodes

        inodes = changed_inodes(fs, old_fs, ranges)
        if inodes is None:
            return False
        _apply(fs, old_fs, vw, inodes, ranges)
    finally:
        old_fs.close()
    return True


def _volume_ranges(guest: list[tuple[int, int]], offset: int, size: int) -> list[tuple[int, int]]:
    out = []
    for start, length in guest:
        lo, hi = max(start, offset), min(start + length, offset + size)
        if lo < hi:
            out.append((lo - offset, hi - lo))
    return out


def _previous_filesystem(backing: Reader, volume: Volume) -> Filesystem[Any] | None:
    """The same volume in the previous backup (the overlay's backing disk), if its partition
    is where it is now."""
    try:
        for old in list_volumes(backing):
            if old.id == volume.id:
                if (old.offset, old.size) != (volume.offset, volume.size) or old.error:
                    return None
                return open_filesystem(CachedReader(old.reader))
    except FileRestoreError:
        return None
    return None


def _live_by_inode(
    store: IndexStore, volume_id: int, inodes: Iterable[int]
) -> list[tuple[Any, ...]]:
    """(parent_no, name_id, name, dir_no or None, *meta) of each live version of ``inodes``."""
    numbers = sorted(set(inodes))
    out: list[tuple[Any, ...]] = []
    for i in range(0, len(numbers), _LOOKUP_CHUNK):
        chunk = numbers[i : i + _LOOKUP_CHUNK]
        marks = ",".join("?" * len(chunk))
        out += store.query(
            f"SELECT v.parent_no, v.name_id, n.name, d.dir_no, {_META} FROM index_versions v"
            f"{store.indexed_by('ix_index_versions_live_inode')} "
            "JOIN index_names n ON n.id = v.name_id "
            f"LEFT JOIN index_dirs d ON v.kind = {DIR_CODE} AND d.volume_id = v.volume_id "
            "AND d.parent_no = v.parent_no AND d.name_id = v.name_id "
            f"WHERE v.volume_id = ? AND v.last_seq IS NULL AND v.inode IN ({marks})",
            (volume_id, *chunk),
        )
    return out


def _still_at(fs: ExtFilesystem, path: str, inode: int) -> bool:
    """Whether ``path`` still names inode ``inode`` in the new filesystem."""
    try:
        return fs.stat(path).inode == inode
    except FileRestoreError:
        return False


def _apply(
    fs: ExtFilesystem,
    old_fs: ExtFilesystem,
    vw: VolumeWriter,
    inodes: list[int],
    ranges: list[tuple[int, int]],
) -> None:
    from filerestore.fs.ext_changes import changed_entries, inode_entries, iter_below, list_inode

    writer = vw.writer
    paths = DirPaths(writer.store, vw.volume_id)
    live = _live_by_inode(writer.store, vw.volume_id, inodes)
    # the live directories whose inode changed: their entries are compared (parents first)
    relist: dict[int, int] = {row[3]: row[13] for row in live if row[3] is not None}
    root_ino = fs._root().number
    if root_ino in set(inodes):
        relist[ROOT_DIR_NO] = root_ino
    changes = DirChanges()
    dirs: dict[str, int] = {}
    listed: set[int] = set()  # directories listed whole
    handled: set[tuple[int, int]] = set()  # (dir, name id) compared from directory blocks
    for dir_no in sorted(relist, key=lambda no: len(paths.ancestors(no))):
        if changes.ended & set(paths.ancestors(dir_no)):
            continue  # below a directory that is gone from its path
        path = paths.of(dir_no)
        ino = relist[dir_no]
        if not _still_at(fs, path, ino):
            continue  # moved, removed or replaced: its parent's entries say so
        delta = changed_entries(fs, old_fs, ino, ranges)
        if delta is None:
            entries = list_inode(fs, ino, path)
            if entries is None:
                continue
            diff_directory(writer.store, vw, dir_no, entries, dirs, changes)
            listed.add(dir_no)
            writer.entries += len(entries)
        else:
            handled |= _apply_entries(fs, vw, dir_no, path, delta, dirs, changes, inode_entries)
        writer.maybe_commit()
    # directories that are new at their path: all of each is walked (the outermost only)
    fresh = sorted(changes.fresh)
    tops = [p for i, p in enumerate(fresh) if not any(p.startswith(q + "/") for q in fresh[:i])]
    for top in tops:
        _walk_new(vw, iter_below(fs, top), dirs)
    # every other live path of a changed inode, where its directory's comparison left it
    rest: list[tuple[Any, ...]] = []
    for row in live:
        parent_no, name_id = row[0], row[1]
        if parent_no == ROOT_PARENT:  # the root's own version (no listing holds it)
            diff_root(writer.store, vw, inode_entries(fs, [(root_ino, "", "/")])[0])
            continue
        if (parent_no, name_id) in handled or parent_no in listed:
            continue
        if not changes.ended & set(paths.ancestors(parent_no)):
            rest.append(row)
    for i in range(0, len(rest), _LOOKUP_CHUNK):
        rows = rest[i : i + _LOOKUP_CHUNK]
        wanted = []
        for row in rows:
            name = from_db(row[2])
            wanted.append((row[13], name, f"{paths.of(row[0]).rstrip('/')}/{name}"))
        for row, entry in zip(rows, inode_entries(fs, wanted), strict=True):
            if not same_version(row[4:], meta_of(entry)):
                vw.end(row[0], row[1])
                vw.add(row[0], row[1], entry)
        writer.entries += len(rows)
        writer.maybe_commit()


def _apply_entries(
    fs: ExtFilesystem,
    vw: VolumeWriter,
    dir_no: int,
    path: str,
    delta: tuple[set[tuple[str, int]], set[tuple[str, int]]],
    dirs: dict[str, int],
    changes: DirChanges,
    inode_entries: Callable[[ExtFilesystem, list[tuple[int, str, str]]], list[Entry]],
) -> set[tuple[int, int]]:
    """Write the entries a directory's changed blocks added and removed; returns the
    (dir, name id) keys it compared."""
    store = vw.writer.store
    added, removed = delta
    base = path.rstrip("/")
    entries = inode_entries(fs, [(ino, name, f"{base}/{name}") for name, ino in sorted(added)])
    names = {n for n, _ in added} | {n for n, _ in removed}
    ids = store.name_ids(names)
    live = live_named(store, vw.volume_id, dir_no, sorted({ids[n] for n in names}))
    now = {to_db(n) for n, _ in added}
    gone = [row for text, row in live.items() if text not in now]
    apply_diff(store, vw, dir_no, live, entries, gone, dirs, changes)
    vw.writer.entries += len(entries)
    return {(dir_no, ids[n]) for n in names}


def _walk_new(
    vw: VolumeWriter, walk: Iterable[tuple[Entry, list[Entry]]], dirs: dict[str, int]
) -> None:
    """The subtree of a directory that is new at its path (its number is in ``dirs``),
    compared with the index (which may hold ended versions there: they are not live)."""
    writer = vw.writer
    for dentry, entries in walk:
        if dentry.kind is not EntryKind.DIR:
            continue
        parent = dirs.pop(dentry.path)
        diff_directory(writer.store, vw, parent, entries, dirs)
        writer.entries += len(entries)
        writer.maybe_commit()

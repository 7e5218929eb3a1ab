"""The changed-block incremental: only what the overlay's clusters can have changed is read.

For an incremental on an ext, XFS or NTFS filesystem in a partition (a contiguous volume), whose
backing file is the previous backup of its line (Btrfs compares its trees instead, and FAT
and exFAT, which have no inodes, their directories' slots: see fs/btrfs_changes.py and
index/fat_reread.py):

1. the guest ranges the overlay holds itself (image.allocation) give the volume ranges that
   may differ from the previous backup, whose disk is the overlay's backing layer;
2. the inode-table bytes (ext), inode chunks (XFS, found by its inode B+trees) or MFT
   records (NTFS) in those ranges, compared with the previous backup's, give the changed
   inodes (fs/ext_changes.py, fs/xfs_changes.py, fs/ntfs_changes.py; an NTFS file's inode
   number is its MFT record's index);
3. the directories whose entries changed are compared with their live entries: on ext and
   XFS, each changed inode that is a live directory (the kernel sets a directory's mtime with
   every entry it adds or removes), on ext from its directory blocks that changed when they
   can be compared, on XFS from its differing data blocks, else listed whole; on
   NTFS, every directory named by a link that a changed record gained or lost
   (fs/ntfs_changes.record_links), without listing any. A directory
   that appears in one (new, moved in, renamed) is walked whole; one that disappears has
   everything below it ended;
4. every other live path of a changed inode (a file written, a chmod, a hard link's count)
   whose directory was not listed again gets a new version if its metadata changed.

Anything else (another filesystem, a logical volume, a chain whose backing file is not the
previous backup, a resized or grown filesystem, a moved MFT, a corrupt inode B+tree or
inode table met while the changed inodes are found, before anything is written) returns
False and the pass walks the whole tree.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from filerestore.blockio import CachedReader, Reader
from filerestore.errors import FileRestoreError, FilesystemError
from filerestore.fs import Filesystem, open_filesystem
from filerestore.fs.btrfs import BtrfsFilesystem
from filerestore.fs.entry import Entry, EntryKind
from filerestore.fs.exfat import ExfatFilesystem
from filerestore.fs.ext import ExtFilesystem
from filerestore.fs.fat import FatFilesystem
from filerestore.fs.ntfs import NtfsFilesystem
from filerestore.fs.xfs import XfsFilesystem
from filerestore.image import DiskImage
from filerestore.image.allocation import changed_since
from filerestore.index.btrfs_reread import BtrfsReread, btrfs_rereads, subvolume_roots
from filerestore.index.paths import DirPaths
from filerestore.index.rereads import (
    LOOKUP_CHUNK,
    Delta,
    ExtReread,
    NtfsReread,
    Reread,
    XfsReread,
    live_by_inode,
)
from filerestore.index.rows import meta_of, same_version
from filerestore.index.text import from_db, to_db
from filerestore.index.volume_writer import ROOT_PARENT, VolumeWriter
from filerestore.index.walks import DirChanges, apply_diff, diff_directory, diff_root, live_named
from filerestore.volume import Volume, list_volumes

log = logging.getLogger("filerestore.index")


def changed_blocks_pass(
    disk: DiskImage, volume: Volume, fs: Filesystem[Any], vw: VolumeWriter
) -> bool:
    """Write the volume's changes from its changed blocks; False when this method does not
    apply (see the module docstring) and nothing was written."""
    kinds = (
        ExtFilesystem,
        NtfsFilesystem,
        XfsFilesystem,
        BtrfsFilesystem,
        FatFilesystem,
        ExfatFilesystem,
    )
    if not isinstance(fs, kinds) or volume.offset is None:
        return False
    guest = changed_since(disk, 1)
    if guest is None or len(disk.layers) < 2:
        return False
    ranges = _volume_ranges(guest, volume.offset, volume.size)
    old_fs = _previous_filesystem(disk.layers[1], volume)
    if old_fs is None or type(old_fs) is not type(fs):
        if old_fs is not None:
            old_fs.close()
        return False
    try:
        try:
            found = find_changes(fs, old_fs, ranges)
        except FilesystemError as exc:
            # nothing is written yet: the walk reads what it can and notes the rest
            log.warning("volume %s: changed-block pass not taken, walking: %s", volume.id, exc)
            return False
        if found is None:
            return False
        paths = DirPaths(vw.writer.store, vw.volume_id)
        roots: dict[int, int] = {}
        if isinstance(fs, BtrfsFilesystem):
            held = subvolume_roots(fs, vw.writer.store, vw.volume_id, paths)
            if held is None:
                return False
            roots = held
            found = _bound(found, roots)
        for inodes, reread in found:
            _apply(fs, reread, vw, inodes, paths, roots)
    finally:
        old_fs.close()
    return True


def _bound(found: list[tuple[list[int], Reread]], roots: dict[int, int]) -> list[Any]:
    """Each Btrfs subvolume's reread given its root directory's number in the index; one
    whose root the index does not hold (no path of the default subvolume reaches it)
    left out."""
    dir_of = {sid: dir_no for dir_no, sid in roots.items()}
    out = []
    for inodes, reread in found:
        if isinstance(reread, BtrfsReread) and reread.subvolume_id in dir_of:
            reread.root_dir = dir_of[reread.subvolume_id]
            out.append((inodes, reread))
    return out


def find_changes(
    fs: Filesystem[Any], old_fs: Filesystem[Any], ranges: list[tuple[int, int]]
) -> list[tuple[list[int], Reread]] | None:
    """The changed inodes and the kind's way to reread them (one pair per Btrfs subvolume
    that changed, one pair for the other kinds); None: the walk must be taken."""
    if isinstance(fs, ExtFilesystem) and isinstance(old_fs, ExtFilesystem):
        ext = ExtReread(fs, old_fs, ranges)
        inodes = ext.changed()
        return None if inodes is None else [(inodes, ext)]
    if isinstance(fs, XfsFilesystem) and isinstance(old_fs, XfsFilesystem):
        from filerestore.fs.xfs_changes import changed_inodes

        inodes = changed_inodes(fs, old_fs, ranges)
        return None if inodes is None else [(inodes, XfsReread(fs, old_fs, ranges))]
    if isinstance(fs, BtrfsFilesystem) and isinstance(old_fs, BtrfsFilesystem):
        # the trees' own generations say what differs: the overlay's ranges are not needed
        from filerestore.fs.btrfs_changes import subvolume_changes

        changes = subvolume_changes(fs, old_fs)
        return None if changes is None else [*btrfs_rereads(fs, changes)]
    slot_kinds = FatFilesystem | ExfatFilesystem
    if isinstance(fs, slot_kinds) and isinstance(old_fs, slot_kinds) and fs.kind == old_fs.kind:
        from filerestore.index.fat_reread import FatReread

        # the directories to compare are found from the index's (FatReread.compare)
        return [([], FatReread(fs, old_fs, ranges))]
    if isinstance(fs, NtfsFilesystem) and isinstance(old_fs, NtfsFilesystem):
        from filerestore.fs.ntfs_changes import changed_records

        records = changed_records(fs, old_fs, ranges)
        return None if records is None else [(records, NtfsReread(fs))]
    return None  # a kind without this pass


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


def _apply(
    fs: Filesystem[Any],
    reread: Reread,
    vw: VolumeWriter,
    inodes: list[int],
    paths: DirPaths,
    roots: dict[int, int],
) -> None:
    writer = vw.writer
    live = live_by_inode(writer.store, vw.volume_id, inodes)
    if isinstance(reread, BtrfsReread):  # inode numbers are the subvolume's
        live = reread.scope(live, roots, paths)
    # the directories whose entries may have changed are compared (parents first)
    relist = reread.compare(writer.store, vw, live, inodes)
    changes = DirChanges()
    dirs: dict[str, int] = {}
    listed: set[int] = set()  # directories listed whole
    handled: set[tuple[int, int]] = set()  # (dir, name id) compared from directory blocks

    for dir_no in sorted(relist, key=lambda no: len(paths.ancestors(no))):
        if changes.ended & set(paths.ancestors(dir_no)):
            continue  # below a directory that is gone from its path
        path = paths.of(dir_no)
        ino = relist[dir_no]
        if not reread.still_at(path, ino):
            continue  # moved, removed or replaced: its parent's entries say so
        delta = reread.delta(dir_no, ino, path)
        if isinstance(delta, list):  # listed whole
            diff_directory(writer.store, vw, dir_no, delta, dirs, changes)
            listed.add(dir_no)
            writer.entries += len(delta)
        elif delta is not None:
            handled |= _apply_entries(reread, vw, dir_no, path, delta, dirs, changes)
        writer.maybe_commit()
    # every other live path of a changed inode, where its directory's comparison left it
    rest: list[tuple[Any, ...]] = []
    for row in live:
        parent_no, name_id = row[0], row[1]
        if parent_no == ROOT_PARENT:  # the root's own version (no listing holds it)
            diff_root(writer.store, vw, reread.root_entry())
            continue
        if (parent_no, name_id) in handled or parent_no in listed:
            continue
        if not changes.ended & set(paths.ancestors(parent_no)):
            rest.append(row)
    for i in range(0, len(rest), LOOKUP_CHUNK):
        rows = rest[i : i + LOOKUP_CHUNK]
        wanted = []
        for row in rows:
            name = from_db(row[2])
            wanted.append((row[13], name, f"{paths.of(row[0]).rstrip('/')}/{name}"))
        for row, entry in zip(rows, reread.entries(wanted), strict=True):
            if entry is None:  # the inode lost that name (its link not seen as removed)
                vw.end(row[0], row[1])
            elif not same_version(row[4:], meta_of(entry)):
                vw.end(row[0], row[1])
                vw.add(row[0], row[1], entry)
        writer.entries += len(rows)
        writer.maybe_commit()
    # directories that are new at their path: all of each is walked (the outermost only)
    fresh = sorted(changes.fresh)
    tops = [p for i, p in enumerate(fresh) if not any(p.startswith(q + "/") for q in fresh[:i])]
    for top in tops:
        _walk_new(vw, reread.below(top), dirs)


def _apply_entries(
    reread: Reread,
    vw: VolumeWriter,
    dir_no: int,
    path: str,
    delta: Delta,
    dirs: dict[str, int],
    changes: DirChanges,
) -> set[tuple[int, int]]:
    """Write the entries a directory's changed blocks added and removed; returns the
    (dir, name id) keys it compared."""
    store = vw.writer.store
    added, removed = delta
    base = path.rstrip("/")
    wanted = [(ino, name, f"{base}/{name}") for name, ino in sorted(added)]
    entries = [e for e in reread.entries(wanted) if e is not None]
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

"""The changed-block incremental: only what the overlay's clusters can have changed is read.

For an incremental on an ext, XFS or NTFS filesystem in a partition (a contiguous volume), whose
backing file is the previous backup of its line:

1. the guest ranges the overlay holds itself (image.allocation) give the volume ranges that
   may differ from the previous backup, whose disk is the overlay's backing layer;
2. the inode-table bytes (ext), inode chunks (XFS, found by its inode B+trees) or MFT
   records (NTFS) in those ranges, compared with the previous backup's, give the changed
   inodes (fs/ext_changes.py, fs/xfs_changes.py, fs/ntfs_changes.py; an NTFS file's inode
   number is its MFT record's index);
3. the directories whose entries changed are compared with their live entries: on ext and
   XFS, each changed inode that is a live directory (the kernel sets a directory's mtime with
   every entry it adds or removes), on ext from its directory blocks that changed when they
   can be compared, on XFS from its entries read in both states, else listed whole; on
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
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from filerestore.blockio import CachedReader, Reader
from filerestore.errors import FileRestoreError, FilesystemError
from filerestore.fs import Filesystem, open_filesystem
from filerestore.fs.entry import Entry, EntryKind
from filerestore.fs.ext import ExtFilesystem
from filerestore.fs.ntfs import ROOT_MFT_INDEX, NtfsFilesystem
from filerestore.fs.xfs import XfsFilesystem
from filerestore.image import DiskImage
from filerestore.image.allocation import changed_since
from filerestore.index.paths import DirPaths
from filerestore.index.rows import DIR_CODE, meta_of, same_version
from filerestore.index.store import IndexStore
from filerestore.index.text import from_db, to_db
from filerestore.index.volume_writer import ROOT_DIR_NO, ROOT_PARENT, VolumeWriter
from filerestore.index.walks import DirChanges, apply_diff, diff_directory, diff_root, live_named
from filerestore.volume import Volume, list_volumes

log = logging.getLogger("filerestore.index")
_LOOKUP_CHUNK = 500
_KEEP_NODES = 4096  # NTFS: changed records whose file entries are kept between two reads
_META = (
    "v.kind, v.size, v.mode, v.uid, v.gid, v.mtime_ns, v.ctime_delta, v.atime_delta, "
    "v.btime_delta, v.inode, v.nlink, v.target, v.data_location"
)


def changed_blocks_pass(
    disk: DiskImage, volume: Volume, fs: Filesystem[Any], vw: VolumeWriter
) -> bool:
    """Write the volume's changes from its changed blocks; False when this method does not
    apply (see the module docstring) and nothing was written."""
    if not isinstance(fs, ExtFilesystem | NtfsFilesystem | XfsFilesystem) or volume.offset is None:
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
            inodes, reread = _changed(fs, old_fs, ranges)
        except FilesystemError as exc:
            # nothing is written yet: the walk reads what it can and notes the rest
            log.warning("volume %s: changed-block pass not taken, walking: %s", volume.id, exc)
            return False
        if inodes is None:
            return False
        _apply(fs, reread, vw, inodes)
    finally:
        old_fs.close()
    return True


def _changed(
    fs: Filesystem[Any], old_fs: Filesystem[Any], ranges: list[tuple[int, int]]
) -> tuple[list[int] | None, _Reread]:
    """The changed inodes (None: the walk must be taken) and the kind's way to reread them."""
    if isinstance(fs, ExtFilesystem) and isinstance(old_fs, ExtFilesystem):
        ext = _ExtReread(fs, old_fs, ranges)
        return ext.changed(), ext
    if isinstance(fs, XfsFilesystem) and isinstance(old_fs, XfsFilesystem):
        from filerestore.fs.xfs_changes import changed_inodes

        return changed_inodes(fs, old_fs, ranges), _XfsReread(fs, old_fs)
    from filerestore.fs.ntfs_changes import changed_records

    assert isinstance(fs, NtfsFilesystem) and isinstance(old_fs, NtfsFilesystem)
    return changed_records(fs, old_fs, ranges), _NtfsReread(fs)


Delta = tuple[set[tuple[str, int]], set[tuple[str, int]]]  # (added, removed) (name, inode)


class _Reread(Protocol):
    """How one filesystem kind reads again what its changed bytes name."""

    root: int  # the root directory's inode number

    def entries(self, wanted: list[tuple[int, str, str]]) -> list[Entry | None]:
        """The entry of each (inode, name, path); None where the inode lost that name."""

    def root_entry(self) -> Entry: ...

    def below(self, path: str) -> Iterable[tuple[Entry, list[Entry]]]:
        """``iter_all`` of the subtree of directory ``path`` (its own entry first)."""

    def compare(
        self, store: IndexStore, vw: VolumeWriter, live: list[tuple[Any, ...]], inodes: list[int]
    ) -> dict[int, int]:
        """The directories to compare (dir number -> inode), parents of changed entries."""

    def delta(self, dir_no: int, number: int, path: str) -> Delta | list[Entry] | None:
        """What directory ``dir_no`` (inode ``number``, at ``path``) gained and lost; or all
        its entries, to compare with the index's; None if it is no directory now."""

    def still_at(self, path: str, number: int) -> bool:
        """Whether ``path`` still names directory inode ``number``."""


class _ExtReread:
    def __init__(
        self, fs: ExtFilesystem, old: ExtFilesystem, ranges: list[tuple[int, int]]
    ) -> None:
        from filerestore.fs import ext_changes

        self._m = ext_changes
        self.fs, self.old, self.ranges = fs, old, ranges
        self.root = fs._root().number

    def changed(self) -> list[int] | None:
        return self._m.changed_inodes(self.fs, self.old, self.ranges)

    def entries(self, wanted: list[tuple[int, str, str]]) -> list[Entry | None]:
        return [*self._m.inode_entries(self.fs, wanted)]

    def root_entry(self) -> Entry:
        return self._m.inode_entries(self.fs, [(self.root, "", "/")])[0]

    def below(self, path: str) -> Iterable[tuple[Entry, list[Entry]]]:
        return self._m.iter_below(self.fs, path)

    def compare(
        self, store: IndexStore, vw: VolumeWriter, live: list[tuple[Any, ...]], inodes: list[int]
    ) -> dict[int, int]:
        # the live directories whose inode changed: their entries changed with their mtime
        relist: dict[int, int] = {row[3]: row[13] for row in live if row[3] is not None}
        if self.root in set(inodes):
            relist[ROOT_DIR_NO] = self.root
        return relist

    def delta(self, dir_no: int, number: int, path: str) -> Delta | list[Entry] | None:
        delta = self._m.changed_entries(self.fs, self.old, number, self.ranges)
        return self._m.list_inode(self.fs, number, path) if delta is None else delta

    def still_at(self, path: str, number: int) -> bool:
        try:
            return self.fs.stat(path).inode == number
        except FileRestoreError:
            return False


class _NtfsReread:
    root = ROOT_MFT_INDEX

    def __init__(self, fs: NtfsFilesystem) -> None:
        self.fs = fs
        self._deltas: dict[int, Delta] = {}
        self._nodes: dict[int, Any] = {}
        self._moved: set[int] = set()  # records that lost a link the index holds

    def entries(self, wanted: list[tuple[int, str, str]]) -> list[Entry | None]:
        from filerestore.fs.ntfs_changes import record_entries

        return record_entries(self.fs, wanted, self._nodes)

    def root_entry(self) -> Entry:
        return self.fs.stat("/")

    def below(self, path: str) -> Iterator[tuple[Entry, list[Entry]]]:
        return _listed_below(self.fs, path)

    def compare(
        self, store: IndexStore, vw: VolumeWriter, live: list[tuple[Any, ...]], inodes: list[int]
    ) -> dict[int, int]:
        """Every directory's added and removed entries from the changed records' links (see
        ntfs_changes.record_links), against the links the index holds for those records."""
        from filerestore.fs.ntfs_changes import record_links

        # the records' file entries are kept for their entries when they are few (each holds
        # its record and parsed attributes)
        self._nodes = {}
        links = record_links(self.fs, inodes, self._nodes if len(inodes) <= _KEEP_NODES else None)
        parents = sorted({p for ls in links.values() for p, _ in ls})
        dir_of = {r[13]: r[3] for r in _live_by_inode(store, vw.volume_id, parents) if r[3]}
        dir_of[ROOT_MFT_INDEX] = ROOT_DIR_NO
        was: dict[int, set[tuple[int, str]]] = {}
        for row in live:
            if row[0] != ROOT_PARENT:
                was.setdefault(row[13], set()).add((row[0], from_db(row[2])))
        self._deltas = {}
        for index in inodes:
            now = {(dir_of[p], name) for p, name in links.get(index, ()) if p in dir_of}
            before = was.get(index, set())
            if before - now:
                self._moved.add(index)
            for dir_no, name in now - before:
                self._deltas.setdefault(dir_no, (set(), set()))[0].add((name, index))
            for dir_no, name in before - now:
                self._deltas.setdefault(dir_no, (set(), set()))[1].add((name, index))
        # a link to a directory the index does not hold is below a new one: walked whole
        number = _dir_inodes(store, vw.volume_id, sorted(self._deltas))
        return {d: number[d] for d in self._deltas if d in number}

    def delta(self, dir_no: int, number: int, path: str) -> Delta | list[Entry] | None:
        return self._deltas.get(dir_no, (set(), set()))

    def still_at(self, path: str, number: int) -> bool:
        # a directory has one link: it left its path if and only if its record lost that link
        return number not in self._moved


class _XfsReread:
    def __init__(self, fs: XfsFilesystem, old: XfsFilesystem) -> None:
        self.fs, self.old = fs, old
        self.root = int(fs._root_node.get_inode_number())

    def entries(self, wanted: list[tuple[int, str, str]]) -> list[Entry | None]:
        out: list[Entry | None] = []
        fs = self.fs
        with fs._lock, fs._library_errors("read an inode"):
            for number, name, path in wanted:
                node = fs._volume.get_file_entry_by_inode(number)
                # a freed inode keeps no mode: it lost every name
                out.append(fs._entry(name, path, node) if node.get_file_mode() else None)
        return out

    def root_entry(self) -> Entry:
        return self.fs.stat("/")

    def below(self, path: str) -> Iterator[tuple[Entry, list[Entry]]]:
        return _listed_below(self.fs, path)

    def compare(
        self, store: IndexStore, vw: VolumeWriter, live: list[tuple[Any, ...]], inodes: list[int]
    ) -> dict[int, int]:
        # as on ext: a directory whose entries changed is a changed inode (its mtime)
        relist: dict[int, int] = {row[3]: row[13] for row in live if row[3] is not None}
        if self.root in set(inodes):
            relist[ROOT_DIR_NO] = self.root
        return relist

    def delta(self, dir_no: int, number: int, path: str) -> Delta | list[Entry] | None:
        from filerestore.fs.xfs_changes import changed_entries, is_directory

        delta = changed_entries(self.fs, self.old, number)
        if delta is not None:
            return delta
        return list(self.fs.list_dir(path)) if is_directory(self.fs, number) else None

    def still_at(self, path: str, number: int) -> bool:
        try:
            return self.fs.stat(path).inode == number
        except FileRestoreError:
            return False


def _listed_below(fs: Filesystem[Any], path: str) -> Iterator[tuple[Entry, list[Entry]]]:
    """The subtree of directory ``path`` (its own entry first), listed directory by
    directory."""
    top = fs.stat(path)
    pending = deque([top] if top.kind is EntryKind.DIR else [])
    while pending:
        dentry = pending.popleft()
        entries = list(fs.list_dir(dentry.path))
        yield dentry, entries
        pending.extend(e for e in entries if e.kind is EntryKind.DIR)


def _dir_inodes(store: IndexStore, volume_id: int, dir_nos: list[int]) -> dict[int, int]:
    """The inode of each live directory of ``dir_nos``."""
    out: dict[int, int] = {ROOT_DIR_NO: ROOT_MFT_INDEX} if ROOT_DIR_NO in dir_nos else {}
    for i in range(0, len(dir_nos), _LOOKUP_CHUNK):
        chunk = dir_nos[i : i + _LOOKUP_CHUNK]
        marks = ",".join("?" * len(chunk))
        out.update(
            store.query(
                "SELECT d.dir_no, v.inode FROM index_dirs d JOIN index_versions v "
                "ON v.volume_id = d.volume_id AND v.parent_no = d.parent_no "
                f"AND v.name_id = d.name_id AND v.last_seq IS NULL AND v.kind = {DIR_CODE} "
                f"WHERE d.volume_id = ? AND d.dir_no IN ({marks}) AND d.dir_no != {ROOT_DIR_NO}",
                (volume_id, *chunk),
            )
        )
    return out


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


def _apply(fs: Filesystem[Any], reread: _Reread, vw: VolumeWriter, inodes: list[int]) -> None:
    writer = vw.writer
    paths = DirPaths(writer.store, vw.volume_id)
    live = _live_by_inode(writer.store, vw.volume_id, inodes)
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
    for i in range(0, len(rest), _LOOKUP_CHUNK):
        rows = rest[i : i + _LOOKUP_CHUNK]
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
    reread: _Reread,
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

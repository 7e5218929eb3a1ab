"""Btrfs for the changed-block pass (filerestore.index.changed): the items that the two
states' trees of a subvolume do not share (fs/btrfs_changes.py) name its changed inodes and
every directory's added and removed entries. Each subvolume has its own inode numbers, so
each changed one is applied on its own, to the index's rows below its root directory."""

from __future__ import annotations

from typing import Any

from filerestore.errors import FileRestoreError
from filerestore.fs.btrfs import BtrfsFilesystem, BtrfsNode, _node
from filerestore.fs.btrfs_changes import FIRST_FREE_OBJECTID, TreeChanges
from filerestore.fs.entry import Entry
from filerestore.index.paths import DirPaths
from filerestore.index.rereads import Delta, Listed, live_by_inode
from filerestore.index.store import IndexStore
from filerestore.index.volume_writer import ROOT_DIR_NO, ROOT_PARENT, VolumeWriter


class BtrfsReread(Listed[BtrfsFilesystem]):
    """Btrfs: the items the two states' trees of one subvolume do not share
    (fs/btrfs_changes.py) name the changed inodes and every directory's added and removed
    entries. Inode numbers are per subvolume: the index's live versions of those numbers
    are narrowed to this subvolume's (:meth:`scope`)."""

    def __init__(
        self,
        fs: BtrfsFilesystem,
        changes: TreeChanges,
        top: BtrfsNode | None = None,
    ) -> None:
        self.fs, self.changes = fs, changes
        self._top = fs._root() if top is None else top  # the subvolume's root directory
        self.subvolume_id = int(self._top.subvolume.objectid)
        self.root = int(self._top.inum)
        self.root_dir = ROOT_DIR_NO  # its directory number in the index (see subvolume_roots)
        self._moved = {ino for pairs in changes.removed.values() for _, ino in pairs}

    def inodes(self) -> list[int]:
        """The changed inode numbers (objects of the tree that are no inodes, such as
        orphan items at 2^64 - 5, left out)."""
        return sorted(o for o in self.changes.changed if FIRST_FREE_OBJECTID <= o < 1 << 63)

    def scope(
        self, live: list[tuple[Any, ...]], roots: dict[int, int], paths: DirPaths
    ) -> list[tuple[Any, ...]]:
        """The rows of ``live`` (of live_by_inode) that are this subvolume's: below its root
        directory and no other subvolume's root below it, or its root directory's own row.
        ``roots``: the index's directory number of each subvolume's root directory (the
        default subvolume's is ROOT_DIR_NO)."""
        out = []
        for row in live:
            if row[0] == ROOT_PARENT:  # the root's own version
                if self.root_dir == ROOT_DIR_NO:
                    out.append(row)
            elif row[3] in roots and row[13] == FIRST_FREE_OBJECTID:
                if row[3] == self.root_dir:  # a subvolume's root: the subvolume's inode
                    out.append(row)
            elif next(a for a in paths.ancestors(row[0]) if a in roots) == self.root_dir:
                out.append(row)
        return out

    def entries(self, wanted: list[tuple[int, str, str]]) -> list[Entry | None]:
        fs, gone = self.fs, self.changes.gone
        with fs._lock:
            # their inode items are those the trees' comparison read: no search each
            fs.cache_inode_items(
                self.subvolume_id,
                {
                    n: self.changes.inode_items[n]
                    for n, _, _ in wanted
                    if n in self.changes.inode_items
                },
            )
            return [
                None
                if number in gone
                else fs._entry(name, path, BtrfsNode(self._top.subvolume, number))
                for number, name, path in wanted
            ]

    def compare(
        self, store: IndexStore, vw: VolumeWriter, live: list[tuple[Any, ...]], inodes: list[int]
    ) -> dict[int, int]:
        # the live directories whose DIR_INDEX items differ
        touched = set(self.changes.added) | set(self.changes.removed)
        relist = {row[3]: row[13] for row in live if row[3] is not None and row[13] in touched}
        if self.root in touched and self.root_dir == ROOT_DIR_NO:
            relist[ROOT_DIR_NO] = self.root
        return relist

    def delta(self, dir_no: int, number: int, path: str) -> Delta | list[Entry] | None:
        return self.changes.added.get(number, set()), self.changes.removed.get(number, set())

    def still_at(self, path: str, number: int) -> bool:
        # a directory has one name: it left its path if and only if a directory lost it
        return number not in self._moved


def subvolume_roots(
    fs: BtrfsFilesystem, store: IndexStore, volume_id: int, paths: DirPaths
) -> dict[int, int] | None:
    """The index's directory number of the root directory of each subvolume it holds (inode
    256 in its own tree) -> the subvolume's id; the default subvolume's is ROOT_DIR_NO. None
    when one is not at its path any more (the walk is taken then)."""
    roots = {ROOT_DIR_NO: int(fs._root().subvolume.objectid)}
    for row in live_by_inode(store, volume_id, [FIRST_FREE_OBJECTID]):
        if row[0] == ROOT_PARENT or row[3] is None:
            continue
        try:
            with fs._lock:
                _, node = fs._resolve(paths.of(row[3]), follow_final=False)
        except FileRestoreError:
            return None
        if int(node.inum) != FIRST_FREE_OBJECTID:
            return None
        roots[row[3]] = int(node.subvolume.objectid)
    return roots


def btrfs_rereads(
    fs: BtrfsFilesystem, changes: dict[int, TreeChanges]
) -> list[tuple[list[int], BtrfsReread]]:
    """A reread of each subvolume that changed (its root found by its id)."""
    out = []
    for sid, tree in sorted(changes.items()):
        with fs._lock, fs._errors(f"open subvolume {sid}"):
            top = _node(fs._fs.open_subvolume(sid).root)
        reread = BtrfsReread(fs, tree, top)
        out.append((reread.inodes(), reread))
    return out

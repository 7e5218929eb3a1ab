"""How each filesystem kind reads again what its changed bytes name, for the changed-block
pass (filerestore.index.changed): the changed inodes' entries, the directories to compare,
and each one's added and removed entries."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, Generic, Protocol, TypeVar

from filerestore.errors import FileRestoreError
from filerestore.fs import Filesystem
from filerestore.fs.entry import Entry, EntryKind
from filerestore.fs.ext import ExtFilesystem
from filerestore.fs.ntfs import ROOT_MFT_INDEX, NtfsFilesystem
from filerestore.fs.xfs import XfsFilesystem
from filerestore.index.rows import DIR_CODE
from filerestore.index.store import IndexStore
from filerestore.index.text import from_db
from filerestore.index.volume_writer import ROOT_DIR_NO, ROOT_PARENT, VolumeWriter

F = TypeVar("F", bound=Filesystem[Any])
LOOKUP_CHUNK = 500  # numbers per IN (...) query
#: NTFS: changed records whose library file entries are kept between their two reads (links,
#: then entries): about 4 KiB each (RSS of 20,000 of them), 64 MiB at most, as many as a 1%
#: change of 1,600,000 files; a record past them is read twice
_KEEP_NODES = 16_384
_META = (
    "v.kind, v.size, v.mode, v.uid, v.gid, v.mtime_ns, v.ctime_delta, v.atime_delta, "
    "v.btime_delta, v.inode, v.nlink, v.target, v.data_location"
)


Delta = tuple[set[tuple[str, int]], set[tuple[str, int]]]  # (added, removed) (name, inode)


class Reread(Protocol):
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


class _DirectoryInodes(Generic[F]):
    """Kinds whose changed directories are changed inodes (ext, XFS: the kernel sets a
    directory's mtime and ctime with every entry it adds or removes), and whose entries'
    inode numbers say where a path still leads."""

    fs: F
    root: int

    def compare(
        self, store: IndexStore, vw: VolumeWriter, live: list[tuple[Any, ...]], inodes: list[int]
    ) -> dict[int, int]:
        # the live directories whose inode changed
        relist: dict[int, int] = {row[3]: row[13] for row in live if row[3] is not None}
        if self.root in set(inodes):
            relist[ROOT_DIR_NO] = self.root
        return relist

    def still_at(self, path: str, number: int) -> bool:
        try:
            return self.fs.stat(path).inode == number
        except FileRestoreError:
            return False


class Listed(Generic[F]):
    """Kinds whose root entry is its stat and whose new subtrees are listed directory by
    directory (NTFS, XFS, Btrfs; ext has its bulk walk of a subtree)."""

    fs: F

    def root_entry(self) -> Entry:
        return self.fs.stat("/")

    def below(self, path: str) -> Iterator[tuple[Entry, list[Entry]]]:
        return listed_below(self.fs, path)


class ExtReread(_DirectoryInodes[ExtFilesystem]):
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

    def delta(self, dir_no: int, number: int, path: str) -> Delta | list[Entry] | None:
        delta = self._m.changed_entries(self.fs, self.old, number, self.ranges)
        return self._m.list_inode(self.fs, number, path) if delta is None else delta


class NtfsReread(Listed[NtfsFilesystem]):
    root = ROOT_MFT_INDEX

    def __init__(self, fs: NtfsFilesystem) -> None:
        self.fs = fs
        self._deltas: dict[int, Delta] = {}
        self._nodes: dict[int, Any] = {}
        self._moved: set[int] = set()  # records that lost a link the index holds

    def entries(self, wanted: list[tuple[int, str, str]]) -> list[Entry | None]:
        from filerestore.fs.ntfs_changes import record_entries

        return record_entries(self.fs, wanted, self._nodes)

    def compare(
        self, store: IndexStore, vw: VolumeWriter, live: list[tuple[Any, ...]], inodes: list[int]
    ) -> dict[int, int]:
        """Every directory's added and removed entries from the changed records' links (see
        ntfs_changes.record_links), against the links the index holds for those records."""
        from filerestore.fs.ntfs_changes import record_links

        # the records' file entries are kept for their entries, up to a number (each holds its
        # record and parsed attributes)
        self._nodes = {}
        links = record_links(self.fs, inodes, self._nodes, _KEEP_NODES)
        parents = sorted({p for ls in links.values() for p, _ in ls})
        dir_of = {r[13]: r[3] for r in live_by_inode(store, vw.volume_id, parents) if r[3]}
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
        number = dir_inodes(store, vw.volume_id, sorted(self._deltas))
        return {d: number[d] for d in self._deltas if d in number}

    def delta(self, dir_no: int, number: int, path: str) -> Delta | list[Entry] | None:
        return self._deltas.get(dir_no, (set(), set()))

    def still_at(self, path: str, number: int) -> bool:
        # a directory has one link: it left its path if and only if its record lost that link
        return number not in self._moved


class XfsReread(_DirectoryInodes[XfsFilesystem], Listed[XfsFilesystem]):
    """XFS: the changed inodes of its inode chunks (fs/xfs_changes.py); a changed
    directory's differing data blocks (or all its entries) read in both states."""

    def __init__(
        self, fs: XfsFilesystem, old: XfsFilesystem, ranges: list[tuple[int, int]]
    ) -> None:
        self.fs, self.old, self.ranges = fs, old, ranges
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

    def delta(self, dir_no: int, number: int, path: str) -> Delta | list[Entry] | None:
        from filerestore.fs.xfs_changes import changed_entries, is_directory

        delta = changed_entries(self.fs, self.old, number, self.ranges)
        if delta is not None:
            return delta
        return list(self.fs.list_dir(path)) if is_directory(self.fs, number) else None


def listed_below(fs: Filesystem[Any], path: str) -> Iterator[tuple[Entry, list[Entry]]]:
    """The subtree of directory ``path`` (its own entry first), listed directory by
    directory."""
    top = fs.stat(path)
    pending = deque([top] if top.kind is EntryKind.DIR else [])
    while pending:
        dentry = pending.popleft()
        entries = list(fs.list_dir(dentry.path))
        yield dentry, entries
        pending.extend(e for e in entries if e.kind is EntryKind.DIR)


def dir_inodes(store: IndexStore, volume_id: int, dir_nos: list[int]) -> dict[int, int]:
    """The inode of each live directory of ``dir_nos``."""
    out: dict[int, int] = {ROOT_DIR_NO: ROOT_MFT_INDEX} if ROOT_DIR_NO in dir_nos else {}
    for i in range(0, len(dir_nos), LOOKUP_CHUNK):
        chunk = dir_nos[i : i + LOOKUP_CHUNK]
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


def live_by_inode(
    store: IndexStore, volume_id: int, inodes: Iterable[int]
) -> list[tuple[Any, ...]]:
    """(parent_no, name_id, name, dir_no or None, *meta) of each live version of ``inodes``."""
    numbers = sorted(set(inodes))
    out: list[tuple[Any, ...]] = []
    for i in range(0, len(numbers), LOOKUP_CHUNK):
        chunk = numbers[i : i + LOOKUP_CHUNK]
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

"""FAT and exFAT for the changed-block pass (filerestore.index.changed): the directories to
compare are the live directories whose clusters the overlay touched or whose cluster chain
changed; each one's added and removed entries come from its differing 32-byte slots
(fs/fat_changes.py), the removed ones named by the index (the entry's offset is its inode)."""

from __future__ import annotations

from typing import Any

from filerestore.errors import FilesystemError
from filerestore.fs.entry import Entry
from filerestore.fs.exfat import ENTRY_SIZE, ExfatFilesystem, parse_entry_set
from filerestore.fs.fat import FatFilesystem
from filerestore.fs.fat_changes import (
    ExfatSlots,
    Extents,
    FatSlots,
    Slots,
    changed_slots,
    read_extents,
    touches,
    volume_offset,
)
from filerestore.index.rereads import Delta, Listed, live_by_inode
from filerestore.index.rows import DIR_CODE
from filerestore.index.store import IndexStore
from filerestore.index.text import from_db
from filerestore.index.volume_writer import ROOT_DIR_NO, VolumeWriter

SlotFilesystem = FatFilesystem | ExfatFilesystem
ROOT_OFFSET = 0  # the root directory has no entry: its inode is 0 on both kinds

_LIVE_DIRS = (
    "SELECT d.dir_no, v.inode FROM index_dirs d JOIN index_versions v "
    "ON v.volume_id = d.volume_id AND v.parent_no = d.parent_no AND v.name_id = d.name_id "
    f"AND v.last_seq IS NULL AND v.kind = {DIR_CODE} "
    f"WHERE d.volume_id = ? AND d.dir_no != {ROOT_DIR_NO}"
)


def slots_of(fs: SlotFilesystem) -> Slots:
    return FatSlots(fs) if isinstance(fs, FatFilesystem) else ExfatSlots(fs)


class FatReread(Listed[Any]):
    """FAT12/16/32 and exFAT (see the module docstring)."""

    root = ROOT_OFFSET

    def __init__(
        self, fs: SlotFilesystem, old: SlotFilesystem, ranges: list[tuple[int, int]]
    ) -> None:
        self.fs, self.old = fs, old
        self.ranges = sorted(ranges)
        self._starts = [lo for lo, _ in self.ranges]
        self.slots, self.old_slots = slots_of(fs), slots_of(old)
        self._plan: dict[int, Extents | None] = {}  # dir number -> its extents; None: list all
        self._nodes: dict[int, Any] = {}  # offset -> the library node or exFAT node read
        self._store: IndexStore | None = None
        self._volume_id = 0

    def compare(
        self, store: IndexStore, vw: VolumeWriter, live: list[tuple[Any, ...]], inodes: list[int]
    ) -> dict[int, int]:
        self._store, self._volume_id = store, vw.volume_id
        dirs = dict(store.query(_LIVE_DIRS, (vw.volume_id,)))
        dirs[ROOT_DIR_NO] = ROOT_OFFSET
        relist: dict[int, int] = {}
        for dir_no, offset in dirs.items():
            compared, extents = self.plan(offset)
            if compared:
                self._plan[dir_no], relist[dir_no] = extents, offset
        return relist

    def plan(self, offset: int) -> tuple[bool, Extents | None]:
        """Whether the directory whose entry is at ``offset`` is to be compared, and its
        extents (the same in both states) or None (to be listed whole)."""
        with self.fs._lock, self.old._lock:
            try:
                now = self.slots.extents(offset)
            except FilesystemError:  # its listing says what is wrong (or reads it)
                return True, None
            if now is None:
                return False, None  # no directory there now: its parent's slots say so
            try:
                before = self.old_slots.extents(offset)
            except FilesystemError:
                before = None
            if before != now:
                return True, None  # grown, shrunk or moved: listed whole
            return touches(now, self.ranges, self._starts), now

    def delta(self, dir_no: int, number: int, path: str) -> Delta | list[Entry] | None:
        extents = self._plan.get(dir_no)
        if extents is None:
            return list(self.fs.list_dir(path))
        self._nodes = {}  # the last directory's entries are written: one directory's at a time
        added, gone = self.slot_delta(extents)
        removed: set[tuple[str, int]] = set()
        if gone and self._store is not None:
            for row in live_by_inode(self._store, self._volume_id, gone):
                if row[0] == dir_no:
                    removed.add((from_db(row[2]), row[13]))
        return added, removed

    def slot_delta(self, extents: Extents) -> tuple[set[tuple[str, int]], set[int]]:
        """The (name, offset) of each entry a directory's differing slots hold now, and the
        offsets of those they held before."""
        with self.fs._lock, self.old._lock:
            new = read_extents(self.fs.reader, extents)
            old = read_extents(self.old.reader, extents)
            now, before = changed_slots(new, old, self.slots.entry_at)
            added: set[tuple[str, int]] = set()
            for pos in now:
                offset = volume_offset(extents, pos)
                name = self._read_node(offset, new, pos)
                if name is not None and name not in (".", "..") and "/" not in name:
                    added.add((name, offset))
        return added, {volume_offset(extents, pos) for pos in before}

    def _read_node(self, offset: int, data: bytes | None = None, pos: int = 0) -> str | None:
        """Read (and keep) the entry at volume ``offset`` (byte ``pos`` of its directory's
        ``data`` when given); its name, or None where the walk would skip it."""
        fs, slots = self.fs, self.slots
        if isinstance(slots, ExfatSlots):
            if data is None:
                node = slots.node_at(offset)
                if node is None:
                    raise FilesystemError(f"exfat: no file entry at offset {offset} now")
            else:
                node = parse_entry_set(data[pos : pos + (data[pos + 1] + 1) * ENTRY_SIZE], offset)
            self._nodes[offset] = node
            return node.name
        assert isinstance(fs, FatFilesystem)
        with fs._library_errors("read a directory entry"):
            library_node = fs._volume.get_file_entry_by_identifier(offset)
            self._nodes[offset] = library_node
            name: str | None = fs._child_name(library_node, library_node)
            return name

    def entries(self, wanted: list[tuple[int, str, str]]) -> list[Entry | None]:
        fs: Any = self.fs  # FatFilesystem or ExfatFilesystem, each with its own node type
        with fs._lock:
            out: list[Entry | None] = []
            for offset, name, path in wanted:
                if offset not in self._nodes:
                    self._read_node(offset)
                out.append(fs._entry(name, path, self._nodes[offset]))
            return out

    def still_at(self, path: str, number: int) -> bool:
        # the parents are compared first: a directory that left its slot was ended there; one
        # still in its slot is still at its path
        try:
            with self.fs._lock:
                return number == ROOT_OFFSET or self.slots.extents(number) is not None
        except FilesystemError:
            return True  # its listing says what is wrong

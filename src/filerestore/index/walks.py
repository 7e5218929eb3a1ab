"""The two walks of a pass over a volume: everything new (the first backup of a line), or
everything compared with the line's live versions (an incremental whose changed blocks are
not known, or a filesystem without a changed-block reader).

Both take the filesystem's bulk walk (``Filesystem.iter_all``) directory by directory. The
comparing walk reads, per directory, the live versions of its entries and its known
subdirectories (two queries on primary-key ranges), and writes only the differences: new
names, changed entries (an end and a new version), gone names (an end, and the ends of
everything live below a gone directory).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from filerestore.fs import Filesystem
from filerestore.fs.entry import Entry, EntryKind
from filerestore.index.rows import DIR_CODE, meta_of, same_version
from filerestore.index.store import IndexStore
from filerestore.index.text import to_db
from filerestore.index.volume_writer import ROOT_DIR_NO, ROOT_PARENT, VolumeWriter

_DIR = EntryKind.DIR
_META = (
    "v.kind, v.size, v.mode, v.uid, v.gid, v.mtime_ns, v.ctime_delta, v.atime_delta, "
    "v.btime_delta, v.inode, v.nlink, v.target, v.data_location"
)
_LIVE_IN_DIR = (
    f"SELECT n.name, v.name_id, {_META} FROM index_versions v "
    "JOIN index_names n ON n.id = v.name_id "
    "WHERE v.volume_id = ? AND v.parent_no = ? AND v.last_seq IS NULL"
)
_SUBDIRS = "SELECT name_id, dir_no FROM index_dirs WHERE volume_id = ? AND parent_no = ?"
_LIVE_BELOW = (
    "WITH RECURSIVE below(no) AS (SELECT CAST(? AS BIGINT) UNION ALL "
    "SELECT d.dir_no FROM index_dirs d JOIN below ON d.parent_no = below.no "
    "WHERE d.volume_id = ? AND d.dir_no <> d.parent_no) "
    "SELECT v.parent_no, v.name_id FROM index_versions v JOIN below ON v.parent_no = below.no "
    "WHERE v.volume_id = ? AND v.last_seq IS NULL"
)


def full_walk(fs: Filesystem[Any], vw: VolumeWriter) -> None:
    """Every entry of ``fs`` as a new version."""
    writer = vw.writer
    dirs: dict[str, int] = {}
    for dentry, entries in fs.iter_all():
        if dentry.path == "/":
            parent = vw.add_root(dentry)
            writer.entries += 1
        else:
            parent = dirs.pop(dentry.path)
        ids = writer.store.name_ids([e.name for e in entries])
        add, new_dir = vw.add, vw.new_dir
        for e in entries:
            name_id = ids[e.name]
            add(parent, name_id, e)
            if e.kind is _DIR:
                dirs[e.path] = new_dir(parent, name_id)
        writer.entries += len(entries)
        writer.maybe_commit()


def diff_walk(fs: Filesystem[Any], vw: VolumeWriter) -> None:
    """Every entry of ``fs`` compared with the volume's live versions; differences written."""
    writer = vw.writer
    dirs: dict[str, int] = {}
    for dentry, entries in fs.iter_all():
        if dentry.path == "/":
            diff_root(writer.store, vw, dentry)
            parent = ROOT_DIR_NO
            writer.entries += 1
        else:
            parent = dirs.pop(dentry.path)
        diff_directory(writer.store, vw, parent, entries, dirs)
        writer.entries += len(entries)
        writer.maybe_commit()


def diff_root(store: IndexStore, vw: VolumeWriter, entry: Entry) -> None:
    name_id = vw.root_name_id()
    live = store.query(
        f"SELECT {_META} FROM index_versions v WHERE v.volume_id = ? AND v.parent_no = ? "
        "AND v.name_id = ? AND v.last_seq IS NULL",
        (vw.volume_id, ROOT_PARENT, name_id),
    )
    if not live or not same_version(live[0], meta_of(entry)):
        if live:
            vw.end(ROOT_PARENT, name_id)
        vw.add(ROOT_PARENT, name_id, entry)


@dataclass
class DirChanges:
    """What a listing compared with the index found, for a pass that walks only part of
    the tree: directories new at their path (their subtrees are to be walked) and
    directories whose subtrees were ended (paths below them are gone)."""

    fresh: list[str] = field(default_factory=list)
    ended: set[int] = field(default_factory=set)


def diff_directory(
    store: IndexStore,
    vw: VolumeWriter,
    parent: int,
    entries: list[Entry],
    dirs: dict[str, int],
    changes: DirChanges | None = None,
) -> None:
    """Write the differences between directory ``parent``'s live entries and ``entries``,
    and put the number of each directory among them in ``dirs`` (by path)."""
    live = {row[0]: row for row in store.query(_LIVE_IN_DIR, (vw.volume_id, parent))}
    names = {to_db(e.name) for e in entries}
    gone = [row for text, row in live.items() if text not in names]
    apply_diff(store, vw, parent, live, entries, gone, dirs, changes)


def live_named(
    store: IndexStore, volume_id: int, parent: int, name_ids: list[int]
) -> dict[str, tuple[Any, ...]]:
    """Live versions in directory ``parent`` of the given names, by stored name."""
    out: dict[str, tuple[Any, ...]] = {}
    for i in range(0, len(name_ids), 500):
        chunk = name_ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        sql = f"{_LIVE_IN_DIR} AND v.name_id IN ({marks})"
        out.update((row[0], row) for row in store.query(sql, (volume_id, parent, *chunk)))
    return out


def apply_diff(
    store: IndexStore,
    vw: VolumeWriter,
    parent: int,
    live: dict[str, tuple[Any, ...]],
    entries: list[Entry],
    gone: list[tuple[Any, ...]],
    dirs: dict[str, int],
    changes: DirChanges | None = None,
) -> None:
    """Write ``entries`` of directory ``parent`` where they differ from their ``live``
    versions (rows of _LIVE_IN_DIR by stored name) and end the ``gone`` rows."""
    v = vw.volume_id
    known: dict[int, int] | None = None  # name id -> dir_no, read when a directory needs it
    ids = store.name_ids([e.name for e in entries])
    for e in entries:
        name_id = ids[e.name]
        row = live.get(to_db(e.name))
        if row is None:
            vw.add(parent, name_id, e)
        elif not same_version(row[2:], meta_of(e)):
            vw.end(parent, name_id)
            vw.add(parent, name_id, e)
            if row[2] == DIR_CODE and e.kind is not _DIR:
                end_below(store, vw, _dir_no(store, v, parent, name_id), changes)
        if e.kind is _DIR:
            if known is None:
                known = dict(store.query(_SUBDIRS, (v, parent)))
            no = known.get(name_id)
            dirs[e.path] = vw.new_dir(parent, name_id) if no is None else no
            if changes is not None and (row is None or row[2] != DIR_CODE or row[11] != e.inode):
                changes.fresh.append(e.path)  # not this directory before: walk all of it
    for row in gone:
        vw.end(parent, row[1])
        if row[2] == DIR_CODE:
            end_below(store, vw, _dir_no(store, v, parent, row[1]), changes)


def _dir_no(store: IndexStore, volume_id: int, parent: int, name_id: int) -> int | None:
    found = store.query(
        "SELECT dir_no FROM index_dirs WHERE volume_id = ? AND parent_no = ? AND name_id = ?",
        (volume_id, parent, name_id),
    )
    return found[0][0] if found else None


def end_below(
    store: IndexStore, vw: VolumeWriter, dir_no: int | None, changes: DirChanges | None = None
) -> None:
    """End every live version below directory ``dir_no``."""
    if dir_no is None:
        return
    if changes is not None:
        changes.ended.add(dir_no)
    v = vw.volume_id
    for parent, name_id in store.query(_LIVE_BELOW, (dir_no, v, v)):
        vw.end(parent, name_id)

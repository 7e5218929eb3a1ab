"""The diff of two backups of one disk, or of one directory in them.

Both backups are in one line, numbered ``a`` and ``b``. An entry can differ between them only
if one of its versions began after the older and by the newer (``first_seq`` in (lo, hi]) or
ended between them (``last_seq`` in [lo, hi)): the two partial indexes on versions give
exactly those keys, so the diff reads what changed, not the two trees. For each key the
versions valid in ``a`` and in ``b`` are compared: only in ``b`` is ``added``, only in ``a``
``removed``, both but different ``changed`` (the fields that differ named; access time
ignored, as everywhere in the index).

:class:`BackupDiff` is an iterator (entries are read a chunk of keys at a time, so a diff of
millions of entries is streamed) whose ``totals`` are complete once it is exhausted. With
``content=True``, a changed file's contents are compared by their hashes, computed from the
two backups where the index has none (and then kept in the index).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from itertools import groupby
from typing import Any

from filerestore.db.engine import Database
from filerestore.errors import UsageError
from filerestore.fs.entry import EntryKind
from filerestore.index.hashing import ContentHashes
from filerestore.index.history import line_of
from filerestore.index.paths import DirPaths, dir_no_of
from filerestore.index.records import DiffEntry, DiffTotals, Version
from filerestore.index.rows import identity
from filerestore.index.store import IndexStore
from filerestore.index.text import from_db
from filerestore.index.visible import VERSION_COLUMNS, BackupFilter, version_of, visible_lines
from filerestore.index.volume_writer import ROOT_PARENT

KEY_CHUNK = 500
#: the Version fields a change is told by (not the access time: see filerestore.index.rows)
COMPARED = (
    "kind", "size", "mode", "uid", "gid", "mtime_ns", "ctime_ns", "btime_ns", "inode",
    "nlink", "target", "data_location",
)  # fmt: skip


class BackupDiff:
    """Iterate for the DiffEntry of every path that differs; then read ``totals``."""

    def __init__(
        self,
        db: Database,
        old_backup_id: int,
        new_backup_id: int,
        allowed: Collection[int],
        *,
        volume: str | None = None,
        path: str = "/",
        content: bool = False,
        hashes: ContentHashes | None = None,
    ) -> None:
        for backup_id in (old_backup_id, new_backup_id):
            if backup_id not in allowed:
                raise UsageError(f"no backup with id {backup_id} may be compared here")
        self.db = db
        self.ids = (old_backup_id, new_backup_id)
        self.allowed = allowed
        self.volume = volume
        self.path = path
        self.content = content
        self.hashes = hashes
        self._counts = {"added": 0, "removed": 0, "changed": 0}
        self._bytes = [0, 0]
        self._kinds: dict[str, int] = {}

    @property
    def totals(self) -> DiffTotals:
        return DiffTotals(
            added=self._counts["added"],
            removed=self._counts["removed"],
            changed=self._counts["changed"],
            bytes_added=self._bytes[0],
            bytes_removed=self._bytes[1],
            by_kind=dict(self._kinds),
        )

    def __iter__(self) -> Iterator[DiffEntry]:
        with self.db.read() as session:
            store = IndexStore(session)
            line_a, line_b = (line_of(store, i) for i in self.ids)
            if line_a != line_b:
                raise UsageError(
                    "the two backups are not of one disk's chain (a full backup and the "
                    "incrementals on it): they cannot be compared through the index"
                )
            line = visible_lines(store, BackupFilter(self.allowed, self.ids)).get(line_a)
            seqs = (
                {}
                if line is None
                else {r.backup_id: s for s, r in zip(line.seqs, line.refs, strict=True)}
            )
            if set(seqs) != set(self.ids) and self.ids[0] != self.ids[1]:
                raise UsageError("both backups must be completely indexed to be compared")
            if self.ids[0] == self.ids[1]:
                return
            a, b = seqs[self.ids[0]], seqs[self.ids[1]]
            assert line is not None
            refs = {s: r for s, r in zip(line.seqs, line.refs, strict=True)}
            volumes = store.query(
                "SELECT id, volume FROM index_volumes WHERE line_id = ? ORDER BY volume",
                (line_a,),
            )
            for volume_id, volume in volumes:
                if self.volume is None or volume == self.volume:
                    yield from self._volume(store, volume_id, volume, a, b, refs)

    def _volume(
        self,
        store: IndexStore,
        volume_id: int,
        volume: str,
        a: int,
        b: int,
        refs: dict[int, Any],
    ) -> Iterator[DiffEntry]:
        paths = DirPaths(store, volume_id)
        top = dir_no_of(store, volume_id, self.path)
        if top is None:
            return
        lo, hi = min(a, b), max(a, b)
        keys = store.query(
            "SELECT parent_no, name_id FROM index_versions"
            f"{store.indexed_by('ix_index_versions_started')} WHERE volume_id = ? "
            "AND first_seq > 1 AND first_seq > ? AND first_seq <= ? "
            "UNION SELECT parent_no, name_id FROM index_versions"
            f"{store.indexed_by('ix_index_versions_ended')} WHERE volume_id = ? "
            "AND last_seq IS NOT NULL AND last_seq >= ? AND last_seq < ? "
            "ORDER BY 1, 2",
            (volume_id, lo, hi, volume_id, lo, hi),
        )
        whole = self.path in ("", "/")
        for parent, group in groupby(keys, key=lambda k: k[0]):
            if parent == ROOT_PARENT:  # the root's own versions: in a diff of everything
                if not whole:
                    continue
            elif not whole and top not in paths.ancestors(parent):
                continue
            names = [k[1] for k in group]
            for i in range(0, len(names), KEY_CHUNK):
                chunk = names[i : i + KEY_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = store.query(
                    f"SELECT v.name_id, {VERSION_COLUMNS}, n.name FROM index_versions v "
                    "JOIN index_names n ON n.id = v.name_id WHERE v.volume_id = ? "
                    f"AND v.parent_no = ? AND v.name_id IN ({marks}) ORDER BY 1, 2",
                    (volume_id, parent, *chunk),
                )
                for _, versions in groupby(rows, key=lambda r: r[0]):
                    entry = self._compare(
                        list(versions), a, b, refs, volume, volume_id, parent, paths
                    )
                    if entry is not None:
                        yield entry

    def _compare(
        self,
        rows: list[Any],
        a: int,
        b: int,
        refs: dict[int, Any],
        volume: str,
        volume_id: int,
        parent: int,
        paths: DirPaths,
    ) -> DiffEntry | None:
        def at(seq: int) -> Any:
            for r in rows:
                if r[1] <= seq and (r[2] is None or seq <= r[2]):
                    return r
            return None

        old, new = at(a), at(b)
        if old is None and new is None:
            return None
        if old is not None and new is not None and identity(old[3:16]) == identity(new[3:16]):
            return None  # gone and back the same
        name = from_db(rows[0][-1])
        path = paths.entry_path(parent, name)
        v_old = None if old is None else version_of(old[1:], (refs[a],))
        v_new = None if new is None else version_of(new[1:], (refs[b],))
        fields: tuple[str, ...] = ()
        if v_old is None:
            change = "added"
        elif v_new is None:
            change = "removed"
        else:
            change = "changed"
            fields = tuple(f for f in COMPARED if getattr(v_old, f) != getattr(v_new, f))
        content = None
        if self.content and change == "changed" and v_old and v_new:
            content = self._content_changed(volume, volume_id, parent, path, old, new, v_old, v_new)
        self._count(change, v_old, v_new)
        return DiffEntry(change, volume, path, v_old, v_new, fields, content)

    def _count(self, change: str, old: Version | None, new: Version | None) -> None:
        self._counts[change] += 1
        either = new or old
        kind = "other" if either is None else str(either.kind)
        self._kinds[kind] = self._kinds.get(kind, 0) + 1
        if change == "added" and new and new.kind is EntryKind.FILE:
            self._bytes[0] += new.size
        elif change == "removed" and old and old.kind is EntryKind.FILE:
            self._bytes[1] += old.size
        elif change == "changed" and old and new and new.kind is EntryKind.FILE:
            grew = new.size - (old.size if old.kind is EntryKind.FILE else 0)
            self._bytes[0 if grew >= 0 else 1] += abs(grew)

    def _content_changed(
        self,
        volume: str,
        volume_id: int,
        parent: int,
        path: str,
        old: Any,
        new: Any,
        v_old: Version,
        v_new: Version,
    ) -> bool | None:
        if v_old.kind is not EntryKind.FILE or v_new.kind is not EntryKind.FILE:
            return None
        if v_old.size != v_new.size:
            return True
        if self.hashes is None:
            self.hashes = ContentHashes(self.db)
        name_id = old[0]
        h_old = old[16] or self.hashes.of(
            self.ids[0], volume, path, (volume_id, parent, name_id, old[1])
        )
        h_new = new[16] or self.hashes.of(
            self.ids[1], volume, path, (volume_id, parent, name_id, new[1])
        )
        if h_old is None or h_new is None:
            return None
        return bytes(h_old) != bytes(h_new)

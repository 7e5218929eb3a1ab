"""The backups a query may see, by line, and the versions they hold.

Every query takes the ids of the backups its caller may open (the service decides that) and
sees nothing else: a version is reported only with the visible backups that hold it, and a
version no visible backup holds is not reported at all.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from filerestore.index.records import BackupRef, Version
from filerestore.index.rows import KINDS, Meta, times_of
from filerestore.index.store import IndexStore
from filerestore.index.text import from_db

#: the columns of a version row as version_of reads them
VERSION_COLUMNS = (
    "v.first_seq, v.last_seq, v.kind, v.size, v.mode, v.uid, v.gid, v.mtime_ns, v.ctime_delta, "
    "v.atime_delta, v.btime_delta, v.inode, v.nlink, v.target, v.data_location, v.hash"
)
_CHUNK = 500


@dataclass
class LineBackups:
    """The visible, completely indexed backups of one line, in seq order."""

    seqs: list[int] = field(default_factory=list)
    refs: list[BackupRef] = field(default_factory=list)

    def holding(self, first_seq: int, last_seq: int | None) -> tuple[BackupRef, ...]:
        lo = bisect.bisect_left(self.seqs, first_seq)
        hi = len(self.seqs) if last_seq is None else bisect.bisect_right(self.seqs, last_seq)
        return tuple(self.refs[lo:hi])

    def at(self, seq: int) -> BackupRef | None:
        i = bisect.bisect_left(self.seqs, seq)
        return self.refs[i] if i < len(self.seqs) and self.seqs[i] == seq else None


@dataclass(frozen=True)
class BackupFilter:
    """Which backups a query looks at, within those its caller may see."""

    allowed: Collection[int]
    backup_ids: Collection[int] | None = None
    vm_name: str | None = None
    disk_name: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


def visible_lines(store: IndexStore, f: BackupFilter) -> dict[int, LineBackups]:
    """Line id -> its backups that pass ``f`` and are completely indexed."""
    ids = sorted(set(f.allowed) & set(f.backup_ids if f.backup_ids is not None else f.allowed))
    lines: dict[int, LineBackups] = {}
    rows: list[tuple[Any, ...]] = []
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        marks = ",".join("?" * len(chunk))
        rows += store.query(
            "SELECT ib.line_id, ib.seq, b.id, b.created_at, r.name, b.vm_name, b.disk_name "
            "FROM index_backups ib JOIN backups b ON b.id = ib.backup_id "
            "JOIN repositories r ON r.id = b.repository_id "
            f"WHERE ib.complete = ? AND ib.backup_id IN ({marks})",
            (True, *chunk),
        )
    for line_id, seq, backup_id, created, repo, vm, disk in sorted(rows, key=lambda r: r[:2]):
        created_at = utc_of(created)
        if f.vm_name is not None and vm != f.vm_name:
            continue
        if f.disk_name is not None and disk != f.disk_name:
            continue
        if f.created_from is not None and created_at < f.created_from:
            continue
        if f.created_to is not None and created_at > f.created_to:
            continue
        line = lines.setdefault(line_id, LineBackups())
        line.seqs.append(seq)
        line.refs.append(BackupRef(backup_id, created_at, repo, vm, disk))
    return lines


def utc_of(raw: Any) -> datetime:
    """A catalog time read on the driver's connection (naive UTC: a datetime from
    PostgreSQL, SQLAlchemy's ISO text on SQLite) as an aware datetime."""
    value = datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC)


def version_of(row: Sequence[Any], backups: tuple[BackupRef, ...]) -> Version:
    """A Version from a row of VERSION_COLUMNS."""
    meta = Meta(*row[2:15])
    mtime, ctime, atime, btime = times_of(meta)
    digest = row[15]
    return Version(
        kind=KINDS[meta.kind],
        size=meta.size,
        mode=meta.mode,
        uid=meta.uid,
        gid=meta.gid,
        mtime_ns=mtime,
        ctime_ns=ctime,
        atime_ns=atime,
        btime_ns=btime,
        inode=meta.inode,
        nlink=meta.nlink,
        target=None if meta.target is None else from_db(meta.target),
        data_location=meta.data_location,
        hash=None if digest is None else bytes(digest).hex(),
        backups=backups,
    )


def volumes_of(store: IndexStore, line_ids: Collection[int]) -> dict[int, tuple[int, str]]:
    """Volume id -> (line id, volume name) for the volumes of ``line_ids``."""
    ids = sorted(line_ids)
    out: dict[int, tuple[int, str]] = {}
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for vid, line_id, volume in store.query(
            f"SELECT id, line_id, volume FROM index_volumes WHERE line_id IN ({marks})", chunk
        ):
            out[vid] = (line_id, volume)
    return out

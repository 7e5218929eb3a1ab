"""The typed records the index's queries answer with (the API and CLI render these).

Field names follow :class:`~filerestore.fs.entry.Entry` wherever they mean the same thing,
so a version of a file reads like a listing of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from filerestore.fs.entry import EntryKind


@dataclass(frozen=True, slots=True)
class BackupRef:
    """A backup as the index results name it."""

    backup_id: int
    created_at: datetime
    repository: str
    vm_name: str | None
    disk_name: str | None


@dataclass(frozen=True, slots=True)
class Version:
    """One version of an entry, and the backups (of those asked about) that hold it: the
    fields of :class:`~filerestore.fs.entry.Entry` (by the same names, in the same order)
    but its name and path, then the content hash and the backups."""

    kind: EntryKind
    size: int
    mode: int | None
    uid: int | None
    gid: int | None
    mtime_ns: int | None
    atime_ns: int | None  # as first seen: an access alone makes no new version
    ctime_ns: int | None
    btime_ns: int | None
    inode: int | None
    nlink: int | None
    target: str | None
    data_location: str | None
    hash: str | None  # BLAKE2b-128, hex, where known
    backups: tuple[BackupRef, ...]


@dataclass(frozen=True, slots=True)
class PathHit:
    """A search result: one path of one disk's volume, with its matching versions."""

    repository: str
    vm_name: str | None
    disk_name: str | None
    volume: str
    path: str
    name: str
    versions: tuple[Version, ...]


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: tuple[PathHit, ...]
    #: pass back as ``cursor`` for the next page; None when this is the last one
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """``appeared``, ``changed`` or ``vanished``, in the backup where it was first seen."""

    event: str
    backup: BackupRef


@dataclass(frozen=True, slots=True)
class PathHistory:
    volume: str
    path: str
    versions: tuple[Version, ...]  # oldest first
    events: tuple[HistoryEvent, ...]
    #: the newest backup (of those asked about) that holds the path; None if none does
    last_seen: BackupRef | None


@dataclass(frozen=True, slots=True)
class DiffEntry:
    """One path that differs between two backups: ``added``, ``removed`` or ``changed``."""

    change: str
    volume: str
    path: str
    old: Version | None
    new: Version | None
    #: the metadata fields that differ (for ``changed``)
    fields: tuple[str, ...] = ()
    #: whether the contents differ, when asked for (None: not compared, or not a file)
    content_changed: bool | None = None


@dataclass(frozen=True, slots=True)
class DiffTotals:
    added: int = 0
    removed: int = 0
    changed: int = 0
    #: bytes of files added, removed, and the size change of changed files
    bytes_added: int = 0
    bytes_removed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IndexState:
    """A backup's index state: ``none``, ``queued``, ``running``, ``done`` or ``failed``
    (``reason`` says why), with the job's progress while it runs."""

    backup_id: int
    state: str
    reason: str | None = None
    entries: int = 0
    entries_per_s: float = 0.0
    percent: float | None = None
    job_id: int | None = None
    indexed_at: datetime | None = None

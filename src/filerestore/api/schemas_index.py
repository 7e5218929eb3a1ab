"""Response models of the index routes (search, history, diff, index jobs).

Paths and names are shown as in listings (``\\xNN`` for bytes that are not UTF-8), with a
``path_query`` to pass back as the ``path`` parameter of the other routes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from filerestore.api.paths import display, path_query
from filerestore.index.jobs import JobInfo
from filerestore.index.records import (
    BackupRef,
    DiffEntry,
    DiffTotals,
    IndexState,
    PathHistory,
    PathHit,
    Version,
)


def _time(ns: int | None) -> datetime | None:
    return None if ns is None else datetime.fromtimestamp(ns / 1e9, UTC)


class BackupRefOut(BaseModel):
    backup_id: int
    created_at: datetime
    repository: str
    vm_name: str | None
    disk_name: str | None

    @classmethod
    def of(cls, b: BackupRef) -> BackupRefOut:
        return cls(
            backup_id=b.backup_id,
            created_at=b.created_at,
            repository=b.repository,
            vm_name=b.vm_name,
            disk_name=b.disk_name,
        )


class VersionOut(BaseModel):
    kind: Literal["file", "dir", "symlink", "other"]
    size: int
    mode: int | None
    uid: int | None
    gid: int | None
    mtime: datetime | None
    ctime: datetime | None
    btime: datetime | None
    inode: int | None
    nlink: int | None
    symlink_target: str | None
    data_location: str | None
    hash: str | None = Field(description="BLAKE2b-128 of the contents (hex), where known.")
    backups: list[BackupRefOut] = Field(description="The backups that hold this version.")

    @classmethod
    def of(cls, v: Version) -> VersionOut:
        return cls(
            kind=v.kind.value,
            size=v.size,
            mode=v.mode,
            uid=v.uid,
            gid=v.gid,
            mtime=_time(v.mtime_ns),
            ctime=_time(v.ctime_ns),
            btime=_time(v.btime_ns),
            inode=v.inode,
            nlink=v.nlink,
            symlink_target=None if v.target is None else display(v.target),
            data_location=v.data_location,
            hash=v.hash,
            backups=[BackupRefOut.of(b) for b in v.backups],
        )


class HitOut(BaseModel):
    repository: str
    vm_name: str | None
    disk_name: str | None
    volume: str
    path: str
    path_query: str
    name: str
    versions: list[VersionOut]

    @classmethod
    def of(cls, h: PathHit) -> HitOut:
        return cls(
            repository=h.repository,
            vm_name=h.vm_name,
            disk_name=h.disk_name,
            volume=h.volume,
            path=display(h.path),
            path_query=path_query(h.path),
            name=display(h.name),
            versions=[VersionOut.of(v) for v in h.versions],
        )


class SearchOut(BaseModel):
    hits: list[HitOut]
    next_cursor: str | None = Field(description="Pass back as `cursor` for the next page.")


class EventOut(BaseModel):
    event: Literal["appeared", "changed", "vanished"]
    backup: BackupRefOut


class HistoryOut(BaseModel):
    volume: str
    path: str
    path_query: str
    versions: list[VersionOut] = Field(description="Oldest first.")
    events: list[EventOut]
    last_seen: BackupRefOut | None

    @classmethod
    def of(cls, h: PathHistory) -> HistoryOut:
        return cls(
            volume=h.volume,
            path=display(h.path),
            path_query=path_query(h.path),
            versions=[VersionOut.of(v) for v in h.versions],
            events=[
                EventOut(event=e.event, backup=BackupRefOut.of(e.backup))  # type: ignore[arg-type]
                for e in h.events
            ],
            last_seen=None if h.last_seen is None else BackupRefOut.of(h.last_seen),
        )


def diff_line(d: DiffEntry) -> dict[str, Any]:
    """One line of a streamed diff (JSON-ready)."""
    return {
        "change": d.change,
        "volume": d.volume,
        "path": display(d.path),
        "path_query": path_query(d.path),
        "fields": list(d.fields),
        "content_changed": d.content_changed,
        "old": None if d.old is None else VersionOut.of(d.old).model_dump(mode="json"),
        "new": None if d.new is None else VersionOut.of(d.new).model_dump(mode="json"),
    }


def totals_line(t: DiffTotals) -> dict[str, Any]:
    return {
        "totals": {
            "added": t.added,
            "removed": t.removed,
            "changed": t.changed,
            "bytes_added": t.bytes_added,
            "bytes_removed": t.bytes_removed,
            "by_kind": t.by_kind,
        }
    }


class IndexStateOut(BaseModel):
    backup_id: int
    state: Literal["none", "queued", "running", "done", "failed"]
    reason: str | None
    entries: int
    entries_per_s: float
    percent: float | None
    job_id: int | None
    indexed_at: datetime | None

    @classmethod
    def of(cls, i: IndexState) -> IndexStateOut:
        return cls(
            backup_id=i.backup_id,
            state=i.state,  # type: ignore[arg-type]
            reason=i.reason,
            entries=i.entries,
            entries_per_s=i.entries_per_s,
            percent=i.percent,
            job_id=i.job_id,
            indexed_at=i.indexed_at,
        )


class IndexStateListOut(BaseModel):
    backups: list[IndexStateOut]


class JobOut(BaseModel):
    id: int
    backup_id: int | None
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    reason: str | None
    attempts: int
    entries: int
    entries_per_s: float
    percent: float | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, j: JobInfo) -> JobOut:
        return cls(
            id=j.id,
            backup_id=j.backup_id,
            state=j.state,  # type: ignore[arg-type]
            reason=j.reason,
            attempts=j.attempts,
            entries=j.entries,
            entries_per_s=j.entries_per_s,
            percent=j.percent,
            created_at=j.created_at,
            started_at=j.started_at,
            finished_at=j.finished_at,
        )


class JobListOut(BaseModel):
    jobs: list[JobOut]

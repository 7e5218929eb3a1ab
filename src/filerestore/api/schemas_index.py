"""Response models of the index routes (search, history, diff, index jobs).

A version of an entry has the fields of a listing's entry (:class:`~filerestore.api.schemas.
EntryOut`), made from the same field definitions: the same names (``mtime_ns``, ``target``,
...) and representations (times as integer nanoseconds since the epoch), plus ``hash`` and
the backups holding it. Paths and names are shown as in listings (``\\xNN`` for bytes that
are not UTF-8), with a ``path_query`` to pass back as the ``path`` parameter of the other
routes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from filerestore.api.paths import path_query
from filerestore.api.schemas import (
    ENTRY_DESCRIPTIONS,
    ENTRY_TYPES,
    PATH_QUERY,
    model,
    shown_names,
    values_of,
)
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

_BackupRef = model("BackupRef", BackupRef)


class BackupRefOut(_BackupRef):  # type: ignore[misc,valid-type]
    """A backup as the index results name it."""

    @classmethod
    def of(cls, b: BackupRef) -> BackupRefOut:
        return cls(**values_of(b))


_Version = model(
    "Version",
    Version,
    types=ENTRY_TYPES | {"backups": list[BackupRefOut]},
    descriptions=ENTRY_DESCRIPTIONS
    | {
        "atime_ns": "The access time as the version was first seen: an access alone makes "
        "no new version.",
        "hash": "BLAKE2b-128 of the contents (hex), where known.",
        "backups": "The backups that hold this version.",
    },
)


class VersionOut(_Version):  # type: ignore[misc,valid-type]
    """One version of an entry: a listing entry's fields (without its name and path, which
    the hit or history holding it gives), its hash and the backups that hold it."""

    @classmethod
    def of(cls, v: Version) -> VersionOut:
        values = values_of(v, exclude={"backups"}) | shown_names(v)
        return cls(**values, backups=[BackupRefOut.of(b) for b in v.backups])


_PathHit = model("PathHit", PathHit, types={"versions": list[VersionOut]}, path_query=PATH_QUERY)


class HitOut(_PathHit):  # type: ignore[misc,valid-type]
    """A search result: one path of one disk's volume, with its matching versions."""

    @classmethod
    def of(cls, h: PathHit) -> HitOut:
        values = values_of(h, exclude={"versions"}) | shown_names(h)
        versions = [VersionOut.of(v) for v in h.versions]
        return cls(**values, versions=versions, path_query=path_query(h.path))


class SearchOut(BaseModel):
    hits: list[HitOut]
    next_cursor: str | None = Field(description="Pass back as `cursor` for the next page.")


class EventOut(BaseModel):
    event: Literal["appeared", "changed", "vanished"]
    backup: BackupRefOut


_PathHistory = model(
    "PathHistory",
    PathHistory,
    types={
        "versions": list[VersionOut],
        "events": list[EventOut],
        "last_seen": BackupRefOut | None,
    },
    descriptions={"versions": "Oldest first."},
    path_query=PATH_QUERY,
)


class HistoryOut(_PathHistory):  # type: ignore[misc,valid-type]
    """Every version of one path across a disk's backups, and when it appeared, changed
    and vanished."""

    @classmethod
    def of(cls, h: PathHistory) -> HistoryOut:
        return cls(
            volume=h.volume,
            path=shown_names(h)["path"],
            path_query=path_query(h.path),
            versions=[VersionOut.of(v) for v in h.versions],
            events=[
                EventOut(event=e.event, backup=BackupRefOut.of(e.backup))  # type: ignore[arg-type]
                for e in h.events
            ],
            last_seen=None if h.last_seen is None else BackupRefOut.of(h.last_seen),
        )


def _version_json(v: Version | None) -> dict[str, Any] | None:
    return None if v is None else VersionOut.of(v).model_dump(mode="json")


def diff_line(d: DiffEntry) -> dict[str, Any]:
    """One line of a streamed diff (JSON-ready)."""
    return {
        "change": d.change,
        "volume": d.volume,
        "path": shown_names(d)["path"],
        "path_query": path_query(d.path),
        "fields": list(d.fields),
        "content_changed": d.content_changed,
        "old": _version_json(d.old),
        "new": _version_json(d.new),
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


_IndexState = model(
    "IndexState",
    IndexState,
    types={"state": Literal["none", "queued", "running", "done", "failed"]},
    descriptions={"reason": "Why it failed, or why its job waits (a refusal as `code: message`)."},
)


class IndexStateOut(_IndexState):  # type: ignore[misc,valid-type]
    """A backup's index state, with its job's progress while it runs."""

    @classmethod
    def of(cls, i: IndexState) -> IndexStateOut:
        return cls(**values_of(i))


class IndexStateListOut(BaseModel):
    backups: list[IndexStateOut]


_JobInfo = model(
    "IndexJob",
    JobInfo,
    exclude={"runner"},  # a host name and process id: not for every token
    types={"state": Literal["queued", "running", "done", "failed", "cancelled"]},
    descriptions={"reason": "Why it failed, or why it waits (a refusal as `code: message`)."},
)


class IndexJobOut(_JobInfo):  # type: ignore[misc,valid-type]
    """An index job and its progress."""

    @classmethod
    def of(cls, j: JobInfo) -> IndexJobOut:
        return cls(**values_of(j, exclude={"runner"}))


class IndexJobListOut(BaseModel):
    jobs: list[IndexJobOut]

"""What a restore job remembers between runs: its manifest, one record per entry.

The copy (:mod:`filerestore.restore.transfer`) numbers the entries of a selection in walk
order (``seq``; the walk of a read-only image is the same every time) and works in
batches. Before it writes a batch's files it makes their records durable as ``writing``
(:meth:`Journal.intend`), naming what it will create; after the batch it commits them as
``done`` with size and SHA-256, ``skipped`` or ``failed`` (:meth:`Journal.commit`). A run
that starts over after a crash therefore knows, for every entry, whether it is done and
verified (not copied again), in flight (a file by that name is ours: it is redone, whatever
the conflict policy) or never started (the policy decides).

The journal is a protocol: the service keeps it in the database (one transaction per
batch); tests keep it in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any, Protocol


class Status(StrEnum):
    WRITING = "writing"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Record:
    """One entry of a job's manifest."""

    seq: int
    path: str  # the guest path, printable (restore.names.printable: bytes not UTF-8 as \xNN)
    kind: str  # file, dir, symlink, hardlink, other
    status: Status
    #: where it was written, below the destination ("/"-joined name bytes); None if nowhere
    written: bytes | None = None
    size: int = 0
    sha256: str | None = None
    #: what was done about an existing entry (created, merged, renamed, replaced), or why
    #: it was skipped or failed
    note: str | None = None

    def but(self, **changes: Any) -> Record:
        # up to three per file written: built directly, not by dataclasses.replace, which
        # costs twice as much (bench/restore_jobs.py)
        if not changes.keys() <= _FIELDS:
            return replace(self, **changes)  # raises TypeError, naming the unknown field
        get = changes.get
        return Record(
            get("seq", self.seq),
            get("path", self.path),
            get("kind", self.kind),
            get("status", self.status),
            get("written", self.written),
            get("size", self.size),
            get("sha256", self.sha256),
            get("note", self.note),
        )


_FIELDS = frozenset(f.name for f in fields(Record))


@dataclass(slots=True)
class Progress:
    """Counts a job reports as it goes (and resumes from)."""

    files: int = 0  # regular files, symlinks and hard links written
    dirs: int = 0
    bytes: int = 0  # of regular files written, plus the current file's bytes so far
    skipped: int = 0
    failed: int = 0
    current_path: str | None = None


class Journal(Protocol):
    def previous(self, first: int, last: int) -> dict[int, Record]:
        """Records of entries ``first`` to ``last`` (inclusive) from earlier runs."""

    def intend(self, records: list[Record]) -> None:
        """Make ``writing`` records durable before their files are written."""

    def commit(self, records: list[Record], progress: Progress) -> bool:
        """Store the batch's final records and the progress; True when the job was asked
        to stop (cancelled)."""

    def heartbeat(self, progress: Progress) -> bool:
        """Report progress during a long batch; True when the job was asked to stop."""


class MemoryJournal:
    """A journal in a dict: for tests, and for a copy nobody needs to resume."""

    def __init__(self) -> None:
        self.records: dict[int, Record] = {}
        self.intents = 0
        self.commits = 0
        self.cancel = False

    def previous(self, first: int, last: int) -> dict[int, Record]:
        return {s: r for s, r in self.records.items() if first <= s <= last}

    def intend(self, records: list[Record]) -> None:
        self.intents += 1
        for r in records:
            self.records[r.seq] = r

    def commit(self, records: list[Record], progress: Progress) -> bool:
        self.commits += 1
        for r in records:
            self.records[r.seq] = r
        return self.cancel

    def heartbeat(self, progress: Progress) -> bool:
        return self.cancel

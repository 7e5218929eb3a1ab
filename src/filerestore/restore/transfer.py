"""A restore job's copy: a selection of guest paths into a target, resumable, with a manifest.

The entries are walked in a fixed order and numbered (``seq``); the same image gives the
same order on every run. They are handled in batches (:data:`BATCH_ENTRIES` entries or
:data:`BATCH_BYTES` of file data): the batch's records from earlier runs are read in one
call, each entry is planned (done before: nothing to do; in flight before: ours, redone
under the name it had; new: the conflict policy decides, :mod:`~filerestore.restore.conflicts`),
the files to write are declared to the journal, written, and the batch is committed (see
:mod:`~filerestore.restore.journal`). A file is ``done`` when all of its bytes were written,
its size checked on the target and its SHA-256 (of the guest's bytes, holes as zeros)
recorded.

What one entry costs when it fails is decided as in :mod:`~filerestore.restore.partial`:
an unreadable entry or a name the target refuses is recorded as failed and the rest goes
on; a full or read-only target, a lost connection or a refusal that protects the
destination stops the job.

Hard links: a file whose guest inode was already written in this job is linked to that
first copy (when the target keeps hard links). Directories are created as they are met and
get their mode, owner and times at the end, deepest first.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from filerestore.errors import FileRestoreError, ImageError
from filerestore.fs.base import Filesystem
from filerestore.fs.entry import Entry, EntryKind
from filerestore.restore.browse import dir_key
from filerestore.restore.conflicts import Policy, free_name
from filerestore.restore.file_data import CHUNK_SIZE, read_chunks
from filerestore.restore.journal import Journal, Progress, Record, Status
from filerestore.restore.names import printable
from filerestore.restore.partial import skippable, unaddressable
from filerestore.restore.targets.base import Existing, FileWrite, Meta, Target

#: large enough that a batch's end (its writes waited for, one transaction) is rare next to
#: its files: an SFTP target keeps up to 128 small files in flight
BATCH_ENTRIES = 1024
BATCH_BYTES = 64 << 20
HEARTBEAT_SECONDS = 1.0
MAX_DEPTH = 2048  # as extract.py: deeper is a corrupt, looping tree
NAME_MAX = 255
_ZEROS = bytes(CHUNK_SIZE)
#: host errors that no other entry would escape either: the job stops (and may be resumed)
FATAL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.ENOTCONN}


class Cancelled(Exception):
    """The journal said the job was asked to stop."""


@dataclass(frozen=True, slots=True)
class Item:
    seq: int
    entry: Entry
    #: the guest path of the directory it is written into; None: the destination itself
    parent: str | None
    name: str


@dataclass
class Outcome:
    cancelled: bool
    progress: Progress
    #: metadata the target could not keep ("owners: ...", "extended attributes: ...")
    unkept: list[str] = field(default_factory=list)


@dataclass
class _Planned:
    item: Item
    record: Record
    parent: tuple[bytes, ...] = ()
    name: bytes = b""
    remove_first: bool = False


def _rel(parts: tuple[bytes, ...]) -> bytes:
    return b"/".join(parts)


def _parts(written: bytes) -> tuple[bytes, ...]:
    return tuple(written.split(b"/")) if written else ()


def _link_key(entry: Entry) -> Hashable | None:
    if entry.kind is not EntryKind.FILE or (entry.nlink or 1) < 2 or entry.inode is None:
        return None
    return (entry.inode, entry.btime_ns, entry.ctime_ns, entry.size)


def walk_selection(fs: Filesystem[Any], paths: list[str]) -> Iterator[Item]:
    """The entries of a selection in the copy's order, numbered from 0.

    Each selected path is an entry written under its own name; a symbolic link, selected or
    below, is a link and is never followed (unlike a download's roots, which follow one, as
    ``tar -h`` does). The root "/" has no name, so its contents are the selection. Below a
    directory: its listing in the filesystem's order, then each subdirectory the same way.
    A listing that fails is yielded as an ``OTHER`` item carrying the error in its
    ``target`` field, so the failure is recorded in order.
    """
    seq = 0
    for path in paths:
        root = fs.stat(path, follow_symlinks=False)
        pending: list[tuple[str, int]] = []
        seen: set[Hashable] = set()
        if root.kind is EntryKind.DIR and root.path == "/":
            pending.append(("/", 0))
            seen.add(dir_key(root))
        else:
            yield Item(seq, root, None, root.name)
            seq += 1
            if root.kind is EntryKind.DIR:
                pending.append((root.path, 0))
                seen.add(dir_key(root))
        while pending:
            directory, depth = pending.pop()
            subdirs: list[tuple[str, int]] = []
            try:
                for entry in fs.list_dir(directory):
                    yield Item(seq, entry, directory, entry.name)
                    seq += 1
                    key = dir_key(entry) if entry.kind is EntryKind.DIR else None
                    if key is not None and key not in seen and depth + 1 < MAX_DEPTH:
                        seen.add(key)
                        subdirs.append((entry.path, depth + 1))
            except FileRestoreError as exc:
                if not skippable(exc):
                    raise
                failed = Entry("", directory, EntryKind.OTHER, 0, target=f"{exc.code}: {exc}")
                yield Item(seq, failed, None, "")
                seq += 1
            pending.extend(reversed(subdirs))


@dataclass(eq=False)
class Transfer:
    """One run of a job's copy (see the module docstring)."""

    fs: Filesystem[Any]
    paths: list[str]
    target: Target
    policy: Policy
    journal: Journal
    progress: Progress = field(default_factory=Progress)
    _: KW_ONLY
    batch_entries: int = BATCH_ENTRIES
    batch_bytes: int = BATCH_BYTES
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    clock: Callable[[], float] = time.monotonic
    #: guest directory path -> where it was written (None: not written, nor its contents)
    dirs: dict[str, tuple[bytes, ...] | None] = field(init=False, default_factory=lambda: {"/": ()})
    #: directories this run created: nothing of anyone else's can be in them
    fresh: set[tuple[bytes, ...]] = field(init=False, default_factory=set)
    #: directories whose metadata is set at the end, in creation order
    dir_meta: list[tuple[tuple[bytes, ...], Entry]] = field(init=False, default_factory=list)
    #: hard-link key -> (written path, sha256) of the first copy
    links: dict[Hashable, tuple[tuple[bytes, ...], str | None]] = field(
        init=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self._last_beat = self.clock()

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> Outcome:
        try:
            batch: list[Item] = []
            size = 0
            for item in walk_selection(self.fs, self.paths):
                batch.append(item)
                if item.entry.kind is EntryKind.FILE:
                    size += item.entry.size
                if len(batch) >= self.batch_entries or size >= self.batch_bytes:
                    self._batch(batch)
                    batch, size = [], 0
            if batch:
                self._batch(batch)
            self._finish_dirs()
        except Cancelled:
            return Outcome(True, self.progress, self._unkept())
        self.progress.current_path = None
        return Outcome(False, self.progress, self._unkept())

    def _unkept(self) -> list[str]:
        return sorted(getattr(self.target, "unkept", set()))

    def _batch(self, items: list[Item]) -> None:
        earlier = self.journal.previous(items[0].seq, items[-1].seq)
        final: list[Record] = []
        writes: list[_Planned] = []
        for item in items:
            planned = self._plan(item, earlier.get(item.seq))
            if planned is None:
                continue
            if planned.record.status is Status.WRITING:
                writes.append(planned)
            else:
                final.append(planned.record)
                self._count(planned.record, item.entry)
        if writes:
            self.journal.intend([p.record for p in writes])
            done = [self._write(p) for p in writes]
            failures = {f.token: f.reason for f in self.target.flush()}
            for record, planned in zip(done, writes, strict=True):
                if record.seq in failures:
                    record = record.but(status=Status.FAILED, note=failures[record.seq])
                final.append(record)
                self._count(record, planned.item.entry)
        self.progress.current_path = printable(items[-1].entry.path)
        if self.journal.commit(final, self.progress):
            raise Cancelled
        self._last_beat = self.clock()

    def _count(self, record: Record, entry: Entry) -> None:
        p = self.progress
        if record.status is Status.DONE:
            if record.kind == "dir":
                p.dirs += 1
            else:
                p.files += 1
                p.bytes += record.size
        elif record.status is Status.SKIPPED:
            p.skipped += 1
        else:
            p.failed += 1

    def _beat(self, path: str, extra: int) -> None:
        """Progress (with ``extra`` bytes of the current file) once a second; Cancelled if
        the job was asked to stop."""
        now = self.clock()
        if now - self._last_beat < self.heartbeat_seconds:
            return
        self._last_beat = now
        shown = dataclasses.replace(self.progress, current_path=printable(path))
        shown.bytes += extra
        if self.journal.heartbeat(shown):
            raise Cancelled

    # --- planning --------------------------------------------------------------------------

    def _plan(self, item: Item, earlier: Record | None) -> _Planned | None:
        entry = item.entry
        kind = "dir" if entry.kind is EntryKind.DIR else str(entry.kind)
        path = printable(entry.path)
        if not item.name:  # a listing that failed (walk_selection)
            record = Record(item.seq, path, "dir", Status.FAILED, note=entry.target)
            return _Planned(item, record)
        if earlier is not None and earlier.path != path:
            raise ImageError(
                f"the selection lists {entry.path!r} where an earlier run listed "
                f"{earlier.path!r}: the job cannot be resumed on this image"
            )
        if earlier is not None and earlier.status is not Status.WRITING:
            self._resume_done(earlier, entry)
            return None
        parent = () if item.parent is None else self.dirs.get(item.parent)
        if parent is None:
            note = "its directory was not restored"
            return _Planned(item, Record(item.seq, path, kind, Status.SKIPPED, note=note))
        base = Record(item.seq, path, kind, Status.FAILED)
        if entry.kind is EntryKind.OTHER:
            note = "a device, FIFO or socket: not restored"
            return _Planned(item, base.but(status=Status.SKIPPED, note=note))
        name = self._host_name(item.name)
        if isinstance(name, str):
            return _Planned(item, base.but(note=name))
        if earlier is not None:  # in flight when an earlier run stopped: ours, redo it
            assert earlier.written is not None
            written = _parts(earlier.written)
            record = earlier.but(status=Status.WRITING)
            return _Planned(item, record, written[:-1], written[-1], remove_first=True)
        if entry.kind is EntryKind.DIR:
            return self._plan_dir(item, base, parent, name)
        return self._plan_file(item, base, parent, name)

    def _host_name(self, text: str) -> bytes | str:
        """The name as bytes, or why it cannot be written."""
        reason = unaddressable(text)
        if reason is not None:
            return reason
        name = text.encode("utf-8", "surrogateescape")
        if len(name) > NAME_MAX:
            return f"the name is {len(name)} bytes, longer than the target's {NAME_MAX}"
        return name

    def _existing(self, parent: tuple[bytes, ...], name: bytes) -> Existing | None:
        if parent in self.fresh:
            return None  # created by this run: only what this run wrote is in it
        return self.target.lookup(parent, name)

    def _plan_dir(
        self, item: Item, base: Record, parent: tuple[bytes, ...], name: bytes
    ) -> _Planned:
        existing = self._existing(parent, name)
        note = "created"
        if existing is not None and existing.kind != "dir":
            if self.policy is Policy.SKIP:
                self.dirs[item.entry.path] = None
                note = f"a {existing.kind} by this name is in the destination"
                return _Planned(item, base.but(status=Status.SKIPPED, note=note))
            if self.policy is Policy.OVERWRITE:
                self.target.remove(parent, name)
                existing, note = None, "replaced"
            else:
                free = free_name(name, lambda n: self._taken_for_dir(parent, n))
                if free is None:
                    return _Planned(item, base.but(note="no free name to rename to"))
                existing = self.target.lookup(parent, free)
                name, note = free, "renamed"
        created = existing is None
        handle = self.target.enter(parent, name, create=created)
        assert isinstance(handle, tuple)
        if created:
            self.fresh.add(handle)
        else:
            note = "merged"
        self.dirs[item.entry.path] = handle
        if created or self.policy is Policy.OVERWRITE:
            self.dir_meta.append((handle, item.entry))
        record = base.but(status=Status.DONE, written=_rel(handle), note=note)
        return _Planned(item, record, parent, name)

    def _taken_for_dir(self, parent: tuple[bytes, ...], name: bytes) -> bool:
        found = self.target.lookup(parent, name)
        return found is not None and found.kind != "dir"  # an earlier rename: merge into it

    def _plan_file(
        self, item: Item, base: Record, parent: tuple[bytes, ...], name: bytes
    ) -> _Planned:
        existing = self._existing(parent, name)
        remove, note = False, "created"
        if existing is not None:
            if self.policy is Policy.SKIP:
                note = f"a {existing.kind} by this name is in the destination"
                return _Planned(item, base.but(status=Status.SKIPPED, note=note))
            if self.policy is Policy.OVERWRITE:
                if existing.kind == "dir":
                    note = "a directory by this name is in the destination (never removed)"
                    return _Planned(item, base.but(note=note))
                remove, note = True, "replaced"
            else:
                free = free_name(name, lambda n: self.target.lookup(parent, n) is not None)
                if free is None:
                    return _Planned(item, base.but(note="no free name to rename to"))
                name, note = free, "renamed"
        written = _rel((*parent, name))
        record = base.but(status=Status.WRITING, written=written, note=note)
        return _Planned(item, record, parent, name, remove_first=remove)

    def _resume_done(self, earlier: Record, entry: Entry) -> None:
        """Rebuild what later entries need from a record an earlier run finished."""
        written = None if earlier.written is None else _parts(earlier.written)
        if earlier.kind == "dir":
            ok = earlier.status is Status.DONE and written is not None
            self.dirs[entry.path] = written if ok else None
            if (
                ok
                and written is not None
                and (earlier.note != "merged" or self.policy is Policy.OVERWRITE)
            ):
                self.dir_meta.append((written, entry))
            return
        key = _link_key(entry)
        if earlier.status is Status.DONE and written is not None and key is not None:
            self.links.setdefault(key, (written, earlier.sha256))

    # --- writing ---------------------------------------------------------------------------

    def _write(self, planned: _Planned) -> Record:
        """Write one planned entry; its final record (a write still in flight is ``done``
        unless the target's flush reports it)."""
        entry, record = planned.item.entry, planned.record
        self.progress.current_path = printable(entry.path)
        try:
            if planned.remove_first:
                self._remove(planned.parent, planned.name)
            if entry.kind is EntryKind.SYMLINK:
                return self._symlink(planned)
            key = _link_key(entry)
            first = self.links.get(key) if key is not None else None
            if first is not None and self.target.capabilities.hardlinks:
                self.target.hardlink(first[0][:-1], first[0][-1], planned.parent, planned.name)
                return record.but(
                    status=Status.DONE, kind="hardlink", size=entry.size, sha256=first[1]
                )
            digest = self._file(planned)
            if key is not None:
                self.links[key] = ((*planned.parent, planned.name), digest)
            return record.but(status=Status.DONE, size=entry.size, sha256=digest)
        except FileRestoreError as exc:
            if not skippable(exc):
                raise
            return record.but(status=Status.FAILED, note=f"{exc.code}: {exc}")
        except OSError as exc:
            if exc.errno in FATAL_ERRNOS:
                raise
            return record.but(status=Status.FAILED, note=f"the target refused it: {exc.strerror}")

    def _remove(self, parent: tuple[bytes, ...], name: bytes) -> None:
        existing = self.target.lookup(parent, name)
        if existing is None:
            return
        if existing.kind == "dir":
            raise OSError(errno.EISDIR, "a directory by this name is in the destination")
        self.target.remove(parent, name)

    def _meta(self, entry: Entry) -> Meta:
        xattrs = self.fs.xattrs(entry.path) if self.target.capabilities.xattrs else {}
        return Meta.of(entry, xattrs)

    def _symlink(self, planned: _Planned) -> Record:
        entry = planned.item.entry
        text = entry.target if entry.target is not None else self.fs.read_link(entry.path)
        target = text.encode("utf-8", "surrogateescape")
        if not target or b"\x00" in target:
            note = "the symlink target is empty or holds a NUL byte"
            return planned.record.but(status=Status.FAILED, note=note)
        self.target.symlink(planned.parent, planned.name, target, self._meta(entry))
        return planned.record.but(status=Status.DONE, size=0)

    def _file(self, planned: _Planned) -> str:
        entry = planned.item.entry
        reader = self.fs.open(entry.path)  # a file that cannot be opened is never created
        meta = self._meta(entry)
        size = reader.size
        ranges = list(reader.data_ranges())
        if 0 < size <= CHUNK_SIZE and ranges == [(0, size)]:
            # a small file without holes (most of them): read, hashed and written whole
            (data,) = read_chunks(reader, entry.path, 0, size)
            file = FileWrite(size, ((0, data),), meta, planned.record.seq)
            self.target.write_file(planned.parent, planned.name, file)
            return hashlib.sha256(data).hexdigest()
        digest = hashlib.sha256()
        chunks = self._chunks(reader, entry.path, ranges, digest)
        file = FileWrite(size, chunks, meta, planned.record.seq)
        self.target.write_file(planned.parent, planned.name, file)
        return digest.hexdigest()

    def _chunks(
        self, reader: Any, path: str, ranges: list[tuple[int, int]], digest: Any
    ) -> Iterator[tuple[int, bytes]]:
        """The file's data (``ranges``: its data ranges) as (offset, bytes), holes and
        all-zero chunks left out; every byte (zeros too) goes into ``digest``, so it is the
        SHA-256 of the whole file."""
        pos = 0
        for start, length in ranges:
            _hash_zeros(digest, start - pos)
            offset = start
            for chunk in read_chunks(reader, path, start, start + length):
                digest.update(chunk)
                if not (len(chunk) == CHUNK_SIZE and chunk == _ZEROS):
                    yield offset, chunk
                offset += len(chunk)
                self._beat(path, offset)
            pos = start + length
        _hash_zeros(digest, reader.size - pos)

    # --- the end ---------------------------------------------------------------------------

    def _finish_dirs(self) -> None:
        """Directory metadata, deepest first, so writing into them no longer changes it."""
        for handle, entry in sorted(self.dir_meta, key=lambda d: len(d[0]), reverse=True):
            self.target.set_dir_meta(handle, self._meta(entry))
        failures = self.target.flush()
        if failures:  # a late failure of a directory's metadata: say so, the files are there
            unkept = getattr(self.target, "unkept", None)
            if isinstance(unkept, set):
                unkept.update(f"directory metadata: {f.reason}" for f in failures)


def _hash_zeros(digest: Any, count: int) -> None:
    while count > 0:
        step = min(count, CHUNK_SIZE)
        digest.update(_ZEROS[:step] if step < CHUNK_SIZE else _ZEROS)
        count -= step

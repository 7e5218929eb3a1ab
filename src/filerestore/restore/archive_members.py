"""What goes into an archive, in order: members with clean relative names, and their bytes.

Shared by the ZIP and TAR writers. Each root is placed under its own name (duplicates get
`` (2)``...). Below a root the order is depth-first with each directory's whole subtree right
after it, as ``tar -c`` writes it: GNU tar sets a directory's time once it meets a member
outside that directory, so a subtree split up would leave directory times wrong after
extraction. Symlinks are stored as symlinks (never followed); a directory met twice (hard-
linked directories on a corrupt image) is descended once. Devices, FIFOs and sockets are
left out: archives hold only files, directories and symlinks. A hard-linked file is stored
once per name, each time with its full contents.

One entry that cannot be read does not cost the archive (see
:mod:`~filerestore.restore.partial`): a directory whose listing fails, a symlink whose
target no host can hold (empty, or with a NUL byte), and a file that fails before its first
chunk is read are left out and recorded in ``failures``; once the last member is out, the
failures are listed in a last member, ``FILERESTORE-ERRORS.txt`` at the top level. A file's
first chunk is read before its header is written, so only a read that fails later, after
the header went out, cuts the whole archive short (ArchiveAbortedError).

Memory: the set of directories seen, and for each open directory level its listing and the
names written so far; never a file's contents (one chunk) and never a list of all entries.
"""

from __future__ import annotations

import itertools
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from filerestore.errors import ArchiveAbortedError, ArchiveTooLargeError, FileRestoreError
from filerestore.fs.base import Filesystem
from filerestore.fs.entry import Entry, EntryKind
from filerestore.restore.browse import Root, dir_key
from filerestore.restore.file_data import CHUNK_SIZE, read_chunks
from filerestore.restore.names import ROOT_NAME, unique
from filerestore.restore.partial import (
    ERRORS_FILE,
    Failure,
    errors_text,
    failure,
    skippable,
    unaddressable,
)

# A ZIP keeps about 0.75 KiB per member until its central directory is written (measured:
# 88 MB for 100,000 members); 250,000 keeps a worker near 200 MB. TAR needs no such memory.
DEFAULT_MAX_ENTRIES = 250_000
MAX_DEPTH = 2048  # directory levels below a root; deeper means a corrupt, looping tree
STRIPPED_MODE_BITS = 0o7000  # setuid, setgid, sticky: never written into an archive
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Member:
    """One archive entry: its relative ``/``-separated name and the guest entry behind it."""

    name: str
    entry: Entry
    #: the contents of a member that is not in the guest (the list of failures)
    data: bytes | None = None

    @property
    def permissions(self) -> int:
        perms = self.entry.permissions
        if perms is None:
            perms = 0o755 if self.entry.kind is EntryKind.DIR else 0o644
        return perms & ~STRIPPED_MODE_BITS & 0o777


def iter_members(
    fs: Filesystem[Any],
    roots: Sequence[Root],
    component: Callable[[str], str],
    max_entries: int | None = DEFAULT_MAX_ENTRIES,
    failures: list[Failure] | None = None,
) -> Iterator[Member]:
    """Members for ``roots`` in archive order; ``component`` cleans one name component.

    Entries left out are appended to ``failures`` (by this function, and by the writer
    through :func:`member_chunks`); after the last member, a list of them follows."""
    failures = [] if failures is None else failures
    count = 0
    top: set[str] = set()
    for root in roots:
        for member in _root_members(fs, root, component, top, failures):
            count += 1
            if max_entries is not None and count > max_entries:
                raise ArchiveTooLargeError(
                    f"the download holds more than {max_entries} entries (the limit)"
                )
            yield member
    if failures:
        yield errors_member(unique(ERRORS_FILE, top, False), failures)


def errors_member(name: str, failures: list[Failure]) -> Member:
    data = errors_text(failures)
    now = time.time_ns()
    entry = Entry(name, "", EntryKind.FILE, len(data), stat.S_IFREG | 0o644, mtime_ns=now)
    return Member(name, entry, data)


def _root_members(
    fs: Filesystem[Any],
    root: Root,
    component: Callable[[str], str],
    top: set[str],
    failures: list[Failure],
) -> Iterator[Member]:
    entry = root.entry
    if entry.kind is EntryKind.OTHER or not _storable(entry, failures):
        return
    is_dir = entry.kind is EntryKind.DIR
    name = unique(component(root.name) if root.name else ROOT_NAME, top, is_dir)
    yield Member(name, entry)
    if not is_dir:
        return
    seen = {dir_key(entry)}
    # (archive name, remaining children, names taken among them) per open directory
    stack: list[tuple[str, Iterator[Entry], set[str]]] = [
        (name, _children(fs, entry, failures), set())
    ]
    while stack:
        parent, children, taken = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        if child.kind is EntryKind.OTHER or not _storable(child, failures):
            continue
        child_is_dir = child.kind is EntryKind.DIR
        child_name = f"{parent}/{unique(component(child.name), taken, child_is_dir)}"
        yield Member(child_name, child)
        if not child_is_dir:
            continue
        key = dir_key(child)
        if key in seen:  # a hard-linked directory (corrupt image): listed, not descended
            continue
        seen.add(key)
        if len(stack) >= MAX_DEPTH:
            raise ArchiveAbortedError(f"{child.path} is nested deeper than {MAX_DEPTH} levels")
        stack.append((child_name, _children(fs, child, failures), set()))


def _children(fs: Filesystem[Any], directory: Entry, failures: list[Failure]) -> Iterator[Entry]:
    """A directory's entries; a listing that fails is recorded and ends just that listing."""
    try:
        yield from fs.list_dir(directory.path)
    except FileRestoreError as exc:
        if not skippable(exc):
            raise
        failures.append(failure(directory.path, exc))


def _storable(entry: Entry, failures: list[Failure]) -> bool:
    """False (and recorded) for an entry no path reaches, and for a symlink whose target no
    extractor could create."""
    reason = unaddressable(entry.name) if entry.path != "/" else None
    unwritable = not entry.target or "\x00" in entry.target
    if reason is None and entry.kind is EntryKind.SYMLINK and unwritable:
        reason = "the symlink target is empty or holds a NUL byte"
    if reason is None:
        return True
    failures.append(Failure(entry.path, reason))
    return False


def member_chunks(
    fs: Filesystem[Any],
    member: Member,
    failures: list[Failure],
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[bytes] | None:
    """A file member's bytes, exactly ``member.entry.size`` of them; None (and the failure
    recorded) when the file cannot be read, which is known before the member's header is
    written. A read failing later raises ArchiveAbortedError from the iterator: a member
    shorter or longer than its header says, or silently zero-filled, would be a wrong
    restore nobody notices.
    """
    if member.data is not None:
        return iter((member.data,))
    path = member.entry.path
    expected = member.entry.size

    def read() -> Iterator[bytes]:
        reader = fs.open(path)
        if reader.size != expected:
            raise ArchiveAbortedError(
                f"{path} is {reader.size} bytes when read but {expected} when listed"
            )
        return primed(read_chunks(reader, path, chunk_size=chunk_size))

    chunks = unless_skipped(path, failures, read)
    return None if chunks is None else rest_chunks(path, expected, chunks)


def unless_skipped(path: str, failures: list[Failure], attempt: Callable[[], T]) -> T | None:
    """``attempt()``; None, the failure recorded, when it fails in a way that costs only
    the entry at ``path`` (see :mod:`~filerestore.restore.partial`)."""
    try:
        return attempt()
    except FileRestoreError as exc:
        if not skippable(exc):
            raise
        failures.append(failure(path, exc))
        return None


def primed(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """``chunks`` with the first one read now (before a member's header is written)."""
    first = next(chunks, b"")
    return itertools.chain((first,), chunks)


def rest_chunks(path: str, expected: int, chunks: Iterator[bytes]) -> Iterator[bytes]:
    done = 0
    try:
        for chunk in chunks:
            done += len(chunk)
            yield chunk
    except (FileRestoreError, OSError) as exc:
        raise ArchiveAbortedError(
            f"reading {path} failed after {done} of {expected} bytes, the archive is "
            f"incomplete and must be discarded: {exc}"
        ) from exc

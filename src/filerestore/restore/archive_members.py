"""What goes into an archive, in order: members with clean relative names, and their bytes.

Shared by the ZIP and TAR writers. Each root is placed under its own name (duplicates get
`` (2)``...). Below a root the order is depth-first with each directory's whole subtree right
after it, as ``tar -c`` writes it: GNU tar sets a directory's time once it meets a member
outside that directory, so a subtree split up would leave directory times wrong after
extraction. Symlinks are stored as symlinks (never followed); a directory met twice (hard-
linked directories on a corrupt image) is descended once. Devices, FIFOs and sockets are
left out: archives hold only files, directories and symlinks. A hard-linked file is stored
once per name, each time with its full contents.

Memory: the set of directories seen, and for each open directory level its listing and the
names written so far; never a file's contents and never a list of all entries.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from filerestore.errors import ArchiveAbortedError, ArchiveTooLargeError, FileRestoreError
from filerestore.fs.base import Filesystem
from filerestore.fs.entry import Entry, EntryKind
from filerestore.restore.browse import Root
from filerestore.restore.file_data import CHUNK_SIZE
from filerestore.restore.names import ROOT_NAME, unique

# A ZIP keeps about 0.75 KiB per member until its central directory is written (measured:
# 88 MB for 100,000 members); 250,000 keeps a worker near 200 MB. TAR needs no such memory.
DEFAULT_MAX_ENTRIES = 250_000
MAX_DEPTH = 2048  # directory levels below a root; deeper means a corrupt, looping tree
STRIPPED_MODE_BITS = 0o7000  # setuid, setgid, sticky: never written into an archive


@dataclass(frozen=True, slots=True)
class Member:
    """One archive entry: its relative ``/``-separated name and the guest entry behind it."""

    name: str
    entry: Entry

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
) -> Iterator[Member]:
    """Members for ``roots`` in archive order; ``component`` cleans one name component."""
    count = 0
    top: set[str] = set()
    for root in roots:
        for member in _root_members(fs, root, component, top):
            count += 1
            if max_entries is not None and count > max_entries:
                raise ArchiveTooLargeError(
                    f"the download holds more than {max_entries} entries (the limit)"
                )
            yield member


def _root_members(
    fs: Filesystem[Any], root: Root, component: Callable[[str], str], top: set[str]
) -> Iterator[Member]:
    entry = root.entry
    if entry.kind is EntryKind.OTHER:
        return
    is_dir = entry.kind is EntryKind.DIR
    name = unique(component(root.name) if root.name else ROOT_NAME, top, is_dir)
    yield Member(name, entry)
    if not is_dir:
        return
    seen = {_dir_key(entry)}
    # (archive name, remaining children, names taken among them) per open directory
    stack: list[tuple[str, Iterator[Entry], set[str]]] = [(name, fs.list_dir(entry.path), set())]
    while stack:
        parent, children, taken = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        if child.kind is EntryKind.OTHER:
            continue
        child_is_dir = child.kind is EntryKind.DIR
        child_name = f"{parent}/{unique(component(child.name), taken, child_is_dir)}"
        yield Member(child_name, child)
        if not child_is_dir:
            continue
        key = _dir_key(child)
        if key in seen:  # a hard-linked directory (corrupt image): listed, not descended
            continue
        seen.add(key)
        if len(stack) >= MAX_DEPTH:
            raise ArchiveAbortedError(f"{child.path} is nested deeper than {MAX_DEPTH} levels")
        stack.append((child_name, fs.list_dir(child.path), set()))


def _dir_key(entry: Entry) -> Hashable:
    """What tells two directories apart. The inode number alone is not enough (each Btrfs
    subvolume numbers its own inodes), so the times go with it; without an inode number the
    path stands in and only the depth limit guards against loops."""
    if entry.inode is None:
        return entry.path
    return (entry.inode, entry.btime_ns, entry.ctime_ns, entry.mtime_ns)


def member_chunks(
    fs: Filesystem[Any], member: Member, chunk_size: int = CHUNK_SIZE
) -> Iterator[bytes]:
    """A file member's bytes, exactly ``member.entry.size`` of them, or ArchiveAbortedError.

    A failed or short read ends the whole stream: a member shorter or longer than its
    header says, or silently zero-filled, would be a wrong restore nobody notices.
    """
    path = member.entry.path
    expected = member.entry.size
    done = 0
    try:
        reader = fs.open(path)
        if reader.size != expected:
            raise ArchiveAbortedError(
                f"{path} is {reader.size} bytes when read but {expected} when listed"
            )
        while done < expected:
            want = min(chunk_size, expected - done)
            data = reader.read_at(done, want)
            if len(data) != want:
                raise ArchiveAbortedError(f"short read of {path} at byte {done}")
            done += want
            yield data
    except ArchiveAbortedError:
        raise
    except (FileRestoreError, OSError) as exc:
        raise ArchiveAbortedError(
            f"reading {path} failed after {done} of {expected} bytes, the archive is "
            f"incomplete and must be discarded: {exc}"
        ) from exc

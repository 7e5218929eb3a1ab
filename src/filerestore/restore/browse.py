"""Browsing a guest filesystem for the adapters: paged listings, walks, file info, totals.

Paged listing without materialising a directory per request
------------------------------------------------------------
A page needs the directory's order, and an order needs every entry's sort key once. The
first request for a (directory, order) reads the listing once, sorts ``(key, name)`` pairs,
and keeps only the sorted names (the strings are the ones the filesystem's directory cache
already holds) in a small per-filesystem cache. Each page is then a slice of that order and
one ``stat`` per entry on the page: a page of 1,000 from a 100,000-entry directory builds
1,000 Entry objects, not 100,000. A cache miss (first page, or a cursor brought to another
worker process) costs one pass over the directory; the order is deterministic, so a cursor
stays valid across processes. Names sort by ``casefold()``, then by the exact name;
directories first unless ``dirs_first=False``; ``descending`` reverses within each group.

Recursive listings (:func:`walk_page`) follow the filesystem's walk order (parents before
children, symlinks never followed, each directory descended once). A cursor there is a
position in that order, so page ``k`` re-walks the first ``k - 1`` pages without keeping
them: cap recursive listings with ``max_depth``.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from filerestore.errors import (
    InvalidParameterError,
    NotADirectoryError_,
    PathNotFoundError,
    StaleCursorError,
    SymlinkLoopError,
)
from filerestore.fs.base import Filesystem
from filerestore.fs.entry import Entry, EntryKind
from filerestore.restore.cursor import Cursor, decode, digest
from filerestore.restore.file_data import OpenFile, iter_file, open_file, read_range
from filerestore.restore.listing_order import SortKey, sort_entries, sort_names

__all__ = [
    "OpenFile",
    "Page",
    "SortKey",
    "Totals",
    "dir_totals",
    "file_info",
    "iter_file",
    "list_page",
    "open_file",
    "read_range",
    "resolve_root",
    "sort_entries",
    "walk",
    "walk_page",
]

DEFAULT_PAGE_LIMIT = 1000
MAX_PAGE_LIMIT = 10_000
DEFAULT_WALK_DEPTH = 16
MAX_WALK_DEPTH = 256
DEFAULT_TOTALS_CAP = 1_000_000  # entries counted before dir_totals stops and says so
ORDERS_PER_FILESYSTEM = 8  # sorted directory orders kept per open filesystem


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing. ``total`` is None where it is not known without a full walk."""

    entries: list[Entry]
    next_cursor: str | None
    total: int | None


@dataclass(frozen=True, slots=True)
class Totals:
    """What a download of some paths would hold; ``complete`` is False when the cap stopped
    the count (the figures are then lower bounds)."""

    files: int
    dirs: int
    symlinks: int
    bytes: int
    skipped: int  # devices, FIFOs, sockets: listed, never archived
    complete: bool

    @property
    def entries(self) -> int:
        return self.files + self.dirs + self.symlinks


def file_info(fs: Filesystem[Any], path: str, follow_symlinks: bool = False) -> Entry:
    """Full metadata of one entry (a symlink itself unless ``follow_symlinks``)."""
    return fs.stat(path, follow_symlinks=follow_symlinks)


def _directory(fs: Filesystem[Any], path: str) -> Entry:
    entry = fs.stat(path, follow_symlinks=True)
    if entry.kind is not EntryKind.DIR:
        raise NotADirectoryError_(f"not a directory: {entry.path}")
    return entry


def _identity(directory: Entry) -> str:
    return digest(directory.path, directory.inode, directory.mtime_ns, directory.ctime_ns)


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise InvalidParameterError(f"limit must be between 1 and {MAX_PAGE_LIMIT}, not {limit}")


# --- sorted directory orders, cached per filesystem --------------------------------------

_orders: weakref.WeakKeyDictionary[Filesystem[Any], OrderedDict[tuple[object, ...], list[str]]]
_orders = weakref.WeakKeyDictionary()
_orders_lock = threading.Lock()


def _build_order(
    fs: Filesystem[Any], directory: Entry, sort: SortKey, descending: bool, dirs_first: bool
) -> list[str]:
    if sort is SortKey.NAME:  # names and kinds are enough (fs/named_dirs.py)
        _, named = fs.list_names(directory.path)
        return sort_names(named, descending, dirs_first)
    ordered = sort_entries(fs.list_dir(directory.path), sort, descending, dirs_first)
    return [entry.name for entry in ordered]


def _order(
    fs: Filesystem[Any], directory: Entry, sort: SortKey, descending: bool, dirs_first: bool
) -> list[str]:
    key = (_identity(directory), sort, descending, dirs_first)
    with _orders_lock:
        per_fs = _orders.setdefault(fs, OrderedDict())
        found = per_fs.get(key)
        if found is not None:
            per_fs.move_to_end(key)
            return found
    names = _build_order(fs, directory, sort, descending, dirs_first)
    with _orders_lock:
        per_fs = _orders.setdefault(fs, OrderedDict())
        per_fs[key] = names
        while len(per_fs) > ORDERS_PER_FILESYSTEM:
            per_fs.popitem(last=False)
    return names


# --- listings ------------------------------------------------------------------------------


def list_page(
    fs: Filesystem[Any],
    path: str = "/",
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE_LIMIT,
    sort: SortKey | str = SortKey.NAME,
    descending: bool = False,
    dirs_first: bool = True,
) -> Page:
    """One page of a directory's entries (symlinked directories followed), in a stable order."""
    _check_limit(limit)
    try:
        sort = SortKey(sort)
    except ValueError:
        choices = ", ".join(k.value for k in SortKey)
        raise InvalidParameterError(f"unknown sort {sort!r}; choose one of {choices}") from None
    directory = _directory(fs, path)
    listing = digest("list", directory.path, sort.value, descending, dirs_first)
    identity = _identity(directory)
    order = _order(fs, directory, sort, descending, dirs_first)
    start = 0
    if cursor is not None:
        parsed = decode(cursor)
        parsed.check(listing, identity)
        start = parsed.index
        if start > len(order) or digest(order[start - 1]) != parsed.last:
            raise StaleCursorError("the directory's order changed since the cursor was issued")
    names = order[start : start + limit]
    try:
        entries = fs.stat_children(directory.path, names)
    except PathNotFoundError as exc:
        raise StaleCursorError(f"an entry vanished from {directory.path}; list it again") from exc
    end = start + len(names)
    next_cursor = None
    if end < len(order):
        next_cursor = Cursor(listing, identity, end, digest(order[end - 1])).encode()
    return Page(entries, next_cursor, len(order))


def walk(
    fs: Filesystem[Any], path: str = "/", max_depth: int = DEFAULT_WALK_DEPTH
) -> Iterator[Entry]:
    """Every entry below ``path`` down to ``max_depth`` levels (1: the directory's own
    entries), parents before children; symlinks are reported, never followed, and a
    directory reached twice (hard-linked directories on a corrupt image) is descended once.
    """
    if not 1 <= max_depth <= MAX_WALK_DEPTH:
        raise InvalidParameterError(
            f"depth must be between 1 and {MAX_WALK_DEPTH}, not {max_depth}"
        )
    directory = _directory(fs, path)
    return fs.walk(directory.path, max_depth=max_depth)


def walk_page(
    fs: Filesystem[Any],
    path: str = "/",
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE_LIMIT,
    max_depth: int = DEFAULT_WALK_DEPTH,
) -> Page:
    """One page of a recursive listing (see :func:`walk`); ``total`` is None."""
    _check_limit(limit)
    directory = _directory(fs, path)
    entries = walk(fs, directory.path, max_depth)
    listing = digest("walk", directory.path, max_depth)
    identity = _identity(directory)
    start = 0
    if cursor is not None:
        parsed = decode(cursor)
        parsed.check(listing, identity)
        start = parsed.index
        last: Entry | None = None
        for skipped in islice(entries, start):
            last = skipped
        if last is None or digest(last.path) != parsed.last:
            raise StaleCursorError("the tree's order changed since the cursor was issued")
    page = list(islice(entries, limit))
    next_cursor = None
    if page and next(entries, None) is not None:
        end = start + len(page)
        next_cursor = Cursor(listing, identity, end, digest(page[-1].path)).encode()
    return Page(page, next_cursor, None)


# --- roots of downloads, and their totals ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Root:
    """A path chosen for a download: ``name`` as the user chose it, ``entry`` what it is."""

    name: str
    entry: Entry


def dir_key(entry: Entry) -> Hashable:
    """What tells two directories apart in a walk of a tree. The inode number alone is not
    enough (each Btrfs subvolume numbers its own inodes), so the times go with it; without
    an inode number the path stands in and only a depth limit guards against loops."""
    if entry.inode is None:
        return entry.path
    return (entry.inode, entry.btime_ns, entry.ctime_ns, entry.mtime_ns)


def resolve_root(fs: Filesystem[Any], path: str) -> Root:
    """A download root: a symlink given as a root is followed (like ``tar -h`` does for its
    arguments, and like the listing that showed it); a dangling or looping one is kept as a
    symlink. Symlinks below a root are never followed."""
    own = fs.stat(path, follow_symlinks=False)
    entry = own
    if own.kind is EntryKind.SYMLINK:
        try:
            entry = fs.stat(path, follow_symlinks=True)
        except (PathNotFoundError, SymlinkLoopError, NotADirectoryError_):
            entry = own
    return Root(own.name, entry)


def dir_totals(fs: Filesystem[Any], paths: Sequence[str], cap: int = DEFAULT_TOTALS_CAP) -> Totals:
    """Files, directories, symlinks and bytes a download of ``paths`` would hold (the roots
    included), for progress. Stops after ``cap`` entries with ``complete=False``."""
    if cap < 1:
        raise InvalidParameterError(f"cap must be positive, not {cap}")
    counts = {EntryKind.FILE: 0, EntryKind.DIR: 0, EntryKind.SYMLINK: 0, EntryKind.OTHER: 0}
    size = 0
    seen = 0
    roots = [resolve_root(fs, p) for p in paths]
    for root in roots:
        below = fs.walk(root.entry.path) if root.entry.kind is EntryKind.DIR else iter(())
        for entry in _chain_one(root.entry, below):
            if seen >= cap:
                return Totals(*_figures(counts), size, counts[EntryKind.OTHER], False)
            counts[entry.kind] += 1
            if entry.kind is EntryKind.FILE:
                size += entry.size
            if entry.kind is not EntryKind.OTHER:
                seen += 1
    return Totals(*_figures(counts), size, counts[EntryKind.OTHER], True)


def _chain_one(first: Entry, rest: Iterator[Entry]) -> Iterator[Entry]:
    yield first
    yield from rest


def _figures(counts: dict[EntryKind, int]) -> tuple[int, int, int]:
    return counts[EntryKind.FILE], counts[EntryKind.DIR], counts[EntryKind.SYMLINK]

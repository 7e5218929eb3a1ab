"""Filesystem harnesses: a small real image, damaged, then opened, listed, stat'ed and read.

One harness per format (ext, XFS, NTFS, FAT, exFAT, Btrfs). The input is damage to one of
the format's seed images (:mod:`fuzz.patches`); the image is opened through the registry
(:func:`filerestore.fs.open_filesystem`, detection included) over a
:class:`~filerestore.blockio.CachedReader`, as a restore stack opens a volume. Then the
harness pages the root and its first directories as the browse page does (names and kinds,
then a page's entries: ``list_names``, ``stat_children``), walks three levels (at most 300
entries), and per entry stats it, stats it again by its path, reads a symlink's target and
follows it, and reads each regular file at its start, its middle and its end. Last, the
incremental index pass's comparison of two states runs with the damaged image as the new
state and its seed as the old one (:func:`compare_with`).

Opening may only fail with an ImageError. Per entry, the resolver's refusals are expected too
(a corrupt directory can hold two entries of one name, or a loop of symlinks): such an
error ends that entry, and the walk goes on. Every read must return exactly the bytes the
``read_at`` contract promises.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from filerestore.blockio import CachedReader, FileReader, Reader
from filerestore.errors import (
    FileRestoreError,
    ImageError,
    IsADirectoryError_,
    NotADirectoryError_,
    NotASymlinkError,
    NotFoundError,
    RequestRefusedError,
)
from filerestore.fs import open_filesystem
from filerestore.fs.base import Filesystem
from filerestore.fs.entry import EntryKind
from filerestore.index.fat_reread import FatReread
from fuzz import checksums
from fuzz.checksums import Fixup
from fuzz.harness import Finding, Harness, OneInput, require
from fuzz.patches import PatchedReader, decode, make_seed
from tests.imagebuild import fuzz_seeds as seeds

OPEN_ERRORS: tuple[type[FileRestoreError], ...] = (ImageError,)
ENTRY_ERRORS: tuple[type[FileRestoreError], ...] = (
    ImageError,
    NotFoundError,
    RequestRefusedError,
    NotADirectoryError_,
    IsADirectoryError_,
    NotASymlinkError,
)
MAX_ENTRIES = 300
MAX_DEPTH = 3
PAGE = 20  # entries of a browse page looked up
PAGED_DIRS = 5  # directories of the root paged before the walk
READ = 64 * 1024


def _read_checked(reader: Reader, offset: int, length: int) -> None:
    data = reader.read_at(offset, length)
    want = max(0, min(length, reader.size - offset))
    require(len(data) == want, f"read_at({offset}, {length}) of {reader.size} gave {len(data)}")


def _read_file(fs: Filesystem[Any], path: str) -> None:
    reader = fs.open(path)
    size = reader.size
    require(size >= 0, f"negative size {size}")
    _read_checked(reader, 0, READ)
    if size > READ:
        _read_checked(reader, size // 2, 4096)
        _read_checked(reader, size - 4096, 8192)


T = TypeVar("T")


def _per_entry(what: Callable[[], T]) -> T | None:
    """``what()``; None when it refused, as it may, with a one-line reason."""
    try:
        return what()
    except ENTRY_ERRORS as exc:
        reason = str(exc)
        if not reason.strip() or "\n" in reason:
            raise Finding(f"{type(exc).__name__} without a one-line reason: {reason!r}") from exc
    return None


def _page(fs: Filesystem[Any], path: str) -> list[tuple[str, bool]]:
    """A browse page's way in: names and kinds, then the first names' entries."""
    _, named = fs.list_names(path)
    names = [name for name, _ in named[:PAGE]]
    entries = fs.stat_children(path, names)
    require([e.name for e in entries] == names, f"stat_children of {path!r} renamed entries")
    return named


def explore(fs: Filesystem[Any]) -> None:
    """Walk, stat and read the first entries of ``fs`` (see the module docstring)."""
    root = fs.stat("/")
    require(root.kind is EntryKind.DIR, f"the root is a {root.kind}")
    # pages first: a directory the walk has listed whole is paged from that listing
    named: list[tuple[str, bool]] = []
    _per_entry(lambda: named.extend(_page(fs, "/")))
    for name in [n for n, is_dir in named if is_dir][:PAGED_DIRS]:
        _per_entry(lambda n=name: _page(fs, f"/{n}"))  # type: ignore[misc]
    for entry in islice(fs.walk("/", max_depth=MAX_DEPTH), MAX_ENTRIES):
        require(entry.path.startswith("/") and entry.name != "", f"entry path {entry.path!r}")
        _per_entry(lambda e=entry: fs.stat(e.path))  # type: ignore[misc]
        if entry.kind is EntryKind.FILE:
            _per_entry(lambda e=entry: _read_file(fs, e.path))  # type: ignore[misc]
        elif entry.kind is EntryKind.SYMLINK:
            _per_entry(lambda e=entry: fs.read_link(e.path))  # type: ignore[misc]
            _per_entry(lambda e=entry: fs.stat(e.path, follow_symlinks=True))  # type: ignore[misc]
        elif entry.kind is EntryKind.DIR:
            _per_entry(lambda e=entry: list(islice(fs.list_dir(e.path), 50)))  # type: ignore[misc]


def compare_with(fs: Filesystem[Any], seed: Reader) -> None:
    """The changed-block pass's readers (filerestore.index.changed.find_changes: changed
    inodes, MFT records, Btrfs tree items, or FAT and exFAT directory slots) on the damaged
    image as the new state and its seed as the old one, over the whole volume: they may
    answer, answer None (walk instead) or refuse with an ImageError."""
    from filerestore.index.changed import find_changes

    try:
        old = open_filesystem(CachedReader(seed))
    except FileRestoreError:
        return
    try:
        if type(old) is type(fs):
            found = _per_entry(lambda: find_changes(fs, old, [(0, seed.size)]))
            for _, reread in found or []:
                if isinstance(reread, FatReread):
                    _slots(fs, reread)
    finally:
        old.close()


def _slots(fs: Filesystem[Any], reread: FatReread) -> None:
    """FAT and exFAT: the comparison of each directory the walk reaches (its entry's offset
    is its inode), as the pass compares the directories the index holds."""

    def directories() -> list[int]:
        return [
            e.inode
            for _, entries in islice(fs.iter_all(), 50)
            for e in entries
            if e.kind is EntryKind.DIR and e.inode
        ]

    offsets = [0, *(_per_entry(directories) or [])]
    for offset in offsets[:200]:
        compared, extents = _per_entry(partial(reread.plan, offset)) or (False, None)
        if compared and extents is not None:
            _per_entry(partial(reread.slot_delta, extents))


def open_and_explore(reader: Reader, seed: Reader | None = None) -> None:
    try:
        fs = open_filesystem(CachedReader(reader))
    except OPEN_ERRORS:
        raise
    except FileRestoreError as exc:
        raise Finding(f"opening raised {type(exc).__name__}: {exc}") from exc
    try:
        explore(fs)
        if seed is not None:
            compare_with(fs, seed)
    finally:
        fs.close()


def _setup(builders: dict[str, Callable[[], Path]], fixup: Fixup | None) -> Callable[[], OneInput]:
    def setup() -> OneInput:
        loaded = [make_seed(name, build(), fixup=fixup) for name, build in builders.items()]
        files = [FileReader(s.path) for s in loaded]

        def one(data: bytes) -> None:
            damage = decode(data, loaded)
            seed = loaded[damage.seed]
            reader = files[damage.seed]
            open_and_explore(PatchedReader(reader, damage, seed.fixup), reader)

        return one

    return setup


def _harness(
    name: str,
    builders: dict[str, Callable[[], Path]],
    fixup: Fixup | None = None,
    **kw: Any,
) -> Harness:
    count = len(builders)
    return Harness(
        name=name,
        doc=f"{name}: damaged seed images ({', '.join(builders)}) opened, walked and read",
        setup=_setup(builders, fixup),
        # each seed as it is, and (bit 6) with checksums fixed over the damage to come
        seeds=lambda: [bytes([i | flag]) for i in range(count) for flag in (0, 0x40)],
        expected=ENTRY_ERRORS,
        **kw,
    )


def _pick(names: list[str]) -> dict[str, Callable[[], Path]]:
    return {n: seeds.ALL[n] for n in names}


EXT = _harness("ext", _pick(list(seeds.EXT_SEEDS)), dictionary=(b"\x53\xef", b"\x0a\xf3"))
XFS = _harness("xfs", _pick(list(seeds.XFS_SEEDS)), dictionary=(b"XFSB", b"IN", b"XDB3", b"XDD3"))
NTFS = _harness("ntfs", _pick(["ntfs"]), dictionary=(b"FILE0", b"NTFS    ", b"INDX"))
FAT = _harness("fat", _pick(list(seeds.FAT_SEEDS)), dictionary=(b"\x55\xaa", b"FAT12   "))
EXFAT = _harness(
    "exfat",
    _pick(["exfat"]),
    checksums.exfat,
    dictionary=(b"EXFAT   ", b"\x85", b"\xc0", b"\xc1"),
)
BTRFS = _harness(
    "btrfs", _pick(list(seeds.BTRFS_SEEDS)), checksums.btrfs, dictionary=(b"_BHRfS_M",)
)

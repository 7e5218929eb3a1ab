"""Shared fixtures and checks for filesystem tests.

Linux images (ext2/3/4, XFS, Btrfs) come from tests/imagebuild/fs_linux.py: each is built
once, verified against its source tree through a kernel loop mount, and comes with the
kernel's view of every entry (``facts``). The checks below compare our reader with the
source tree and with those facts, never with our own output.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from filerestore.blockio import FileReader, Reader
from filerestore.fs import detect_filesystem, open_filesystem
from filerestore.fs.base import Filesystem
from filerestore.fs.contents import FileContents
from filerestore.fs.entry import Entry, EntryKind
from tests.fs.treecheck import kind_of, tree_entries
from tests.imagebuild import fs_linux
from tests.imagebuild.tree import block_content


@dataclass
class LinuxImage:
    """A built image with its source tree and the kernel's facts about its entries."""

    kind: str
    image: Path
    tree: Path
    facts: dict[str, dict[str, Any]]
    open_fs: Callable[[Reader], Filesystem[Any]]
    mtime_resolution_ns: int = 1
    extra_root_entries: tuple[str, ...] = ()

    @contextlib.contextmanager
    def opened(self) -> Iterator[Filesystem[Any]]:
        reader = FileReader(self.image)
        try:
            fs = self.open_fs(reader)
            try:
                yield fs
            finally:
                fs.close()
        finally:
            reader.close()


def opened_image(
    image: Path, open_fs: Callable[[Reader], Filesystem[Any]]
) -> Iterator[Filesystem[Any]]:
    """``image`` opened with ``open_fs``, for a fixture to ``yield from``; closed after."""
    with FileReader(image) as reader:
        fs = open_fs(reader)
        yield fs
        fs.close()


@pytest.fixture(scope="module")
def walked(fs: Filesystem[Any]) -> dict[str, Entry]:
    """Every entry of the module's ``fs`` fixture by path (modules that define ``fs``)."""
    return {e.path: e for e in fs.walk("/")}


def _facts(image: Path, fstype: str) -> dict[str, dict[str, Any]]:
    loaded: dict[str, dict[str, Any]] = json.loads(fs_linux.mount_facts(image, fstype).read_text())
    return loaded


def ext_image(kind: str, tree_name: str = "ext", features: str = "") -> LinuxImage:
    from filerestore.fs import ext

    image = fs_linux.ext_image(kind, tree_name, features=features)
    return LinuxImage(
        kind,
        image,
        fs_linux.linux_tree(tree_name),
        _facts(image, kind),
        ext.open_fs,
        mtime_resolution_ns=10**9,  # mke2fs -d copies whole seconds
        extra_root_entries=("lost+found",),
    )


def xfs_image() -> LinuxImage:
    from filerestore.fs import xfs

    image = fs_linux.xfs_image()
    return LinuxImage("xfs", image, fs_linux.linux_tree("xfs"), _facts(image, "xfs"), xfs.open_fs)


def btrfs_image() -> LinuxImage:
    pytest.importorskip("dissect.btrfs", reason="the [btrfs] extra is not installed")
    from filerestore.fs import btrfs

    image = fs_linux.btrfs_image()
    return LinuxImage(
        "btrfs", image, fs_linux.linux_tree("btrfs"), _facts(image, "btrfs"), btrfs.open_fs
    )


# --- checks against the source tree and the kernel ------------------------------------------


def compare_with_tree(img: LinuxImage, fs: Filesystem[Any]) -> list[str]:
    """Differences between our walk and the source tree: names, kinds, modes, sizes, owners,
    mtimes of files, symlink targets. Empty when they agree."""
    expected = tree_entries(img.tree)
    got = {e.path: e for e in fs.walk("/")}
    problems: list[str] = []
    extra = {p for p in got if p not in expected and p.strip("/") not in img.extra_root_entries}
    extra = {p for p in extra if not any(p.startswith(f"/{r}/") for r in img.extra_root_entries)}
    problems += [f"not in tree: {p!r}" for p in sorted(extra)]
    for path, st in expected.items():
        entry = got.get(path)
        if entry is None:
            problems.append(f"missing: {path!r}")
            continue
        want_kind = kind_of(st)
        if entry.kind is not want_kind:
            problems.append(f"kind {entry.kind} != {want_kind}: {path!r}")
            continue
        if entry.name != path.rsplit("/", 1)[1]:
            problems.append(f"name {entry.name!r}: {path!r}")
        if entry.mode != st.st_mode and want_kind is not EntryKind.SYMLINK:
            problems.append(f"mode {entry.mode:o} != {st.st_mode:o}: {path!r}")
        if (entry.uid, entry.gid) != (st.st_uid, st.st_gid):
            problems.append(f"owner {entry.uid}:{entry.gid}: {path!r}")
        if want_kind is EntryKind.FILE:
            if entry.size != st.st_size:
                problems.append(f"size {entry.size} != {st.st_size}: {path!r}")
            res = img.mtime_resolution_ns
            if entry.mtime_ns is None or entry.mtime_ns // res != st.st_mtime_ns // res:
                problems.append(f"mtime {entry.mtime_ns} != {st.st_mtime_ns}: {path!r}")
        if want_kind is EntryKind.SYMLINK:
            target = str((img.tree / path.lstrip("/")).readlink())
            if entry.target != target or fs.read_link(path) != target:
                problems.append(f"target {entry.target!r} != {target!r}: {path!r}")
    return problems


def check_registry_opens(img: LinuxImage) -> None:
    """The filesystem registry detects ``img`` as its kind and opens it to a listable root."""
    with FileReader(img.image) as reader:
        assert detect_filesystem(reader) == img.kind
        fs = open_filesystem(reader)
        assert fs.kind == img.kind
        assert any(e.name == "hello.txt" for e in fs.list_dir("/"))
        fs.close()


def run_in_threads(work: Callable[[int], None], count: int) -> None:
    """Run ``work(0)`` .. ``work(count - 1)`` at once, each in its own thread, and wait."""
    threads = [threading.Thread(target=work, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def threaded_read_problems(
    fs: Filesystem[Any],
    reader_of: Callable[[int], tuple[FileContents, bytes]],
    listing: tuple[str, int],
    *,
    reads: int,
    stride: int,
    size: int,
) -> list[str]:
    """Four threads at once, thread ``k`` reading ``reads`` pieces of ``size`` bytes at offsets
    ``stride`` * (``k`` + 1) apart from ``reader_of(k)`` (its reader and the bytes it must
    give), and listing ``listing``'s directory (it must hold that many entries) after each."""
    directory, count = listing
    errors: list[str] = []

    def work(k: int) -> None:
        reader, want = reader_of(k)
        for i in range(reads):
            off = (i * stride * (k + 1)) % len(want)
            if reader.read_at(off, size) != want[off : off + size]:
                errors.append(f"thread {k} read {off}")
            if len(list(fs.list_dir(directory))) != count:
                errors.append(f"thread {k} listing")

    run_in_threads(work, 4)
    return errors


#: fields every Linux filesystem reports that the kernel's lstat/statx can confirm
FACT_FIELDS = ("inode", "nlink", "mode", "uid", "gid", "mtime_ns", "atime_ns", "ctime_ns")


def compare_with_kernel(
    entries: list[Entry], facts: dict[str, dict[str, Any]], fields: tuple[str, ...]
) -> list[str]:
    problems: list[str] = []
    for entry in entries:
        fact = facts.get(entry.path)
        if fact is None:
            problems.append(f"kernel does not list {entry.path!r}")
            continue
        for field in fields:
            if getattr(entry, field) != fact[field]:
                problems.append(
                    f"{field} {getattr(entry, field)!r} != {fact[field]!r}: {entry.path!r}"
                )
        if entry.kind is EntryKind.FILE and entry.size != fact["size"]:
            problems.append(f"size {entry.size} != {fact['size']}: {entry.path!r}")
    return problems


def walk_matching_the_kernel(img: LinuxImage) -> list[Entry]:
    """Every entry of ``img``, once each has been found to match the kernel's facts about it
    (birth time included)."""
    with img.opened() as fs:
        entries = list(fs.walk("/"))
    assert compare_with_kernel(entries, img.facts, (*FACT_FIELDS, "btime_ns")) == []
    return entries


def prealloc_problems(open_fs: Callable[[Reader], Filesystem[Any]], fstype: str) -> list[str]:
    """Files of fs_linux.prealloc_image that do not read as the kernel read them."""
    problems: list[str] = []
    with FileReader(fs_linux.prealloc_image(fstype)) as reader:
        fs = open_fs(reader)
        for path in fs_linux.PREALLOC_FILES:
            want = fs_linux.prealloc_expected(path)
            got = fs.open(path)
            if got.size != len(want) or got.read_at(0, got.size) != want:
                problems.append(path)
            # and in small reads that straddle the written bytes
            for offset in fs_linux.PREALLOC_FILES[path][1]:
                start = max(0, offset - 7)
                if got.read_at(start, 20) != want[start : start + 20]:
                    problems.append(f"{path} at {offset}")
        fs.close()
    return problems


class PatchedReader:
    """A reader of ``base`` with some byte ranges overwritten (corruption without a copy)."""

    def __init__(self, base: Reader, patches: dict[int, bytes]) -> None:
        self._base = base
        self._patches = sorted(patches.items())

    @property
    def size(self) -> int:
        return self._base.size

    def read_at(self, offset: int, length: int) -> bytes:
        data = self._base.read_at(offset, length)
        end = offset + len(data)
        if not any(p < end and p + len(b) > offset for p, b in self._patches):
            return data
        out = bytearray(data)
        for pos, patch in self._patches:
            lo, hi = max(pos, offset), min(pos + len(patch), end)
            if lo < hi:
                out[lo - offset : hi - offset] = patch[lo - pos : hi - pos]
        return bytes(out)


def check_random_corruption(img: LinuxImage, start: int, span: int, runs: int = 12) -> None:
    """``runs`` seeded corruptions of [start, start + span) each end in an outcome (none
    escapes the error tree), and at least one of them is noticed."""
    outcomes = random_corruption_outcomes(img, range(runs), start, span)
    assert sum(outcomes.values()) == runs
    assert set(outcomes) - {"ok"}, outcomes  # the corruption was noticed at least once


def check_big_sparse_tail(fs: Filesystem[Any]) -> None:
    """/big-sparse.bin of the Linux trees: 5 GiB of hole and 8 KiB of data, read across
    the hole's end."""
    reader = fs.open("/big-sparse.bin")
    assert reader.size == 5 * 2**30 + 8192
    assert reader.read_at(5 * 2**30 - 100, 8292) == bytes(100) + block_content("big-tail", 8192)


def random_corruption_outcomes(
    img: LinuxImage, seeds: range, start: int, span: int
) -> dict[str, int]:
    """Open, walk and read every file of ``img`` with seeded random bytes overwritten in
    [start, start + span); count outcomes by exception class name ("ok": none). Any
    exception that is not a FileRestoreError propagates and fails the caller."""
    import random

    from filerestore.errors import FileRestoreError

    outcomes: dict[str, int] = {}
    with FileReader(img.image) as base:
        for seed in seeds:
            rnd = random.Random(seed)
            patches = {
                rnd.randrange(start, start + span): rnd.randbytes(rnd.choice([1, 4, 16]))
                for _ in range(rnd.choice([20, 200, 2000]))
            }
            outcome = "ok"
            try:
                fs = img.open_fs(PatchedReader(base, patches))
                for entry in fs.walk("/"):
                    if entry.kind is EntryKind.FILE:
                        try:
                            reader = fs.open(entry.path)
                            reader.read_at(0, min(reader.size, 1 << 20))
                        except FileRestoreError as exc:
                            outcome = type(exc).__name__
            except FileRestoreError as exc:
                outcome = type(exc).__name__
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes

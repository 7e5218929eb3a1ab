"""Comparisons of a filesystem reader with the source tree its image was built from.

Each returns the differences it found as readable lines (empty when the reader agrees with
the tree), so a test asserts ``== []`` and a failure lists every difference at once.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from filerestore.fs.base import Filesystem
from filerestore.fs.entry import Entry, EntryKind
from tests.imagebuild import fs_linux
from tests.imagebuild.tree import MiB


def tree_entries(tree: Path) -> dict[str, os.stat_result]:
    """Every path below ``tree`` ("/docs/readme.md" form, surrogate-escaped) with its lstat."""
    out: dict[str, os.stat_result] = {}
    for dirpath, dirnames, filenames in os.walk(tree):  # str names carry surrogate escapes
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            out["/" + str(full.relative_to(tree))] = full.lstat()
    return out


def kind_of(st: os.stat_result) -> EntryKind:
    if stat.S_ISDIR(st.st_mode):
        return EntryKind.DIR
    if stat.S_ISREG(st.st_mode):
        return EntryKind.FILE
    if stat.S_ISLNK(st.st_mode):
        return EntryKind.SYMLINK
    return EntryKind.OTHER


def compare_contents(tree: Path, fs: Filesystem[Any]) -> list[str]:
    """Files whose size or bytes differ from the tree's; holes on both sides are compared
    as zeros."""
    problems: list[str] = []
    for path, st in tree_entries(tree).items():
        if not stat.S_ISREG(st.st_mode):
            continue
        src = tree / path.lstrip("/")
        reader = fs.open(path)
        if reader.size != st.st_size:
            problems.append(f"size {reader.size}: {path!r}")
            continue
        data = fs_linux.data_ranges(src)
        holes = _gaps(data, st.st_size)
        with src.open("rb") as fh:
            for start, end in data:
                for pos in range(start, end, 16 * MiB):
                    n = min(16 * MiB, end - pos)
                    if reader.read_at(pos, n) != os.pread(fh.fileno(), n, pos):
                        problems.append(f"data differs at {pos}: {path!r}")
                        break
        for start, end in holes:
            for pos in range(start, end, 64 * MiB):
                n = min(64 * MiB, end - pos)
                chunk = reader.read_at(pos, n)
                if len(chunk) != n or chunk.count(0) != n:
                    problems.append(f"hole not zeros at {pos}: {path!r}")
                    break
    return problems


def _gaps(ranges: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    pos = 0
    for start, end in ranges:
        if start > pos:
            out.append((pos, start))
        pos = max(pos, end)
    if pos < size:
        out.append((pos, size))
    return out


def compare_fat_walk(
    tree: Path, walked: Mapping[str, Entry], mtime_resolution_ns: int
) -> list[str]:
    """Differences between a FAT or exFAT walk and the tree: paths, kinds, file sizes and
    mtimes (at the format's resolution), and what these formats cannot store (no owners,
    one link, fixed modes: 0644 files, 0755 directories)."""
    expected = tree_entries(tree)
    problems = [f"not in tree: {p!r}" for p in sorted(walked.keys() - expected.keys())]
    problems += [f"missing: {p!r}" for p in sorted(expected.keys() - walked.keys())]
    for path, st in expected.items():
        entry = walked.get(path)
        if entry is None:
            continue
        if entry.kind is not kind_of(st):
            problems.append(f"kind {entry.kind} != {kind_of(st)}: {path!r}")
            continue
        if (entry.uid, entry.gid, entry.nlink) != (None, None, 1):
            problems.append(f"owner {entry.uid}:{entry.gid} links {entry.nlink}: {path!r}")
        if entry.kind is EntryKind.FILE:
            if entry.size != st.st_size:
                problems.append(f"size {entry.size} != {st.st_size}: {path!r}")
            res = mtime_resolution_ns
            if entry.mtime_ns != st.st_mtime_ns // res * res:
                problems.append(f"mtime {entry.mtime_ns} != {st.st_mtime_ns}: {path!r}")
            want_mode = stat.S_IFREG | 0o644
        else:
            want_mode = stat.S_IFDIR | 0o755
        if entry.mode != want_mode:
            problems.append(f"mode {entry.mode:o} != {want_mode:o}: {path!r}")
    return problems

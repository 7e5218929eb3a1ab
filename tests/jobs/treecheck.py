"""Restored trees checked against their source trees with independent tools: ``stat`` for
type, mode, owner, size and mtime, ``sha256sum`` for contents, ``readlink`` for links."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.jobs.conftest import sha256sum, stat_of

#: what every restore keeps of a mode: no setuid, no setgid (restore/targets/base.py)
KEPT = 0o1777


def entries(top: Path) -> list[Path]:
    """``top`` and everything below it, relative to ``top``'s parent."""
    found = [Path(top.name)]
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            found.append((Path(dirpath) / name).relative_to(top.parent))
    return found


def expected_stat(line: str, owner: tuple[int, int] | None) -> str:
    kind, mode, uid, gid, size, mtime = line.split("|")
    if owner is not None:
        uid, gid = str(owner[0]), str(owner[1])
    if kind == "directory":
        size = "-"
    if kind == "symbolic link":
        mode = "-"  # a link's own mode is 777 everywhere
    return " ".join(
        (kind, f"{int(mode, 8) & KEPT:o}" if mode != "-" else mode, uid, gid, size, mtime)
    )


def shown_stat(line: str) -> str:
    kind, mode, uid, gid, size, mtime = line.split("|")
    if kind == "directory":
        size = "-"
    if kind == "symbolic link":
        mode = "-"
    return " ".join((kind, mode, uid, gid, size, mtime))


def compare(
    src_root: Path, dst_root: Path, selection: list[str], owner: tuple[int, int] | None = None
) -> int:
    """Every entry of ``selection`` (paths in the source tree) against the restored one
    under ``dst_root``; returns how many were compared. Devices, FIFOs and sockets are never
    restored. ``owner``: the uid/gid every restored entry has instead of the source's (a
    target that cannot keep owners)."""
    compared = 0
    for sel in selection:
        for rel in entries(src_root / sel.lstrip("/")):
            src = src_root / Path(sel.lstrip("/")).parent / rel
            dst = dst_root / rel
            mode = src.lstat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                assert not os.path.lexists(dst), dst
                continue
            assert shown_stat(stat_of(dst)) == expected_stat(stat_of(src), owner), rel
            if stat.S_ISREG(mode):
                assert sha256sum(dst) == sha256sum(src), rel
            elif stat.S_ISLNK(mode):
                assert os.readlink(dst) == os.readlink(src), rel
            compared += 1
    return compared

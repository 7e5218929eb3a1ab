"""An ext4 image whose directories' extent trees are 0, 1 and 2 levels deep, for
tests/fs/test_ext_extent_tree.py: made by mke2fs and filled through a kernel loop mount.

A directory's blocks are contiguous on a fresh filesystem (one extent, kept in the inode).
So the free space is cut into one-block holes first: 40,000 one-block files written without
delayed allocation (``nodelalloc``: each gets its block at write time, next to the one
before), every other one removed. A directory grown afterwards gets one hole per block, one
extent per block: 10 entries fit in one block (depth 0), 2,000 need some 60 (more than the
inode's 4 extents: depth 1), 14,000 some 480 (more than 4 leaves of 84: depth 2). The
depths are checked with debugfs when the image is built.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.imagebuild.cache import cached
from tests.imagebuild.fs_linux import loop_mount, run

#: directory: (entries, depth of its extent tree)
DIRS = {"small": (10, 0), "frag": (2000, 1), "deep": (14000, 2)}
FILL = 40_000
SIZE, INODES = "128M", 64_000  # 1 KiB blocks
_RECIPE = {"dirs": DIRS, "fill": FILL, "size": SIZE, "inodes": INODES}
_EX_LINE = re.compile(
    r"^\s*(\d+)/\s*(\d+)\s+\d+/\s*\d+\s+(\d+)\s+-\s+(\d+)\s+(\d+)(?:\s+-\s+(\d+))?\s+(\d+)"
)


def entry_name(i: int) -> str:
    return f"entry-{i:06d}.dat"


def _populate(root: Path) -> None:
    fill = root / "fill"
    fill.mkdir()
    for d in DIRS:
        (root / d).mkdir()
    for i in range(FILL):
        (fill / f"{i:06d}").write_bytes(b"x" * 1024)
    os.sync()
    for i in range(0, FILL, 2):
        (fill / f"{i:06d}").unlink()
    os.sync()
    for d, (entries, _) in DIRS.items():
        for i in range(entries):
            (root / d / entry_name(i)).touch()


def extent_tree(image: Path, path: str) -> tuple[int, list[tuple[int, int, int]]]:
    """(depth, leaf extents as (first logical block, first physical block, blocks)) of
    ``path``'s extent tree, as debugfs's ``ex`` prints it."""
    out = run("debugfs", "-R", f"ex {path}", image)
    depth, leaves = -1, []
    for line in out.splitlines():
        m = _EX_LINE.match(line)
        if m is None:
            continue
        level, depth = int(m[1]), int(m[2])
        if level == depth:
            leaves.append((int(m[3]), int(m[5]), int(m[7])))
    return depth, leaves


def image() -> Path:
    def build(tmp: Path) -> None:
        run("truncate", "-s", SIZE, tmp)
        run(
            "mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-N", str(INODES),
            "-L", "fr-extents", tmp,
        )  # fmt: skip
        with loop_mount(tmp, "rw,nodelalloc") as mnt:
            _populate(mnt)
        run("e2fsck", "-fn", tmp)
        for d, (_, depth) in DIRS.items():
            found, leaves = extent_tree(tmp, f"/{d}")
            if found != depth or not leaves:
                raise RuntimeError(f"/{d}: extent tree of depth {found}, wanted {depth}")

    return cached("ext-extent-dirs", _RECIPE, build)

"""An XFS image whose ``/big`` directory is in B+tree form, for the XFS directory reader.

3,000 empty files and 10 subdirectories go into ``/big`` through a kernel loop mount; every
20th file also writes a 4 KiB file elsewhere and syncs it, so the directory's blocks are
spread over more extents than its inode holds and XFS keeps them in a B+tree. ``xfs_db``
says so before the image is cached (``core.format = 3 (btree)``), and ``xfs_repair -n``
checks the filesystem.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.imagebuild.cache import cached
from tests.imagebuild.fs_linux import loop_mount, run

FILES = 3000
SUBDIRS = 10


def name(i: int) -> str:
    return f"Entry-{i:05d}-with-a-longer-name.txt" if i % 2 else f"entry-{i:05d}.TXT"


def xfs_btree_image() -> Path:
    def build(tmp: Path) -> None:
        run("truncate", "-s", "320M", tmp)  # mkfs.xfs's smallest
        run("mkfs.xfs", "-q", "-L", "fr-xfs-bt", tmp)
        with loop_mount(tmp, "rw") as mnt:
            big, pad = mnt / "big", mnt / "pad"
            big.mkdir()
            pad.mkdir()
            for i in range(FILES):
                (big / name(i)).touch()
                if i % 20 == 0:
                    with (pad / f"p{i}").open("wb") as fh:
                        fh.write(b"x" * 4096)
                        fh.flush()
                        os.fsync(fh.fileno())
            for i in range(SUBDIRS):
                (big / f"Sub-{i}").mkdir()
            ino = (mnt / "big").stat().st_ino
        run("xfs_repair", "-n", "-f", tmp)
        shown = run("xfs_db", "-r", "-c", f"inode {ino}", "-c", "p core.format", tmp)
        if "btree" not in shown:
            raise AssertionError(f"/big is not in B+tree form: {shown}")

    return cached("xfs-btree-dir", {"files": FILES, "subdirs": SUBDIRS}, build)

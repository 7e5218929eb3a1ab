"""Small empty filesystem images (mke2fs, mkfs.vfat) that tests lay into partitions with
``disk.build_disk``."""

from __future__ import annotations

from pathlib import Path

from tests.imagebuild.cache import cached
from tests.imagebuild.fs_linux import run


def small_fs_image(kind: str) -> Path:
    """An empty ext4 (6 MiB) or FAT (5 MiB) filesystem image, to lay into partitions."""

    def build(dest: Path) -> None:
        dest.touch()
        if kind == "ext4":
            run("mke2fs", "-q", "-F", "-t", "ext4", "-L", "bd-ext4", dest, "6M")
        else:
            dest.unlink()
            run("mkfs.vfat", "-C", "-n", "BDFAT", dest, str(5 * 1024))

    return cached(f"volume-test-{kind}", kind, build)

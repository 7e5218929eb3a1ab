"""The image the scale-out test and benchmark download from: files worth streaming.

An ext4 filesystem on the whole disk (no partition table: volume ``disk``) made by
``mke2fs -d`` from a tree of 24 files of 1 to 8 MiB (self-checking content, sizes not all
multiples of a block), converted to qcow2 by ``qemu-img``. The tree stays beside the image:
expected hashes are read from it, never from the server.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.imagebuild.cache import cached
from tests.imagebuild.tree import MiB, block_content

FILES = 24
FS_MIB = 256


def size_of(index: int) -> int:
    """1 MiB to 8 MiB, plus an odd tail every third file."""
    return (1 + index % 8) * MiB + (4097 * index if index % 3 == 0 else 0)


def name_of(index: int) -> str:
    return f"data/set{index % 4}/file{index:02d}.bin"


def scale_image() -> Path:
    """The directory holding ``disk.qcow2`` and ``tree/``."""

    def build(out: Path) -> None:
        tree = out / "tree"
        for i in range(FILES):
            path = tree / name_of(i)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(block_content(name_of(i), size_of(i)))
        raw = out / "disk.raw"
        subprocess.run(
            ["mke2fs", "-q", "-F", "-t", "ext4", "-L", "scale", "-d", tree, raw, f"{FS_MIB}M"],
            check=True,
        )
        for i in (0, FILES - 1):  # read back by debugfs, an independent reader
            got = subprocess.run(
                ["debugfs", "-R", f"cat /{name_of(i)}", raw], check=True, capture_output=True
            ).stdout
            if got != (tree / name_of(i)).read_bytes():
                raise AssertionError(f"mke2fs -d wrote {name_of(i)} wrongly")
        subprocess.run(
            ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, out / "disk.qcow2"],
            check=True,
        )
        raw.unlink()

    return cached("scale-ext4", {"files": FILES, "fs_mib": FS_MIB}, build, suffix="d")

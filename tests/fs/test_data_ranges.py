"""Each file reader says where its data is and where its holes are (``data_ranges``), as the
kernel does for the same image through SEEK_DATA/SEEK_HOLE on a read-only loop mount."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from filerestore.blockio import FileReader
from filerestore.fs import btrfs, ext, xfs
from tests.fs.conftest import LinuxImage, btrfs_image, ext_image, xfs_image
from tests.imagebuild import fs_linux
from tests.imagebuild.cache import cached

IMAGES = {"ext2": "ext2", "ext4": "ext4", "xfs": "xfs", "btrfs": "btrfs"}


def kernel_ranges(image: Path, options: str = "ro") -> dict[str, list[list[int]]]:
    """path -> [[offset, length], ...] of every regular file, from the kernel."""

    def build(tmp: Path) -> None:
        out: dict[str, list[list[int]]] = {}
        with fs_linux.loop_mount(image, options) as mnt:
            for dirpath, _, filenames in os.walk(mnt):
                for name in filenames:
                    path = Path(dirpath) / name
                    if path.is_symlink() or not path.is_file():
                        continue
                    rel = "/" + str(path.relative_to(mnt))
                    out[rel] = [[a, b - a] for a, b in fs_linux.data_ranges(path)]
        tmp.write_text(json.dumps(out))

    facts = cached(f"ranges-{image.stem}", {"image": image.name}, build, "json")
    loaded: dict[str, list[list[int]]] = json.loads(facts.read_text())
    return loaded


def _image(kind: str) -> LinuxImage:
    if kind == "xfs":
        return xfs_image()
    if kind == "btrfs":
        return btrfs_image()
    return ext_image(kind)


@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_data_ranges_match_the_kernel(kind: str) -> None:
    img = _image(kind)
    options = "ro,noload" if kind in ("ext3", "ext4") else "ro"
    want = kernel_ranges(img.image, options)
    assert any(len(r) > 1 or (r and r[0][1] < 1 << 20) for r in want.values())  # has holes
    problems: list[str] = []
    with img.opened() as fs:
        for path, ranges in want.items():
            got = [list(r) for r in fs.open(path).data_ranges()]
            if got != ranges:
                problems.append(f"{path!r}: {got} != {ranges}")
    assert problems == []


@pytest.mark.parametrize("kind", ["ext4", "xfs", "btrfs"])
def test_unwritten_extents_are_never_reported_as_less_data(kind: str) -> None:
    """Preallocated, never written extents read as zeros: a reader may report them as holes
    (as the kernel does) or as data, but never leaves out a byte the kernel holds as data."""
    image = fs_linux.prealloc_image(kind)
    want = kernel_ranges(image, "ro,noload" if kind == "ext4" else "ro")
    opener: Any = {"ext4": ext.open_fs, "xfs": xfs.open_fs, "btrfs": btrfs.open_fs}[kind]
    with FileReader(image) as reader:
        fs = opener(reader)
        for path, ranges in want.items():
            got = list(fs.open(path).data_ranges())
            for start, length in ranges:
                assert any(a <= start and start + length <= a + n for a, n in got), (path, got)
        fs.close()

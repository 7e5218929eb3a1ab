"""The bulk walk (``Filesystem.iter_all``) lists exactly what the path-by-path walk lists,
for every filesystem kind, whether a backend reads it its own way (ext: inode tables; NTFS:
an MFT scan) or through the generic breadth-first listing."""

from __future__ import annotations

from typing import Any

import pytest

from filerestore.fs.base import Filesystem
from filerestore.fs.entry import Entry
from tests.fs.conftest import btrfs_image, ext_image, opened_image, xfs_image
from tests.imagebuild import fs_windows


def _bulk(fs: Filesystem[Any]) -> tuple[dict[str, Entry], list[str]]:
    entries: dict[str, Entry] = {}
    order: list[str] = []
    for dentry, listed in fs.iter_all():
        order.append(dentry.path)
        for e in listed:
            assert e.path not in entries, e.path
            entries[e.path] = e
    return entries, order


def check(fs: Filesystem[Any]) -> None:
    walked = {e.path: e for e in fs.walk("/")}
    bulk, order = _bulk(fs)
    assert bulk == walked
    assert order[0] == "/"
    assert sorted(order[1:]) == sorted(p for p, e in walked.items() if e.kind.value == "dir")
    for path in order[1:]:  # every directory after its parent
        parent = path.rsplit("/", 1)[0] or "/"
        assert order.index(parent) < order.index(path)


@pytest.mark.parametrize(
    "make", [lambda: ext_image("ext4"), lambda: ext_image("ext2"), xfs_image, btrfs_image]
)
def test_linux(make: Any) -> None:
    img = make()
    with img.opened() as fs:
        check(fs)


@pytest.mark.parametrize(
    "make", [fs_windows.ntfs_image, lambda: fs_windows.fat_image(32), fs_windows.exfat_image]
)
def test_windows_family(make: Any) -> None:
    from filerestore.fs import open_filesystem

    for fs in opened_image(make().image, open_filesystem):
        check(fs)

"""What the Linux filesystem backends (ext2/3/4 through libfsext, XFS through libfsxfs, Btrfs
through dissect.btrfs) must all do alike, one table of the kinds: read a 5 GiB sparse file
across its hole, read preallocated (unwritten) extents and tail holes as the kernel does, and
keep random corruption of their metadata inside the error tree."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from filerestore.blockio import Reader
from filerestore.fs import btrfs, ext, xfs
from filerestore.fs.base import Filesystem
from tests.fs.conftest import (
    LinuxImage,
    btrfs_image,
    check_big_sparse_tail,
    check_random_corruption,
    ext_image,
    prealloc_problems,
    xfs_image,
)

IMAGES: dict[str, Callable[[], LinuxImage]] = {
    "ext2": partial(ext_image, "ext2"),
    "ext3": partial(ext_image, "ext3"),
    "ext4": partial(ext_image, "ext4"),
    "xfs": xfs_image,
    "btrfs": btrfs_image,
}
#: [start, start + span) of each kind's image that random bytes are written into
CORRUPTED: dict[str, tuple[int, int]] = {
    # the first MiB holds the superblock, group descriptors, bitmaps and inode table of
    # group 0 (every inode of the tree)
    "ext2": (1024, 1 << 20),
    "ext3": (1024, 1 << 20),
    "ext4": (1024, 1 << 20),
    # AG 0's headers, inode chunks and the small files' blocks sit in its first MiB
    "xfs": (512, 1 << 20),
    # dissect.btrfs looped for ever on some of these before nodes were checked
    "btrfs": (0x11000, 40 << 20),
}
#: the kinds fs_linux.prealloc_image is made in, and their backends
PREALLOCATED: dict[str, Callable[[Reader], Filesystem[Any]]] = {
    "ext4": ext.open_fs,
    "xfs": xfs.open_fs,
    "btrfs": btrfs.open_fs,
}


@pytest.fixture(scope="module", params=list(IMAGES))
def img(request: pytest.FixtureRequest) -> LinuxImage:
    return IMAGES[request.param]()


def test_sparse_file_over_4_gib(img: LinuxImage) -> None:
    with img.opened() as fs:
        check_big_sparse_tail(fs)
        reader = fs.open("/big-sparse.bin")
        assert reader.read_at(0, 5) == b"start"
        assert reader.read_at(4 * 2**30, 1 << 20) == bytes(1 << 20)


@pytest.mark.parametrize("kind", list(PREALLOCATED))
def test_unwritten_extents_and_tail_holes_read_as_zeros(kind: str) -> None:
    if kind == "btrfs":
        pytest.importorskip("dissect.btrfs", reason="the [btrfs] extra is not installed")
    assert prealloc_problems(PREALLOCATED[kind], kind) == []


def test_random_corruption_never_escapes_the_error_tree(img: LinuxImage) -> None:
    check_random_corruption(img, *CORRUPTED[img.kind])

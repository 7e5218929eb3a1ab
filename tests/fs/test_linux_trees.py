"""What every Linux filesystem reader does on its image of the shared tree (ext2, ext3, ext4,
XFS and Btrfs; Btrfs with /subvol, a second subvolume shown where it is linked, and
/compressed/{zstd,zlib,lzo}.txt, whose extents filefrag saw as encoded): its kind and label,
every entry as the tree has it, every file byte-exact, and the registry detecting and opening
it. What differs between them (detection, metadata against the kernel, corruption) is in
each one's own test module."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fs.conftest import (
    LinuxImage,
    btrfs_image,
    check_registry_opens,
    compare_with_tree,
    ext_image,
    xfs_image,
)
from tests.fs.treecheck import compare_contents

IMAGES: dict[str, Callable[[], LinuxImage]] = {
    "ext2": lambda: ext_image("ext2"),
    "ext3": lambda: ext_image("ext3"),
    "ext4": lambda: ext_image("ext4"),
    "xfs": xfs_image,
    "btrfs": btrfs_image,
}


@pytest.fixture(scope="module", params=sorted(IMAGES))
def img(request: pytest.FixtureRequest) -> LinuxImage:
    return IMAGES[request.param]()


def test_kind_and_label(img: LinuxImage) -> None:
    with img.opened() as fs:
        assert (fs.kind, fs.label) == (img.kind, f"fr-{img.kind}")


def test_every_entry_matches_the_tree(img: LinuxImage) -> None:
    with img.opened() as fs:
        assert compare_with_tree(img, fs) == []


def test_every_file_reads_byte_exact(img: LinuxImage) -> None:
    with img.opened() as fs:
        assert compare_contents(img.tree, fs) == []


def test_registry_detects_and_opens_it(img: LinuxImage) -> None:
    check_registry_opens(img)

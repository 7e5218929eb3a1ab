"""The whole stack (image -> GPT -> ext4) over the GPT + ext4 disk converted by qemu-img to a
QCOW2 with an external data file, raw or not, and over an overlay with its own data file on
it: every file as in the source tree mke2fs was given."""

from __future__ import annotations

from pathlib import Path

import pytest

from filerestore.restore import open_stack
from tests.fs.treecheck import compare_contents
from tests.imagebuild import data_file as D
from tests.imagebuild import gpt_ext4 as images

MiB = 1 << 20


@pytest.fixture(scope="module")
def ext4() -> images.Built:
    return images.single_ext4()


@pytest.mark.parametrize("raw", [False, True], ids=["data-file", "raw-data-file"])
def test_tree_through_a_data_file(ext4: images.Built, raw: bool) -> None:
    image = D.convert(ext4.image, "stack-data-file", raw=raw)
    with open_stack(image) as stack:
        assert (stack.volume.id, stack.fs.kind) == ("p1", "ext4")
        (link,) = stack.image.chain
        assert (link.data_file, link.data_file_raw) == ("disk-data.raw", raw)
        assert compare_contents(ext4.tree(0), stack.fs) == []


def test_tree_through_an_overlay_with_a_data_file(ext4: images.Built, tmp_path: Path) -> None:
    """The overlay holds the GPT and the start of the ext4 partition (its superblock and
    group descriptors) again, so both are read from the overlay's data file."""
    base = D.copy_dir(D.convert(ext4.image, "stack-data-file", raw=True), tmp_path / "repo")
    head = tmp_path / "head.bin"  # the base's raw data file is its guest disk
    head.write_bytes((base.parent / "disk-data.raw").read_bytes()[: 2 * MiB])
    top = base.parent / "top.qcow2"
    D.create(top, "top-data.raw", None, [f"write -s {head} 0 {2 * MiB}"], backing=base.name)
    assert (top.parent / "top-data.raw").read_bytes()[: 2 * MiB] == head.read_bytes()
    with open_stack(top, repository=top.parent) as stack:
        assert [link.data_file for link in stack.image.chain] == ["top-data.raw", "disk-data.raw"]
        assert compare_contents(ext4.tree(0), stack.fs) == []

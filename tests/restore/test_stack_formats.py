"""The whole stack (image -> GPT -> ext4) over the GPT + ext4 disk converted by qemu-img to
each VMDK, VHD and VHDX subformat, and over a QCOW2 overlay on a VMDK: every file as in the
source tree mke2fs was given."""

from __future__ import annotations

import pytest

from filerestore.restore import open_stack
from tests.fs.treecheck import compare_contents
from tests.imagebuild import formats as F
from tests.imagebuild import gpt_ext4 as images
from tests.imagebuild.overlays import qcow2_overlay
from tests.imagebuild.sparse import copy_sparse

TARGETS = {
    "vmdk-monolithicSparse": ("vmdk", ["subformat=monolithicSparse"]),
    "vmdk-streamOptimized": ("vmdk", ["subformat=streamOptimized"]),
    "vmdk-twoGbMaxExtentSparse": ("vmdk", ["subformat=twoGbMaxExtentSparse"]),
    "vmdk-monolithicFlat": ("vmdk", ["subformat=monolithicFlat"]),
    "vpc-dynamic": ("vpc", ["subformat=dynamic"]),
    "vpc-fixed": ("vpc", ["subformat=fixed"]),
    "vhdx-dynamic": ("vhdx", ["subformat=dynamic"]),
    "vhdx-fixed": ("vhdx", ["subformat=fixed", "block_size=8M"]),
}


@pytest.fixture(scope="module")
def ext4() -> images.Built:
    return images.single_ext4()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_tree_through_every_format(ext4: images.Built, name: str) -> None:
    fmt, options = TARGETS[name]
    image = F.convert(ext4.image, fmt, options, f"stack-{name}")
    with open_stack(image) as stack:
        assert (stack.volume.id, stack.fs.kind) == ("p1", "ext4")
        assert stack.image.chain[0].format == fmt
        assert compare_contents(ext4.tree(0), stack.fs) == []


def test_tree_through_a_qcow2_overlay_on_a_vmdk(ext4: images.Built, tmp_path) -> None:
    base = F.convert(
        ext4.image, "vmdk", ["subformat=monolithicSparse"], "stack-vmdk-monolithicSparse"
    )
    repo = tmp_path / "repo"
    repo.mkdir()
    copy_sparse(base, repo / "base.vmdk")
    qcow2_overlay(repo / "top.qcow2", "base.vmdk", "vmdk")
    with open_stack(repo / "top.qcow2", repository=repo) as stack:
        assert [link.format for link in stack.image.chain] == ["qcow2", "vmdk"]
        assert compare_contents(ext4.tree(0), stack.fs) == []

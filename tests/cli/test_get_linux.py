"""`filerestore get` of subtrees from XFS and Btrfs images (a second Btrfs subvolume too),
compared with their source trees. Images and trees come from tests/imagebuild/fs_linux.py,
verified there by a kernel loop mount."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.runner import ok
from tests.imagebuild import fs_linux
from tests.imagebuild.fs_windows import compare_trees

CASES = {
    "xfs": (fs_linux.xfs_image, "xfs", ["blockdir", "docs", "unicode"]),
    "btrfs": (fs_linux.btrfs_image, "btrfs", ["subvol", "compressed", "docs"]),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_get_subtrees_match_the_source(kind: str, tmp_path: Path) -> None:
    if kind == "btrfs":  # read through the optional [btrfs] extra
        pytest.importorskip("dissect.btrfs", reason="the [btrfs] extra is not installed")
    build, tree_name, subtrees = CASES[kind]
    image, tree = build(), fs_linux.linux_tree(tree_name)
    for sub in subtrees:
        ok("get", image, f"/{sub}", tmp_path)
        # cp -a through a loop mount keeps nanosecond mtimes
        compare_trees(tree / sub, tmp_path / sub, mtime_tolerance_ns=0)

"""`filerestore get /` from NTFS, FAT32 and exFAT images, compared with their source trees.

The images are raw filesystems (no partition table: the volume is ``disk``), built and
verified by tests/imagebuild/fs_windows.py; the comparison is its compare_trees.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.runner import ok
from tests.imagebuild import fs_windows
from tests.imagebuild.fs_windows import BuiltImage, compare_trees

CASES: dict[str, tuple[Callable[[], BuiltImage], int, bool]] = {
    # builder, mtime tolerance (ns), names compared case-insensitively
    "ntfs": (fs_windows.ntfs_image, 99, False),  # NTFS keeps 100 ns units
    "fat32": (lambda: fs_windows.fat_image(32), 2_000_000_000, True),  # 2 s units; 8.3 case
    "exfat": (fs_windows.exfat_image, 2_000_000_000, False),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_get_root_matches_the_source_tree(kind: str, tmp_path: Path) -> None:
    build, tolerance, fold_case = CASES[kind]
    built = build()
    dest = tmp_path / "out"
    ok("get", built.image, "/", dest)
    compare_trees(built.tree, dest, mtime_tolerance_ns=tolerance, fold_case=fold_case)


@pytest.mark.parametrize("kind", list(CASES))
def test_cat_matches_the_source(kind: str) -> None:
    built = CASES[kind][0]()
    for rel in ("hello.txt", "docs/data.bin", "docs/sub/nested.txt"):
        assert ok("cat", built.image, "/" + rel) == (built.tree / rel).read_bytes()

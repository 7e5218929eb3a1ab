"""NTFS, FAT and exFAT paths resolve whatever their case, as in Windows (issue 14, item 15);
ext stays case-sensitive. Expected names and contents come from the source trees the images
were built from, and from ntfs-3g's view of an NTFS directory holding "Report.txt" and
"report.txt" (POSIX namespace) for the exact-name-first rule."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from filerestore.errors import PathNotFoundError
from filerestore.fs import exfat, fat, ntfs
from filerestore.fs.base import Filesystem, fold_case
from tests.fs.conftest import ext_image, opened_image
from tests.imagebuild import fs_windows
from tests.imagebuild.cache import cached

MiB = 1 << 20
OPENERS = {"fat32": fat.open_fs, "ntfs": ntfs.open_fs, "exfat": exfat.open_fs}


def built(kind: str) -> fs_windows.BuiltImage:
    if kind == "ntfs":
        return fs_windows.ntfs_image()
    if kind == "exfat":
        return fs_windows.exfat_image()
    return fs_windows.fat_image(32)


def swapped_files(tree: Path, limit: int = 25) -> list[tuple[str, str]]:
    """(path, the path with every letter's case swapped) of regular files of ``tree``."""
    out = []
    for dirpath, _dirs, files in sorted(os.walk(tree)):
        for name in sorted(files):
            host = Path(dirpath, name)
            if host.is_symlink():
                continue
            rel = "/" + host.relative_to(tree).as_posix()
            other = rel.swapcase()
            if other != rel and len(other) == len(rel) and fold_case(other) == fold_case(rel):
                out.append((rel, other))
    return out[:limit]


@pytest.mark.parametrize("kind", sorted(OPENERS))
def test_windows_filesystems_resolve_any_case(kind: str) -> None:
    img = built(kind)
    pairs = swapped_files(img.tree)
    assert len(pairs) >= 5, "the tree has files whose names have letters"
    for fs in opened_image(img.image, OPENERS[kind]):
        for rel, other in pairs:
            exact = fs.stat(rel)
            entry = fs.stat(other)
            assert entry.path == exact.path  # reported under its stored name
            assert fold_case(entry.path) == fold_case(rel)
            data = fs.open(other).read_at(0, entry.size)
            assert data == (img.tree / rel[1:]).read_bytes()


def test_ext_stays_case_sensitive() -> None:
    img = ext_image("ext4")
    pairs = swapped_files(img.tree)
    assert pairs
    with img.opened() as fs:
        for rel, other in pairs:
            assert fs.stat(rel).path == rel  # a positive control
            with pytest.raises(PathNotFoundError):
                fs.stat(other)


CASE_TREE = {"Report.txt": b"upper R\n", "report.txt": b"lower r\n", "Only.TXT": b"only one\n"}


def _populate(_tree: Path, mnt: Path) -> None:
    (mnt / "dir").mkdir()
    for name, data in CASE_TREE.items():
        (mnt / "dir" / name).write_bytes(data)


def _verify(_tree: Path, mnt: Path) -> None:
    names = sorted(os.listdir(mnt / "dir"))
    if names != sorted(CASE_TREE):
        raise AssertionError(f"ntfs-3g did not keep the case-distinct names: {names}")
    for name, data in CASE_TREE.items():
        if (mnt / "dir" / name).read_bytes() != data:
            raise AssertionError(f"{name} reads back wrong through ntfs-3g")


@pytest.fixture(scope="module")
def case_ntfs() -> Iterator[Filesystem[Any]]:
    recipe = {"fs": "ntfs", "tree": sorted(CASE_TREE.items()), "size": 8 * MiB, "v": 1}
    build = fs_windows._build_ntfs(Path("/nonexistent"), 8 * MiB, "FRCASE", _populate, _verify)
    yield from opened_image(cached("ntfs-case", recipe, build), ntfs.open_fs)


def test_exact_name_first_then_one_fixed_choice(case_ntfs: Filesystem[Any]) -> None:
    assert case_ntfs.open("/dir/report.txt").read_at(0, 100) == CASE_TREE["report.txt"]
    assert case_ntfs.open("/dir/Report.txt").read_at(0, 100) == CASE_TREE["Report.txt"]
    # neither is exact: the first name in code-point order ("R" < "r"), every time
    for _ in range(3):
        assert case_ntfs.stat("/DIR/REPORT.TXT").path == "/dir/Report.txt"
    assert case_ntfs.stat("/dir/only.txt").path == "/dir/Only.TXT"
    with pytest.raises(PathNotFoundError):
        case_ntfs.stat("/dir/report.txt2")

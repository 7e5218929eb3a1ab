# ruff: noqa: F811 - the fixtures imported from tests/fs/test_ntfs.py are redefined as arguments
"""A page of an NTFS directory from its ``$I30`` index (fs/ntfs_index.py): every name and
whether it is a directory, without an MFT entry per name.

Checked against the source tree of the NTFS test image (every directory: links, the DOS
8.3 alias that is no name of its own, the metadata files the root does not list, reparse
links that are links, not directories), against the library's listing of the same
directories, and on a 70,000-entry directory (thousands of index blocks, a non-resident
bitmap) against ntfs-3g's listing of it. An index block that fails its update sequence
leaves the directory to the library.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from filerestore.blockio import FileReader
from filerestore.errors import FilesystemError
from filerestore.fs import ntfs
from filerestore.fs.base import Filesystem
from filerestore.fs.entry import EntryKind
from filerestore.fs.ntfs import mft_index
from filerestore.fs.ntfs_index import TYPE_BITMAP, _i30_attributes
from filerestore.restore.browse import list_page
from tests.fs.test_ntfs import fs, img  # noqa: F401 - the NTFS image and its filesystem
from tests.imagebuild import fs_special, fs_windows
from tests.imagebuild.fs_windows import NTFS_DOS_ALIAS, NTFS_DOS_ALIASED, BuiltImage
from tests.imagebuild.ntfs_large_dir import FILES, ntfs_large_dir


def _tree_children(tree: Path, directory: str) -> set[tuple[str, bool]]:
    with os.scandir(tree / directory.lstrip("/")) as it:
        return {(e.name, e.is_dir(follow_symlinks=False)) for e in it}


def _tree_dirs(tree: Path) -> list[str]:
    out = ["/"]
    for root, dirs, _ in os.walk(tree):
        rel = Path(root).relative_to(tree)
        out += [
            f"/{rel / d}".replace("/./", "/") for d in dirs if not (Path(root) / d).is_symlink()
        ]
    return sorted(out)


def _located(fs: Filesystem[Any], path: str) -> Any:
    node = fs._resolve(path, follow_final=True)[1]
    return fs._located(node)


def test_names_and_kinds_come_from_the_index_and_match_the_tree(
    fs: Filesystem[Any], img: BuiltImage
) -> None:
    dirs = _tree_dirs(img.tree)
    assert "/many" in dirs and len(dirs) > 5
    for directory in dirs:
        assert _located(fs, directory) is not None, directory  # read from $I30, not the library
        path, named = fs.list_names(directory)
        assert path == directory
        assert len(named) == len(set(named)), directory
        assert set(named) == _tree_children(img.tree, directory), directory
        library = {(e.name, e.kind is EntryKind.DIR) for e in fs.list_dir(directory)}
        assert set(named) == library, directory
    root = {name for name, _ in fs.list_names("/")[1]}
    assert NTFS_DOS_ALIASED in root and NTFS_DOS_ALIAS not in root
    assert not {n for n in root if n.startswith("$")}  # $MFT, $Bitmap ... are not listed


def test_a_page_stats_the_names_it_was_given(fs: Filesystem[Any], img: BuiltImage) -> None:
    names = sorted(name for name, _ in fs.list_names("/many")[1])[:50]
    entries = fs.stat_children("/many", names)
    assert [e.name for e in entries] == names
    for e in entries:
        assert e.size == (img.tree / "many" / e.name).stat().st_size


def test_a_70000_entry_directory_matches_ntfs3g(tmp_path: Path) -> None:
    built = ntfs_large_dir()
    expected = {
        (name, is_dir) for name, is_dir in json.loads((built / "big-listing.json").read_text())
    }
    assert len(expected) > FILES
    with FileReader(built / "ntfs.img") as reader:
        fs = ntfs.open_fs(reader)
        try:
            node = fs._resolve("/big", follow_final=True)[1]
            bitmap = [
                a
                for a in _i30_attributes(fs._raw_entry(mft_index(node)) or b"")
                if a.kind == TYPE_BITMAP
            ]
            assert bitmap and bitmap[0].value is None  # non-resident: read through its runs
            assert fs._located(node) is not None
            assert set(fs.list_names("/big")[1]) == expected
            page = list_page(fs, "/big", limit=300)
            dirs = sorted(n for n, d in expected if d)
            files = sorted((n for n, d in expected if not d), key=lambda n: (n.casefold(), n))
            assert [e.name for e in page.entries] == (dirs + files)[:300]
        finally:
            fs.close()


def test_a_torn_index_block_leaves_the_directory_to_the_library(
    img: BuiltImage, tmp_path: Path
) -> None:
    copy = tmp_path / "torn.img"
    shutil.copyfile(img.image, copy)
    data = bytearray(copy.read_bytes())
    at = data.find(b"INDX")
    assert at > 0 and at % 512 == 0
    data[at + 510] ^= 0xFF  # the first sector's last bytes no longer carry the sequence number
    copy.write_bytes(bytes(data))
    with FileReader(copy) as reader:
        fs = ntfs.open_fs(reader)
        try:
            fallen = []
            for directory in _tree_dirs(img.tree):
                if _located(fs, directory) is None:
                    fallen.append(directory)
                    with contextlib.suppress(FilesystemError):  # the library lists it, or
                        fs.list_names(directory)  # refuses it by name
            assert fallen  # the directory that owns the block
        finally:
            fs.close()


def _library_entries(image: Path) -> dict[str, Any]:
    """Every entry of the image as the library gives it: a listing of each directory (each
    child a library file entry), never a path through the ``$I30`` indexes."""
    with FileReader(image) as reader:
        fs = ntfs.open_fs(reader)
        try:
            return {e.path: e for _, entries in fs.iter_all() for e in entries}
        finally:
            fs.close()


@pytest.mark.parametrize("which", ["tree", "reparse", "large"])
def test_a_path_through_the_indexes_stats_as_the_library_does(which: str) -> None:
    """Each entry stat'ed by its path on a fresh filesystem, so every directory on the way
    is reached through its parent's index (ntfs_lazy.py: a plain directory's metadata from
    its MFT entry, anything else from the library's file entry made then), is the entry the
    library's listing gives; plain directories were read so, and the links (Windows symlinks,
    a junction: directories with a reparse point) were not taken for plain directories."""
    image = {
        "tree": lambda: fs_windows.ntfs_image().image,
        "reparse": fs_special.ntfs_reparse_image,
        "large": lambda: ntfs_large_dir() / "ntfs.img",
    }[which]()
    want = _library_entries(image)
    assert len(want) > 5
    with FileReader(image) as reader:
        fs = ntfs.open_fs(reader)
        try:
            for path, entry in sorted(want.items()):
                if which == "large" and entry.kind is EntryKind.FILE and path[-5] != "0":
                    continue  # one in ten of the 70,000: the directory's lookups are the same
                assert fs.stat(path) == entry, path
            if which == "large":  # a DOS alias is no link; the read-only bit gives the mode
                assert fs.stat("/big/dir 00").nlink == 1
                assert fs.stat("/big/dir 01").mode != fs.stat("/big/dir 02").mode
            if any(e.kind is EntryKind.DIR for e in want.values()):
                assert fs._plain, "no directory was read from its MFT entry"
            links = [p for p, e in want.items() if e.kind is EntryKind.SYMLINK]
            for path in links:
                assert mft_index(fs._resolve(path, follow_final=False)[1]) not in fs._plain
            assert links or which != "tree"  # its Windows symlinks and junction
        finally:
            fs.close()

"""A page of a directory from its names and kinds (``list_names``, ``stat_children``).

On ext (fs/ext_listing.py) and Btrfs the names and kinds come from the directory's own
entries (ext's file type, Btrfs's DIR_INDEX items) and only the page's entries are read.
Checked against the kernel's facts (names, and kinds from its ``st_mode``), against the full
listing (the same names in the same order, the same entries), on ext images with the file
type (ext2/3/4) and without it (``^filetype``, inline-data directories: the full listing is
read instead), and on Btrfs with a subvolume linked in a directory. The first page of a
large directory reads only the page's inodes (counted), in the order the source tree's
names give.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from typing import Any

import pytest

from filerestore.blockio import FileReader
from filerestore.fs import btrfs, ext, ext_listing
from filerestore.fs.base import Filesystem
from filerestore.restore.browse import list_page
from tests.fs.conftest import LinuxImage, btrfs_image, ext_image
from tests.imagebuild.commands import run
from tests.imagebuild.restore_tree import restore_image, restore_tree

KINDS = {
    "ext2": ("ext2", ""),
    "ext2-no-filetype": ("ext2", "^filetype"),
    "ext3": ("ext3", ""),
    "ext4": ("ext4", ""),
    "ext4-inline-data": ("ext4", "inline_data"),
}


@pytest.fixture(scope="module", params=list(KINDS))
def img(request: pytest.FixtureRequest) -> LinuxImage:
    kind, features = KINDS[request.param]
    return ext_image(kind, features=features)


def _directories(img: LinuxImage) -> list[str]:
    dirs = [p for p, f in img.facts.items() if stat.S_ISDIR(f["mode"])]
    return ["/", *sorted(dirs)]


def _kernel_children(img: LinuxImage, directory: str) -> set[tuple[str, bool]]:
    base = directory.rstrip("/")
    return {
        (p[len(base) + 1 :], stat.S_ISDIR(f["mode"]))
        for p, f in img.facts.items()
        if p.rsplit("/", 1)[0] == base and p != directory
    }


def test_names_and_kinds_match_the_kernel_and_the_full_listing(img: LinuxImage) -> None:
    filetype = "filetype" in _field(run("dumpe2fs", "-h", img.image), "Filesystem features")
    with img.opened() as fs:
        for directory in _directories(img):
            path, named = fs.list_names(directory)
            assert path == directory
            want = _kernel_children(img, directory)
            if directory == "/":
                want |= {(name, True) for name in img.extra_root_entries}
            assert set(named) == want, directory
            listed = list(fs.list_dir(directory))
            assert [n for n, _ in named] == [e.name for e in listed]
            assert fs.stat_children(directory, [n for n, _ in named]) == listed
            # the way taken: the directory's own entries where they hold file types
            assert isinstance(fs, ext.ExtFilesystem)
            node = fs._resolve(directory, True)[1]
            typed = ext_listing.named(fs, node) is not None
            assert typed == (filetype and not _inline(img, directory)), directory


def _field(text: str, name: str) -> list[str]:
    """The words after ``name:`` in a tool's output."""
    found = re.search(rf"{name}:\s*([^\n]*)", text)
    assert found is not None, text
    return found.group(1).split()


def _inline(img: LinuxImage, directory: str) -> bool:
    """Whether debugfs says the directory's entries live in its inode (EXT4_INLINE_DATA_FL)."""
    flags = _field(run("debugfs", "-R", f"stat {directory}", img.image), "Flags")[0]
    return bool(int(flags, 16) & 0x10000000)


def test_a_name_the_directory_lacks_is_not_found(img: LinuxImage) -> None:
    with img.opened() as fs:
        _, named = fs.list_names("/docs")
        with pytest.raises(Exception, match="no such file or directory") as info:
            fs.stat_children("/docs", [named[0][0], "not-there.txt"])
        assert info.typename == "PathNotFoundError"


@pytest.fixture(scope="module")
def restore_fs() -> Iterator[Filesystem[Any]]:
    with FileReader(restore_image()) as reader:
        fs = ext.open_fs(reader)
        yield fs
        fs.close()


def test_the_first_page_of_a_large_directory_reads_the_pages_inodes_only(
    restore_fs: Filesystem[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fs = restore_fs
    assert isinstance(fs, ext.ExtFilesystem)
    fs.stat("/many")  # the path's own directories are listed: not what is counted
    read: list[int] = []
    original = fs._read_inodes

    def counting(numbers: list[int]) -> list[Any]:
        read.extend(numbers)
        return original(numbers)

    monkeypatch.setattr(fs, "_read_inodes", counting)
    page = list_page(fs, "/many", limit=50)
    source = sorted(p.name for p in (restore_tree() / "many").iterdir())
    assert len(source) == 10_000 and page.total == 10_000
    assert not any(p.is_dir() for p in (restore_tree() / "many").iterdir())
    want = sorted(source, key=lambda n: (n.casefold(), n))[:50]
    assert [e.name for e in page.entries] == want
    assert len(read) == 50  # the page's inodes, not the directory's 10,000
    for entry in page.entries:
        st = (restore_tree() / "many" / entry.name).lstat()
        assert (entry.size, entry.mode) == (st.st_size, st.st_mode)


def test_btrfs_names_and_kinds_match_the_kernel_and_the_full_listing() -> None:
    img = btrfs_image()
    with img.opened() as fs:
        for directory in _directories(img):
            _, named = fs.list_names(directory)
            assert set(named) == _kernel_children(img, directory), directory
            listed = list(fs.list_dir(directory))
            assert [n for n, _ in named] == [e.name for e in listed]
            assert fs.stat_children(directory, [n for n, _ in named]) == listed
        assert ("subvol", True) in fs.list_names("/")[1]  # a subvolume linked here


def test_the_first_btrfs_page_of_a_large_directory_reads_the_pages_inodes_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    img = btrfs_image()
    with img.opened() as fs:
        assert isinstance(fs, btrfs.BtrfsFilesystem)
        around = {fs.stat("/").inode, fs.stat("/many").inode}  # the path's own directories
        read: set[int] = set()
        original = fs._inode_item

        def counting(node: Any) -> Any:
            read.add(int(node.inum))
            return original(node)

        monkeypatch.setattr(fs, "_inode_item", counting)
        monkeypatch.setattr(fs, "_prefetch_inodes", lambda *a: pytest.fail("listed whole"))
        page = list_page(fs, "/many", limit=50)
        source = [p.name for p in (img.tree / "many").iterdir()]
        assert page.total == len(source) > 1000
        assert [e.name for e in page.entries] == sorted(source, key=lambda n: (n.casefold(), n))[
            :50
        ]
        assert len(read - around) == 50  # the page's inodes, not the directory's
        for entry in page.entries:
            assert entry.inode == img.facts[entry.path]["inode"]

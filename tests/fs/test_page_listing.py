"""A page of a directory from its names and kinds (``list_names``, ``stat_children``).

On ext, Btrfs and XFS (fs/named_dirs.py) the names and kinds come from the directory's own
entries (ext's and XFS's file type, Btrfs's DIR_INDEX items) and only the page's entries are
read; an XFS directory in B+tree form is read from disk too (fs/xfs_dir.py), and one whose
B+tree is damaged (located with xfs_db) is refused by our reader and listed by the library.
Checked against the kernel's facts (names, and kinds from its ``st_mode``), against the full
listing (the same names, in the same order on ext and Btrfs, and the same entries), on ext
images with the file type (ext2/3/4) and without it (``^filetype``, inline-data directories:
the full listing is read instead), on XFS, and on Btrfs with a subvolume linked in a
directory. The first page of a
large directory reads only the page's inodes (counted), in the order the source tree's
names give.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from filerestore.blockio import FileReader
from filerestore.errors import FilesystemError
from filerestore.fs import btrfs, ext, xfs
from filerestore.fs.base import Filesystem
from filerestore.fs.xfs_dir import read_dir_entries
from filerestore.restore.browse import list_page
from tests.fs.conftest import LinuxImage, btrfs_image, ext_image, xfs_image
from tests.imagebuild.commands import run
from tests.imagebuild.fs_linux import loop_mount
from tests.imagebuild.restore_tree import restore_image, restore_tree
from tests.imagebuild.sparse import copy_sparse
from tests.imagebuild.xfs_btree import FILES, SUBDIRS, xfs_btree_image

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
            typed = fs._located(node) is not None
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


@pytest.mark.parametrize("kind", ["btrfs", "xfs"])
def test_names_and_kinds_match_the_kernel_and_the_full_listing_on(kind: str) -> None:
    img = {"btrfs": btrfs_image, "xfs": xfs_image}[kind]()
    with img.opened() as fs:
        for directory in _directories(img):
            _, named = fs.list_names(directory)
            assert set(named) == _kernel_children(img, directory), directory
            listed = list(fs.list_dir(directory))
            # the same names (libfsxfs lists names it cannot decode last: not in one order)
            assert sorted(n for n, _ in named) == sorted(e.name for e in listed)
            by_name = {e.name: e for e in listed}
            names = [n for n, _ in named]
            assert fs.stat_children(directory, names) == [by_name[n] for n in names]
        if kind == "btrfs":
            assert ("subvol", True) in fs.list_names("/")[1]  # a subvolume linked here


def test_an_xfs_directory_in_b_tree_form_is_read_from_disk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its names and kinds as the kernel lists them (a loop mount, d_type), its first page
    without the library listing it, and the entries of the page as the library gives them."""
    image = xfs_btree_image()
    with loop_mount(image, "ro") as mnt:
        kernel = {(e.name, e.is_dir()) for e in os.scandir(mnt / "big")}
    assert len(kernel) == FILES + SUBDIRS
    with FileReader(image) as reader:
        fs = xfs.open_fs(reader)
        try:
            fs.stat("/big")  # the root is listed whole; /big must not be
            monkeypatch.setattr(fs, "_children", lambda node: pytest.fail("listed whole"))
            _, named = fs.list_names("/big")
            assert set(named) == kernel
            page = list_page(fs, "/big", limit=40)  # the order from those names alone
            want = sorted((n for n, is_dir in kernel if not is_dir), key=_folded)
            subdirs = sorted((n for n, is_dir in kernel if is_dir), key=_folded)
            assert [e.name for e in page.entries] == (subdirs + want)[:40]
            monkeypatch.undo()
            listed = {e.name: e for e in fs.list_dir("/big")}  # the library's listing
            assert page.entries == [listed[e.name] for e in page.entries]
        finally:
            fs.close()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda block: b"XXXX" + block[4:], id="magic"),
        pytest.param(lambda block: block[:4] + b"\x00\x05" + block[6:], id="level"),
        pytest.param(lambda block: block[:6] + b"\xff\xff" + block[8:], id="count"),
    ],
)
def test_a_damaged_b_tree_falls_back_to_the_library_or_is_refused(
    damage: Any, tmp_path: Path
) -> None:
    """The B+tree's leaf block (located by xfs_db) damaged: our reader refuses it, and a
    page is still listed (by the library) or refused by name, never wrong."""
    image = xfs_btree_image()
    ino = _xfs_db(image, "inode 128", "p u3.sfdir3.list[0].inumber.i4")  # /big
    ptr = _xfs_db(image, f"inode {ino}", "p u3.bmbt.ptrs[1]")  # its root's one child
    shown = run("xfs_db", "-r", "-c", f"convert fsb {ptr} byte", image)  # "0x96000 (614400)"
    where = int(shown.split("(")[1].split(")")[0])
    copy = tmp_path / "damaged.img"
    copy_sparse(image, copy)
    with copy.open("r+b") as fh:
        fh.seek(where)
        block = fh.read(4096)
        assert block[:4] == b"BMA3"
        fh.seek(where)
        fh.write(damage(block))
    with FileReader(copy) as reader:
        fs = xfs.open_fs(reader)
        try:
            with pytest.raises(FilesystemError):
                read_dir_entries(reader, fs.superblock, int(ino))
            try:
                page = list_page(fs, "/big", limit=20)
            except FilesystemError:
                return  # refused by name: the library found the damage too
            assert len(page.entries) == 20 and page.total == FILES + SUBDIRS
        finally:
            fs.close()


def _xfs_db(image: Path, *commands: str) -> str:
    """The value xfs_db prints for the last of ``commands`` ("field = value")."""
    argv = [arg for command in commands for arg in ("-c", command)]
    return run("xfs_db", "-r", *argv, image).strip().splitlines()[-1].split(" = ")[1]


def _folded(name: str) -> tuple[str, str]:
    return name.casefold(), name


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

"""Inode numbers the view gives the kernel (pure; the mounted checks are in test_operations)."""

from __future__ import annotations

from filerestore.fs.entry import Entry, EntryKind
from filerestore.fuse.inodes import ROOT_INODE, SPACE_SHIFT, InodeTable

ROOT = Entry("", "/", EntryKind.DIR, 0, inode=256)


def entry(path: str, inode: int | None, kind: EntryKind = EntryKind.FILE) -> Entry:
    return Entry(path.rsplit("/", 1)[1], path, kind, 0, inode=inode)


def test_guest_numbers_are_kept_and_the_root_is_fuse_root() -> None:
    table = InodeTable(ROOT)
    assert table.number(ROOT, 0) == ROOT_INODE
    assert table.number(entry("/a", 257), 0) == 257
    # hard links: the same guest inode under two paths is one number
    assert table.number(entry("/b/link", 257), 0) == 257


def test_a_directory_with_the_roots_number_opens_a_new_space() -> None:
    table = InodeTable(ROOT)
    sub = entry("/subvol", 256, EntryKind.DIR)
    space = table.space_of(sub, 0)
    assert space == 1
    assert table.number(sub, space) == 1 << SPACE_SHIFT | 256
    inner = entry("/subvol/file", 257)
    assert table.space_of(inner, space) == space
    assert table.number(inner, space) == 1 << SPACE_SHIFT | 257 != table.number(entry("/f", 257), 0)
    # the same subvolume met again keeps its space; another one gets the next
    assert table.space_of(sub, 0) == 1
    assert table.space_of(entry("/other", 256, EntryKind.DIR), 0) == 2
    # a file that happens to carry the root's number is no subvolume
    assert table.space_of(entry("/odd", 256), 0) == 0


def test_unusable_numbers_get_stable_synthetic_ones() -> None:
    table = InodeTable(ROOT)
    numbers = {table.number(entry(f"/{n}", bad), 0) for n, bad in enumerate([None, 0, 1, 1 << 60])}
    assert len(numbers) == 4
    assert all(n >= 1 << 62 for n in numbers)
    assert table.number(entry("/0", None), 0) == table.number(entry("/0", None), 0)


def test_lookups_are_counted_and_forgotten() -> None:
    table = InodeTable(ROOT)
    table.looked_up(300, "/x", 0, ROOT_INODE)
    table.looked_up(300, "/d/hard-link-of-x", 0, 40)
    node = table.node(300)
    assert node is not None and (node.path, node.parent, node.lookups) == ("/x", ROOT_INODE, 2)
    table.forget(300, 1)
    assert table.node(300) is not None
    table.forget(300, 1)
    assert table.node(300) is None
    table.forget(ROOT_INODE, 10)  # the root is never forgotten
    assert table.node(ROOT_INODE) is not None

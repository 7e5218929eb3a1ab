# References: "ext4 Data Structures and Algorithms" (kernel.org, Documentation/filesystems/
# ext4/), 4.1.1: ext4_dir_entry_2.file_type, which the kernel's readdir hands out as d_type.
"""A page of a large ext directory without reading every entry's inode.

A browse page in name order needs every name of the directory and whether each is a
directory (directories come first), then the metadata of the page's entries alone. ext's
directory entries carry a file type (the filetype feature, on in every ext4 and in ext2/3
made by mke2fs for decades), so the names and kinds come from the directory's blocks, and
only the page's inodes are read: the first page of a 100,000-entry directory reads 100,000
directory entries and a page of inodes, not 100,000 inodes (issue 10's browse target).

The names are those :meth:`~filerestore.fs.base.Filesystem._children_of` gives (the same
order, the same renaming of a duplicate), so a page's names resolve as in any listing.
Without file types (no filetype feature, an inline-data directory) this returns None and the
caller lists the directory the usual way; an entry whose type is unknown (0) on a
filesystem that has them is sorted as a file. The name maps of the last directories are kept,
up to :data:`NAMED_ENTRIES` names in all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from filerestore.errors import PathNotFoundError
from filerestore.fs.base import duplicate_name, shown
from filerestore.fs.ext_dir import FT_DIR

if TYPE_CHECKING:
    from filerestore.fs.ext import ExtFilesystem
    from filerestore.fs.ext_inode import Inode

NAMED_ENTRIES = 250_000  # names kept across the cached directories of one filesystem

#: name -> (inode number, file type), in the directory's order
Named = dict[str, tuple[int, int]]


def named(fs: ExtFilesystem, node: Inode) -> Named | None:
    """The entries of directory ``node`` by name, or None when their kinds are not known
    from the directory alone."""
    cache = fs.named_dirs
    found = cache.get(node.number)
    if found is not None:
        cache.move_to_end(node.number)
        return found
    typed = fs._typed_entries(node) if fs.has_filetype else None
    if typed is None:
        return None
    out: Named = {}
    for name, ino, ftype in typed:
        if name in out:
            name = duplicate_name(name, out)
        out[name] = (ino, ftype)
    cache[node.number] = out
    held = sum(len(m) for m in cache.values())
    while held > NAMED_ENTRIES and len(cache) > 1:
        _, dropped = cache.popitem(last=False)
        held -= len(dropped)
    return out


def names_and_kinds(entries: Named) -> list[tuple[str, bool]]:
    return [(name, ftype == FT_DIR) for name, (_, ftype) in entries.items()]


def numbers(entries: Named, base: str, names: list[str]) -> list[int]:
    """The inode numbers of ``names``; PathNotFoundError for a name the directory lacks."""
    out = []
    for name in names:
        found = entries.get(name)
        if found is None:
            raise PathNotFoundError(f"no such file or directory: {shown(f'{base}/{name}')}")
        out.append(found[0])
    return out

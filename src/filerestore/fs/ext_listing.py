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
filesystem that has them is sorted as a file. The name maps are kept as
:class:`~filerestore.fs.named_dirs.NamedDirs` keeps them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from filerestore.fs.ext_dir import FT_DIR

if TYPE_CHECKING:
    from filerestore.fs.ext import ExtFilesystem
    from filerestore.fs.ext_inode import Inode

#: name -> (inode number, file type), in the directory's order
Named = dict[str, tuple[int, int]]


def named(fs: ExtFilesystem, node: Inode) -> Named | None:
    """The entries of directory ``node`` by name, or None when their kinds are not known
    from the directory alone."""

    def listing() -> Iterator[tuple[str, tuple[int, int]]] | None:
        raw = fs._raw_entries(node) if fs.has_filetype else None
        if raw is None:
            return None
        return ((n.decode("utf-8", "surrogateescape"), (i, t)) for n, i, t in raw)

    return fs.named_dirs.get(node.number, listing)


def names_and_kinds(entries: Named) -> list[tuple[str, bool]]:
    return [(name, ftype == FT_DIR) for name, (_, ftype) in entries.items()]

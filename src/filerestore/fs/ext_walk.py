# References: "ext4 Data Structures and Algorithms" (kernel.org, Documentation/filesystems/
# ext4/): the inode (section 4.1), read through fs/ext_inode.py.
"""The bulk walk of an ext filesystem (``Filesystem.iter_all``), for indexing.

Directory by directory, breadth first, like the generic walk; what makes it several times
faster is the inode: a directory's children are read off the inode table in inode-number
order (``mke2fs -d`` and the kernel's Orlov allocator keep a directory's inodes together, so
that is a few sequential reads per directory), and each inode of a large-inode filesystem is
unpacked by one call of :func:`~filerestore.fs.ext_inode.inode_fields` (the unpacker a
listing's :func:`~filerestore.fs.ext_inode.parse_inode` uses) straight into the Entry, with
no intermediate :class:`~filerestore.fs.ext_inode.Inode` (only directories, which must be
listed next, and symlinks, whose target is read through one, get one).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterator
from typing import TYPE_CHECKING

from filerestore.fs.base import duplicate_name
from filerestore.fs.entry import Entry, EntryKind
from filerestore.fs.ext_inode import LARGE_INODE_SIZE, Inode, inode_fields
from filerestore.fs.libyal import fsdecode

if TYPE_CHECKING:
    from filerestore.fs.ext import ExtFilesystem

_S_IFMT, _S_IFDIR, _S_IFREG, _S_IFLNK = 0o170000, 0o040000, 0o100000, 0o120000
_FILE, _DIR, _SYMLINK, _OTHER = EntryKind.FILE, EntryKind.DIR, EntryKind.SYMLINK, EntryKind.OTHER


def iter_all(
    fs: ExtFilesystem, pending: deque[tuple[Entry, Inode]] | None = None
) -> Iterator[tuple[Entry, list[Entry]]]:
    """See the module docstring; what it yields is Filesystem.iter_all's contract. With
    ``pending``, the walk covers the subtrees of those directories instead of the root's."""
    if pending is None:
        with fs._lock:
            root = fs._root()
            pending = deque([(fs._entry("", "/", root), root)])
    seen: set[Hashable] = {node.number for _, node in pending}
    while pending:
        dentry, node = pending.popleft()
        entries, subdirs = directory(fs, node, dentry.path)
        for entry, inode in subdirs:
            if inode.number not in seen:
                seen.add(inode.number)
                pending.append((entry, inode))
        yield dentry, entries


def directory(
    fs: ExtFilesystem, node: Inode, path: str
) -> tuple[list[Entry], list[tuple[Entry, Inode]]]:
    """The entries of directory ``node`` (at ``path``), and the directories among them."""
    base = "" if path == "/" else path
    with fs._lock:
        listed = fs._dir_entries(node)
        if fs.superblock.inode_size >= LARGE_INODE_SIZE:
            return _entries_large(fs, base, listed)
        return _entries_small(fs, base, listed)


def _unique(listed: list[tuple[str, int]]) -> list[tuple[str, int]]:
    names: set[str] = set()
    out = []
    for name, ino in listed:
        if name in names:
            name = duplicate_name(name, names)
        names.add(name)
        out.append((name, ino))
    return out


def _entries_small(
    fs: ExtFilesystem, base: str, listed: list[tuple[str, int]]
) -> tuple[list[Entry], list[tuple[Entry, Inode]]]:
    listed = _unique(listed)
    inodes = fs._read_inodes([ino for _, ino in listed])
    entries = [
        fs._entry(name, f"{base}/{name}", i) for (name, _), i in zip(listed, inodes, strict=True)
    ]
    subdirs = [(e, i) for e, i in zip(entries, inodes, strict=True) if e.kind is _DIR]
    return entries, subdirs


def _entries_large(
    fs: ExtFilesystem, base: str, listed: list[tuple[str, int]]
) -> tuple[list[Entry], list[tuple[Entry, Inode]]]:
    listed = _unique(listed)
    raw = fs._raw_inodes([ino for _, ino in listed])
    isize = fs.superblock.inode_size
    entries: list[Entry] = []
    subdirs: list[tuple[Entry, Inode]] = []
    for name, ino in listed:
        data, offset = raw[ino]
        fields = inode_fields(data, offset, isize)
        mode, size, _, _, _, uid, gid, links, a_ns, c_ns, m_ns, b_ns, _, _ = fields
        path = f"{base}/{name}"
        fmt = mode & _S_IFMT
        if fmt in (_S_IFDIR, _S_IFLNK):
            inode = Inode(*fields, ino)
            entry = fs._entry(name, path, inode)
            if fmt == _S_IFDIR:
                subdirs.append((entry, inode))
        else:
            kind = _FILE if fmt == _S_IFREG else _OTHER
            entry = Entry(
                name, path, kind, size, mode, uid, gid, m_ns, a_ns, c_ns, b_ns, ino, links
            )
        entries.append(entry)
    return entries, subdirs


__all__ = ["fsdecode", "iter_all"]

"""Large directories by name, for pages of them (see :meth:`Filesystem.list_names`).

A backend whose directory entries say what each entry is (ext's and XFS's file type, Btrfs's
``DIR_INDEX`` items, the ``$FILE_NAME`` copies in NTFS's ``$I30`` index) gives them through
:meth:`Filesystem._located`, and a page's order comes from them while only the page's
entries are looked up (``_nodes_at``). :class:`NamedDirs` keeps, per directory, each name
with its location, named as :meth:`~filerestore.fs.base.Filesystem._children_of` names them
(a duplicate renamed the same way; ext and Btrfs list in the same order too, libfsxfs lists
names it cannot decode last), for the last directories paged through, up to a number of
names.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from filerestore.fs.base import duplicate_name

T = TypeVar("T")
#: names kept across the cached directories of one filesystem: 132 bytes a name held (ext4,
#: 100,020 names of 15-20 characters, tracemalloc; XFS 173), about 19-25 MiB; a larger
#: directory is kept alone while it is the last one paged
NAMED_ENTRIES = 150_000


class NamedDirs(Generic[T]):
    def __init__(self, limit: int = NAMED_ENTRIES) -> None:
        self.limit = limit
        self._dirs: OrderedDict[Hashable, dict[str, T]] = OrderedDict()

    def get(
        self, key: Hashable, listing: Callable[[], list[tuple[str, T]] | None]
    ) -> dict[str, T] | None:
        """Directory ``key``'s entries by name, from ``listing()`` (its entries in order)
        the first time; None when ``listing`` returns None (not known this way)."""
        found = self._dirs.get(key)
        if found is not None:
            self._dirs.move_to_end(key)
            return found
        pairs = listing()
        if pairs is None:
            return None
        out = dict(pairs)
        if len(out) != len(pairs):  # a name twice (corrupt): renamed as _children_of does
            out = {}
            for name, where in pairs:
                if name in out:
                    name = duplicate_name(name, out)
                out[name] = where
        self._dirs[key] = out
        held = sum(len(m) for m in self._dirs.values())
        while held > self.limit and len(self._dirs) > 1:
            _, dropped = self._dirs.popitem(last=False)
            held -= len(dropped)
        return out

    def clear(self) -> None:
        self._dirs.clear()


def signed_locations(entries: list[tuple[bytes, int, int]], dir_type: int) -> list[tuple[str, int]]:
    """Each directory entry (name bytes, inode number, file type) as its name decoded as
    ``os.fsdecode`` decodes it, with its inode number negated for a directory (file type
    ``dir_type``): a location that is one int (ext's and XFS's directory readers; an
    (inode, file type) tuple held 56 bytes more a name, tracemalloc)."""
    names = [entry[0].decode("utf-8", "surrogateescape") for entry in entries]
    signed = [-ino if ftype == dir_type else ino for _, ino, ftype in entries]
    return list(zip(names, signed, strict=True))


def signed_dirs(named: dict[str, int]) -> list[tuple[str, bool]]:
    """Names and whether each is a directory, of locations as :func:`signed_locations` gives."""
    return [(name, ino < 0) for name, ino in named.items()]

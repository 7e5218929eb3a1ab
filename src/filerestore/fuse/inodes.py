"""Inode numbers for the kernel, and the guest path each one stands for.

The kernel knows an entry by the number it was given in a lookup (or a readdirplus reply)
until it forgets it; every request names its inode, so the table keeps one path per number
(any path of a hard-linked file will do: they reach the same data).

Numbers are the guest's own inode numbers, so ``stat`` shows what the guest had and hard
links share one number (and one kernel inode: one page cache). Exceptions:

- the root is always 1 (FUSE_ROOT_ID); ``getattr`` still reports the guest's root inode;
- Btrfs repeats inode numbers in every subvolume (the kernel shows each subvolume with its
  own device number, which one FUSE mount cannot do). A directory carrying the root's inode
  number is the root of another subvolume (on any other format it would be a corrupt
  loop); entries below it get ``space << 48 | inode``, one space per such directory;
- an entry without a usable number (none, 0, 1, or too large to shift) gets a synthetic one
  from the top of the range, stable for its path for the life of the mount.

Used from the event loop's thread only: no lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from filerestore.fs.entry import Entry, EntryKind

ROOT_INODE = 1  # FUSE_ROOT_ID in the kernel's fuse.h
SPACE_SHIFT = 48
_SYNTHETIC_BASE = 1 << 62


@dataclass(slots=True)
class Node:
    """What the kernel holds an inode number for: a guest path, its number space, the number
    of the directory it was found in (for ".."), and how many lookups the kernel has not
    forgotten yet."""

    path: str
    space: int
    parent: int
    lookups: int = 0


class InodeTable:
    def __init__(self, root: Entry) -> None:
        self.root_inode = root.inode
        self._nodes: dict[int, Node] = {ROOT_INODE: Node("/", 0, ROOT_INODE, 1)}
        self._spaces: dict[str, int] = {}
        self._synthetic: dict[tuple[int, str], int] = {}

    def __len__(self) -> int:
        return len(self._nodes)

    def node(self, ino: int) -> Node | None:
        return self._nodes.get(ino)

    def space_of(self, entry: Entry, parent_space: int) -> int:
        """The number space of ``entry``, listed in a directory of ``parent_space``."""
        if (
            entry.kind is EntryKind.DIR
            and entry.inode is not None
            and entry.inode == self.root_inode
            and entry.path != "/"
        ):
            space = self._spaces.get(entry.path)
            if space is None:
                space = self._spaces[entry.path] = len(self._spaces) + 1
            return space
        return parent_space

    def number(self, entry: Entry, space: int) -> int:
        """The inode number the kernel is given for ``entry`` (see the module docstring)."""
        if entry.path == "/":
            return ROOT_INODE
        guest = entry.inode
        if guest is not None and 1 < guest < 1 << SPACE_SHIFT:
            return guest if space == 0 else space << SPACE_SHIFT | guest
        key = (space, entry.path)
        ino = self._synthetic.get(key)
        if ino is None:
            ino = self._synthetic[key] = _SYNTHETIC_BASE + len(self._synthetic)
        return ino

    def looked_up(self, ino: int, path: str, space: int, parent: int) -> None:
        """The kernel was given ``ino`` once more (a lookup or a readdirplus entry), found
        in directory ``parent``."""
        node = self._nodes.get(ino)
        if node is None:
            node = self._nodes[ino] = Node(path, space, parent)
        node.lookups += 1

    def forget(self, ino: int, count: int) -> None:
        node = self._nodes.get(ino)
        if node is None or ino == ROOT_INODE:
            return
        node.lookups -= count
        if node.lookups <= 0:
            del self._nodes[ino]

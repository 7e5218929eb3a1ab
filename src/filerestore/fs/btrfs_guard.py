# References: https://btrfs.readthedocs.io/en/latest/dev/On-disk-format.html (struct
# btrfs_header level, btrfs_key_ptr, keys sorted by (objectid, type, offset)); the kernel's
# fs/btrfs/tree-checker.c (a child is one level below its parent, keys strictly increase).
"""Bounded work in dissect.btrfs 1.10's tree walks.

dissect's cursor trusts the tree: a node that points to itself or to an ancestor makes a
descent run for ever (its path list growing), and a node whose pointers all name one child
makes a leaf walk visit that child again and again. Two rules of every valid Btrfs tree bound
the work, and are checked here on dissect's own cursor (its class is patched once, when the
first Btrfs volume is opened, because dissect builds its trees internally):

- a child node is exactly one level below the node that points to it, and its first key is
  the key its parent's pointer carries (tree-checker's btrfs_verify_level_key), so a descent
  takes at most ``MAX_LEVEL`` steps and, with keys sorted inside every node
  (btrfs_items.check_node), no node is reached through two pointers;
- leaf keys strictly increase from one leaf to the next, so a walk never sees a leaf twice
  and visits at most every leaf of the volume once.
"""

from __future__ import annotations

from typing import Any

from filerestore.errors import FilesystemError

MAX_LEVEL = 8  # BTRFS_MAX_LEVEL


def _key(item: Any) -> tuple[int, int, int]:
    key = item.key
    return int(key.objectid), int(key.type), int(key.offset)


def install() -> None:
    """Patch dissect.btrfs's Cursor (once) with the two checks above."""
    from dissect.btrfs import tree

    cursor = tree.Cursor
    if getattr(cursor, "_filerestore_guarded", False):
        return
    push, next_leaf = cursor.push, cursor.next

    def checked_push(self: Any, address: int, initial_index: int = 0) -> None:
        parent = parent_key = None
        if self._header is not None:
            parent = int(self._header.level)
            parent_key = _key(self._read_item(self._index))
        push(self, address, initial_index)
        level = int(self._header.level)
        if len(self._path) > MAX_LEVEL + 1:
            raise FilesystemError("btrfs: tree deeper than 8 levels (corrupt)")
        if parent is None:
            return
        if level != parent - 1:
            raise FilesystemError(
                f"btrfs: tree node at {address:#x} is at level {level} below a node at level "
                f"{parent} (a loop or a corrupt tree)"
            )
        first = _key(self._read_item(0))
        if first != parent_key:
            raise FilesystemError(
                f"btrfs: tree node at {address:#x} starts at key {first}, its parent points "
                f"to it with {parent_key} (corrupt)"
            )

    def checked_next(self: Any) -> None:
        before = _key(self.item())
        next_leaf(self)
        after = _key(self.item())
        if after <= before:
            raise FilesystemError(
                f"btrfs: tree keys go back from {before} to {after} (a loop or a corrupt tree)"
            )

    cursor.push = checked_push
    cursor.next = checked_next
    cursor._filerestore_guarded = True

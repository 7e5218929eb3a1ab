# References: https://btrfs.readthedocs.io/en/latest/dev/On-disk-format.html (struct
# btrfs_header: level at 0x64, item count at 0x60; struct btrfs_key_ptr; struct btrfs_item;
# items sorted by key (objectid, type, offset) across the leaves of a tree); the kernel's
# fs/btrfs/tree-checker.c (a child is one level below its parent and begins at the key its
# parent's pointer carries).
"""A Btrfs tree read block by block here: a key's item, and the leaves from a key on.

dissect.btrfs's cursor takes a Python step per item and per leaf, and a search costs about
175 us; a listing of 100,000 directory entries and a page's 300 inode items spent most of
their time there. This reader descends by ``bisect`` over each node's keys (unpacked at once)
and hands the callers whole leaves, which they decode a leaf at a time
(btrfs_items.dir_index, scan_items).

Every node is checked as it is read (btrfs_items.check_node: checksum, address, filesystem,
item count, keys in order), and every descent against the tree-checker's rules: a child is
one level below its parent and begins at the key its parent's pointer carries. A walk over
leaves keeps the addresses it has visited and refuses one seen twice, so a corrupt tree
costs at most one read of each of its nodes, and a clean FilesystemError.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable, Iterator

from filerestore.errors import FilesystemError
from filerestore.fs.btrfs_items import (
    KEY_PTR,
    KEY_PTR_SIZE,
    LEAF_HEADER_SIZE,
    LEAF_ITEM_SIZE,
    MAX_LEVEL,
)

Key = tuple[int, int, int]
_LEAF_KEY = struct.Struct("<QBQ8x")  # an item header's key (its data offset and size skipped)
CACHED_NODES = 512  # 8 MiB of 16 KiB nodes: a page's searches share their upper levels


class RawTree:
    """One tree (a subvolume's, from its root node's address), read through
    ``read_node(address)``, which returns the checked node bytes."""

    def __init__(self, read_node: Callable[[int], bytes], root: int) -> None:
        self._read_node = read_node
        self.root = root
        self._nodes: dict[int, tuple[bytes, list[Key], list[int]]] = {}

    def _node(self, address: int) -> tuple[bytes, list[Key], list[int]]:
        """The node's bytes, its keys, and (internal nodes) its children's addresses."""
        got = self._nodes.get(address)
        if got is None:
            block = self._read_node(address)
            (count,) = struct.unpack_from("<I", block, 0x60)  # check_node: they fit
            if block[0x64]:
                ptrs = list(
                    KEY_PTR.iter_unpack(
                        block[LEAF_HEADER_SIZE : LEAF_HEADER_SIZE + count * KEY_PTR_SIZE]
                    )
                )
                got = (block, [p[:3] for p in ptrs], [p[3] for p in ptrs])
            else:
                heads = block[LEAF_HEADER_SIZE : LEAF_HEADER_SIZE + count * LEAF_ITEM_SIZE]
                got = (block, list(_LEAF_KEY.iter_unpack(heads)), [])
            if len(self._nodes) >= CACHED_NODES:
                self._nodes.clear()
            self._nodes[address] = got
        return got

    def _child(self, parent: bytes, keys: list[Key], children: list[int], i: int) -> int:
        """Child ``i`` of a node, checked to be one level below and to begin at its key."""
        address = children[i]
        block, child_keys, _ = self._node(address)
        if block[0x64] != parent[0x64] - 1 or not child_keys or child_keys[0] != keys[i]:
            raise FilesystemError(
                f"btrfs: tree node at {address:#x} is not the child its parent points to "
                "(a loop or a corrupt tree)"
            )
        return address

    def find(self, key: Key) -> bytes | None:
        """The data of the item with exactly ``key``; None when the tree holds none."""
        leaf, index = self._leaf_of(key)
        block, keys, _ = self._node(leaf)
        if index >= len(keys) or keys[index] != key:
            return None
        at = LEAF_HEADER_SIZE + index * LEAF_ITEM_SIZE + 17  # past the item's key
        offset, size = struct.unpack_from("<II", block, at)
        start = LEAF_HEADER_SIZE + offset  # check_node: the data lies in the leaf
        return bytes(block[start : start + size])

    def _leaf_of(self, key: Key) -> tuple[int, int]:
        """The leaf that holds ``key`` or would, and the index of the first item at or
        after it there."""
        address = self.root
        for _ in range(MAX_LEVEL + 1):
            block, keys, children = self._node(address)
            if not block[0x64]:
                return address, bisect.bisect_left(keys, key)
            i = max(0, bisect.bisect_right(keys, key) - 1)
            address = self._child(block, keys, children, i)
        raise FilesystemError("btrfs: tree deeper than 8 levels (corrupt)")

    def leaves(self, objectid: int, key_type: int) -> Iterator[tuple[bytes, bytes]]:
        """(leaf bytes, its item headers from the first item at or after key (objectid,
        key_type, 0)) of each leaf from that key on, in key order, until the caller stops."""
        start: Key = (objectid, key_type, 0)
        last: Key | None = None
        for n, address in enumerate(self._leaves_from(start)):
            block, keys, _ = self._node(address)
            first = bisect.bisect_left(keys, start) if n == 0 else 0
            if first >= len(keys):
                continue
            if last is not None and keys[first] <= last:
                raise FilesystemError("btrfs: tree keys go back (a loop or a corrupt tree)")
            last = keys[-1]
            start_at = LEAF_HEADER_SIZE + first * LEAF_ITEM_SIZE
            yield block, block[start_at : LEAF_HEADER_SIZE + len(keys) * LEAF_ITEM_SIZE]

    def _leaves_from(self, start: Key) -> Iterator[int]:
        """The addresses of the leaves from the one that holds ``start`` (or would) on, in
        order: a descent that keeps, per level, the node and the index of the child it took,
        each node visited at most once."""
        path: list[tuple[bytes, list[Key], list[int], int]] = []
        seen: set[int] = set()
        address, first = self.root, True
        while True:
            if address in seen:
                raise FilesystemError(f"btrfs: tree node at {address:#x} reached twice (a loop)")
            seen.add(address)
            if len(path) > MAX_LEVEL:
                raise FilesystemError("btrfs: tree deeper than 8 levels (corrupt)")
            block, keys, children = self._node(address)
            if block[0x64]:
                # towards ``start`` on the way to the first leaf, then each subtree's first
                i = max(0, bisect.bisect_right(keys, start) - 1) if first else 0
                path.append((block, keys, children, i))
                address = self._child(block, keys, children, i)
                continue
            first = False
            yield address
            # up to the nearest node with a child after the one taken, then down that child
            while path and path[-1][3] + 1 >= len(path[-1][2]):
                path.pop()
            if not path:
                return
            node, node_keys, node_children, i = path.pop()
            path.append((node, node_keys, node_children, i + 1))
            address = self._child(node, node_keys, node_children, i + 1)

# References: https://btrfs.readthedocs.io/en/latest/dev/On-disk-format.html (struct
# btrfs_header: generation at 0x50, level at 0x64; struct btrfs_key_ptr: key, blockptr,
# generation; struct btrfs_item; DIR_INDEX items); "btrfs send" (the kernel's
# fs/btrfs/send.c, btrfs_compare_trees) for the idea: two trees share every subtree whose
# root block (address and generation) both point to, so only the blocks that differ are read.
"""What changed between two states of one Btrfs filesystem, from the tree blocks that differ.

Btrfs never writes a committed tree block in place (copy on write): a block at the same
logical address with the same generation holds the same subtree in both states. The two
states' filesystem trees are descended together, a level at a time from the highest, and
every block both point to is dropped; what is left at the bottom are the leaves of each
state that the other does not share. Their items, compared as (key, data), are exactly what
one tree holds and the other does not: the objects (inodes) they belong to changed, and the
DIR_INDEX items among them are each directory's added and removed entries, without listing
one.

Each subvolume has a tree of its own (and its own inode numbers): they are compared one by
one, by subvolume id (``subvolume_changes``), a tree whose root block is the same in both
states skipped at once.

Limits, where the caller must walk instead (``tree_changes`` or ``subvolume_changes``
returns None): the states do not hold the same subvolumes, a directory entry that links a
subvolume differs, or more than :data:`MAX_LEAVES` leaves or :data:`MAX_NODES` nodes of a
level above them differ in one tree (memory).
A corrupt tree block (a checksum, a level that is not one below its parent's) raises
FilesystemError.
"""

from __future__ import annotations

import functools
import operator
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from filerestore.errors import FilesystemError
from filerestore.fs.btrfs import BtrfsFilesystem
from filerestore.fs.btrfs_items import (
    DIR_INDEX_KEY,
    DIR_ITEM,
    INODE_ITEM_KEY,
    KEY_PTR,
    KEY_PTR_SIZE,
    LEAF_HEADER_SIZE,
    LEAF_ITEM_SIZE,
    MAX_LEVEL,
    NOT_NAMES,
    check_header,
)

FS_TREE_OBJECTID = 5  # the top-level subvolume
FIRST_FREE_OBJECTID = 256  # the first inode number of a subvolume (its root directory)
_KEY = struct.Struct("<QBQ")  # objectid, type, offset
#: unshared leaves read per state at most (64 MiB of 16 KiB nodes, held with their items):
#: a change that large is walked instead, which holds one directory at a time
MAX_LEAVES = 4096
#: unshared nodes above the leaves expanded per level at most (their pointers are held)
MAX_NODES = 256

Pair = tuple[str, int]  # (name, inode)


@dataclass
class TreeChanges:
    """The objects whose items differ, and each directory's added and removed entries."""

    changed: set[int] = field(default_factory=set)
    added: dict[int, set[Pair]] = field(default_factory=dict)
    removed: dict[int, set[Pair]] = field(default_factory=dict)
    #: inodes whose INODE_ITEM the new state no longer holds
    gone: set[int] = field(default_factory=set)
    #: the new state's INODE_ITEM data of every inode whose item differs
    inode_items: dict[int, bytes] = field(default_factory=dict)


def subvolume_changes(new: BtrfsFilesystem, old: BtrfsFilesystem) -> dict[int, TreeChanges] | None:
    """The changes of every subvolume whose tree differs between the states (by subvolume
    id; the default one's too); None where the walk must be taken, or when the two states
    do not hold the same subvolumes (one made or deleted: its link is a directory entry
    that the walk reads)."""
    ids = [sorted(sid for sid, _ in fs.subvolumes()) for fs in (new, old)]
    if ids[0] != ids[1]:
        return None
    out: dict[int, TreeChanges] = {}
    for sid in ids[0]:
        roots = (_tree_root(new, sid), _tree_root(old, sid))
        if roots[0] == roots[1]:
            continue  # the same root block: the same tree (copy on write)
        changes = tree_changes(new, old, sid, roots)
        if changes is None:
            return None
        out[sid] = changes
    return out


Root = tuple[int, int, int]  # a tree's root block: address, generation, level


def _tree_root(fs: BtrfsFilesystem, subvolume_id: int) -> Root:
    """The root block of a subvolume's filesystem tree."""
    with fs._lock, fs._errors(f"open subvolume {subvolume_id}"):
        tree = fs._fs.open_subvolume(subvolume_id).tree
        address = int(tree.root_offset)
    block = _block(fs, address)
    return address, _generation(block), block[0x64]


def tree_changes(
    new: BtrfsFilesystem,
    old: BtrfsFilesystem,
    subvolume_id: int | None = None,
    roots: tuple[Root, Root] | None = None,
) -> TreeChanges | None:
    """The changes from ``old`` to ``new`` of one subvolume's tree (the default one's
    without ``subvolume_id``; ``roots``: its root blocks in each state, when known; see the
    module docstring); None where the walk must be taken."""
    if subvolume_id is None:
        subvolume_id = int(new._root().subvolume.objectid)
    if roots is None:
        roots = (_tree_root(new, subvolume_id), _tree_root(old, subvolume_id))
    leaves = _unshared_leaves(new, old, roots)
    if leaves is None:
        return None
    added, removed = _differing_items(*leaves)
    out = TreeChanges()
    for items, into in ((added, out.added), (removed, out.removed)):
        for item in items:
            objectid, typ, _ = _KEY.unpack_from(item)
            data = item[_KEY.size :]
            out.changed.add(objectid)
            if typ == DIR_INDEX_KEY:
                pair = _dir_pair(data)
                if pair is None:
                    return None
                if pair[0]:
                    into.setdefault(objectid, set()).add(pair)
            elif typ == INODE_ITEM_KEY and into is out.added:
                out.inode_items[objectid] = data
    # an inode item the old state held that is not in both trees' shared leaves: had the new
    # state one under that key, it would differ too (keys are unique in a tree)
    out.gone = {
        o for o, t, _ in (_KEY.unpack_from(i) for i in removed) if t == INODE_ITEM_KEY
    } - set(out.inode_items)
    for objectid in set(out.added) & set(out.removed):  # one name dropped and put back
        both = out.added[objectid] & out.removed[objectid]
        out.added[objectid] -= both
        out.removed[objectid] -= both
    return out


def _dir_pair(data: bytes) -> Pair | None:
    """(name, inode) of a DIR_INDEX item, ("", 0) for a name no listing shows; None for an
    entry that links a subvolume."""
    if len(data) < 30:
        raise FilesystemError("btrfs: truncated directory item")
    location, location_type, _, _, _, name_len, _ = DIR_ITEM.unpack_from(data)
    raw = data[30 : 30 + name_len]
    if len(raw) != name_len:
        raise FilesystemError("btrfs: truncated directory item name")
    if location_type != INODE_ITEM_KEY:
        return None
    if raw in NOT_NAMES or b"/" in raw:
        return "", 0
    return raw.decode("utf-8", "surrogateescape"), location


def _unshared_leaves(
    new: BtrfsFilesystem, old: BtrfsFilesystem, roots: tuple[Root, Root]
) -> tuple[list[bytes], list[bytes]] | None:
    """The leaves of each state's tree of a subvolume (its root blocks ``roots``) that the
    other does not point to; None when either side has more than :data:`MAX_LEAVES` of them
    (or :data:`MAX_NODES` at a level above)."""
    a, b = ({(address, generation): level} for address, generation, level in roots)
    leaves: tuple[list[bytes], list[bytes]] = ([], [])
    while True:
        for key in a.keys() & b.keys():
            if a.pop(key) != b.pop(key):
                raise FilesystemError(f"btrfs: tree node at {key[0]:#x} has two levels")
        top = max([*a.values(), *b.values()], default=-1)
        if top <= 0:
            break
        if max(len(a), len(b)) > MAX_NODES:  # each expands to at most 493 pointers
            return None
        for fs, side in ((new, a), (old, b)):
            for key in [k for k, level in side.items() if level == top]:
                del side[key]
                for child in _children(fs, key, top):
                    side[child] = top - 1
    if max(len(a), len(b)) > MAX_LEAVES:
        return None
    for fs, side, out in ((new, a, leaves[0]), (old, b, leaves[1])):
        for address, generation in side:
            block = _block(fs, address)
            _check(block, address, generation, 0)
            out.append(block)
    return leaves


def _generation(block: bytes) -> int:
    return int.from_bytes(block[0x50:0x58], "little")


def _check(block: bytes, address: int, generation: int, level: int) -> None:
    if block[0x64] != level or _generation(block) != generation or level >= MAX_LEVEL:
        raise FilesystemError(
            f"btrfs: tree node at {address:#x} is not the level-{level} node of generation "
            f"{generation} its parent points to (corrupt)"
        )


def _children(fs: BtrfsFilesystem, key: tuple[int, int], level: int) -> list[tuple[int, int]]:
    """(address, generation) of each child of the node ``key`` (its header checked, and its
    level and generation those its parent gave)."""
    address, generation = key
    block = _block(fs, address)
    _check(block, address, generation, level)
    (count,) = struct.unpack_from("<I", block, 0x60)  # check_node: they fit in the node
    ptrs = block[LEAF_HEADER_SIZE : LEAF_HEADER_SIZE + count * KEY_PTR_SIZE]
    return [(ptr, gen) for _, _, _, ptr, gen in KEY_PTR.iter_unpack(ptrs)]


def _block(fs: BtrfsFilesystem, address: int) -> bytes:
    """The tree block at logical ``address``, its header alone checked (btrfs_items.
    check_header): its items are parsed here with every slice bounded by the block, so their
    order need not be checked."""
    return fs.tree_node(address, check_header)


class _Leaf:
    """A leaf's item headers, unpacked at once: keys (as bytes), data offsets and sizes, and
    whether each item's data ends where the one before it begins (as Btrfs packs them)."""

    __slots__ = ("block", "contiguous", "heads", "keys", "offsets", "sizes")

    def __init__(self, block: bytes) -> None:
        (count,) = struct.unpack_from("<I", block, 0x60)  # check_header: they fit
        self.block = block
        self.heads = block[LEAF_HEADER_SIZE : LEAF_HEADER_SIZE + count * LEAF_ITEM_SIZE]
        flat = _heads_of(count).unpack(self.heads)  # one call: no tuple per item
        self.keys: tuple[bytes, ...] = flat[0::3]
        self.offsets: tuple[int, ...] = flat[1::3]
        self.sizes: tuple[int, ...] = flat[2::3]
        ends = tuple(map(operator.add, self.offsets[1:], self.sizes[1:]))
        self.contiguous = ends == self.offsets[:-1]

    def items(self, lo: int, hi: int) -> list[bytes]:
        """Items ``lo`` to ``hi`` as key bytes followed by their data."""
        block, at = self.block, LEAF_HEADER_SIZE
        return [
            key + block[at + off : at + off + size]
            for key, off, size in zip(
                self.keys[lo:hi], self.offsets[lo:hi], self.sizes[lo:hi], strict=True
            )
        ]


@functools.lru_cache(maxsize=64)
def _heads_of(count: int) -> struct.Struct:
    """The struct of ``count`` item headers (at most 2,617 in a 64 KiB leaf; a leaf holds
    about 140 in 16 KiB; 64 kept: at most 16 MiB of them)."""
    return struct.Struct("<" + "17sII" * count)


def _differing_items(new: list[bytes], old: list[bytes]) -> tuple[set[bytes], set[bytes]]:
    """The items (key bytes and data) of the ``new`` leaves that the ``old`` ones do not
    hold, and the other way round. A new leaf and an old one that begin at the same key
    are mostly the same items: the runs both begin and end with are compared as bytes
    (:func:`_same_ends`) and only the items between them one by one."""
    olds = {blk[LEAF_HEADER_SIZE : LEAF_HEADER_SIZE + _KEY.size]: _Leaf(blk) for blk in old}
    now: set[bytes] = set()
    before: set[bytes] = set()
    for blk in new:
        x = _Leaf(blk)
        y = olds.pop(blk[LEAF_HEADER_SIZE : LEAF_HEADER_SIZE + _KEY.size], None)
        if y is None:
            now.update(x.items(0, len(x.keys)))
            continue
        head, tail = _same_ends(x, y)
        now.update(x.items(head, len(x.keys) - tail))
        before.update(y.items(head, len(y.keys) - tail))
    for y in olds.values():
        before.update(y.items(0, len(y.keys)))
    return now - before, before - now


def _same_ends(x: _Leaf, y: _Leaf) -> tuple[int, int]:
    """How many items two leaves begin with and end with that are the same (key, size and
    data bytes), found by bisection over slice comparisons (done in C), not item by item."""
    most = min(len(x.keys), len(y.keys))

    def same_head(k: int) -> bool:
        # the first k headers equal, offsets included, and the bytes from the lowest of
        # those offsets to the leaf's end: every one of the k items' data is in that span
        if x.heads[: k * LEAF_ITEM_SIZE] != y.heads[: k * LEAF_ITEM_SIZE]:
            return False
        low = LEAF_HEADER_SIZE + min(x.offsets[:k], default=len(x.block))
        return x.block[low:] == y.block[low:]

    def same_tail(k: int) -> bool:
        # the last k keys and sizes equal: in leaves packed as Btrfs packs them their data
        # lie at one shift from each other, from the last item's offset on
        if not k:
            return True
        nx, ny = len(x.keys) - k, len(y.keys) - k
        if x.keys[nx:] != y.keys[ny:] or x.sizes[nx:] != y.sizes[ny:]:
            return False
        at = LEAF_HEADER_SIZE
        lo_x, lo_y = x.offsets[-1], y.offsets[-1]
        hi_x = x.offsets[nx] + x.sizes[nx]  # the first of the k items' data ends the span
        return x.block[at + lo_x : at + hi_x] == y.block[at + lo_y : at + lo_y + hi_x - lo_x]

    head = _longest(same_head, most)
    tail = _longest(same_tail, most - head) if x.contiguous and y.contiguous else 0
    return head, tail


def _longest(holds: Callable[[int], bool], most: int) -> int:
    """The largest k <= ``most`` for which ``holds(k)`` (true for 0, and for every k below
    one it is true for)."""
    lo, hi = 0, most
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if holds(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo

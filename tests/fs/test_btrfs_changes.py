"""fs/btrfs_changes.py's comparison of the leaves two states do not share: the items it says
differ must be the plain difference of every item of one set of leaves against the other's,
whatever the leaves hold. Leaves are laid out as Btrfs lays them out (the on-disk format:
item headers after the 101-byte header, each item's data packed from the leaf's end in
item order), then changed the ways a transaction changes them (data rewritten in place,
grown or shrunk, items inserted and deleted, a leaf split where another did), and a few
are laid out out of order, as a hostile image may. And a kernel-made step of the index
chain: each directory's added and removed entries, with the kernel's inode numbers."""

from __future__ import annotations

import itertools
import random
import struct
from pathlib import Path

import pytest

from filerestore.blockio import CachedReader
from filerestore.fs import open_filesystem
from filerestore.fs.btrfs import BtrfsFilesystem
from filerestore.fs.btrfs_changes import _differing_items, subvolume_changes, tree_changes
from filerestore.image import open_image
from filerestore.volume import list_volumes
from tests.fs.conftest import btrfs_image
from tests.imagebuild.index_chain import facts, index_chain

Key = tuple[int, int, int]
HEADER, ITEM = 101, 25


def leaf(items: list[tuple[Key, bytes]], size: int = 4096, packed: bool = True) -> bytes:
    block = bytearray(size)
    struct.pack_into("<I", block, 0x60, len(items))
    end = size - HEADER
    spots = []
    for data in (d for _, d in items):
        end -= len(data)
        spots.append(end)
    if not packed:  # the same data, laid out in another order than the items'
        spots.reverse()
        end = size - HEADER
        for i in range(len(items) - 1, -1, -1):
            end -= len(items[i][1])
            spots[i] = end
    for i, ((key, data), at) in enumerate(zip(items, spots, strict=True)):
        struct.pack_into("<QBQII", block, HEADER + ITEM * i, *key, at, len(data))
        block[HEADER + at : HEADER + at + len(data)] = data
    return bytes(block)


def naive(new: list[bytes], old: list[bytes]) -> tuple[set[bytes], set[bytes]]:
    def every(blocks: list[bytes]) -> set[bytes]:
        out = set()
        for block in blocks:
            (count,) = struct.unpack_from("<I", block, 0x60)
            for i in range(count):
                at = HEADER + ITEM * i
                off, size = struct.unpack_from("<II", block, at + 17)
                out.add(block[at : at + 17] + block[HEADER + off : HEADER + off + size])
        return out

    a, b = every(new), every(old)
    return a - b, b - a


def split(items: list[tuple[Key, bytes]], cuts: list[int], packed: bool) -> list[bytes]:
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(items)), len(items)]
    return [leaf(items[lo:hi], packed=packed) for lo, hi in itertools.pairwise(bounds) if hi > lo]


def edited(rng: random.Random, items: list[tuple[Key, bytes]]) -> list[tuple[Key, bytes]]:
    out = dict(items)
    keys = sorted(out)
    for _ in range(rng.randint(0, 6)):
        how = rng.choice(["rewrite", "grow", "shrink", "insert", "delete"])
        key = rng.choice(keys)
        if how == "rewrite" and out.get(key):
            data = bytearray(out[key])
            data[rng.randrange(len(data))] ^= 0xFF
            out[key] = bytes(data)
        elif how == "grow" and key in out:
            out[key] += b"+" * rng.randint(1, 8)
        elif how == "shrink" and out.get(key):
            out[key] = out[key][: rng.randrange(len(out[key]))]
        elif how == "insert":
            out[(key[0], key[1], key[2] + 1)] = rng.randbytes(rng.randint(0, 40))
        elif how == "delete":
            out.pop(key, None)
    return sorted(out.items())


def test_the_differing_items_are_the_plain_difference() -> None:
    rng = random.Random(20261201)
    for round_ in range(3000):
        items = sorted(
            {
                (256 + rng.randrange(60), rng.choice([1, 12, 84, 96, 108]), rng.randrange(9) * 2): (
                    rng.randbytes(rng.randint(0, 40))
                )
                for _ in range(rng.randint(1, 120))
            }.items()
        )
        cuts = [rng.randrange(len(items) + 1) for _ in range(rng.randint(0, 4))]
        old = split(items, cuts, packed=True)
        now = edited(rng, items)
        # mostly the same leaf boundaries (paired by first key), sometimes another split
        new_cuts = cuts if rng.random() < 0.7 else [rng.randrange(len(now) + 1) for _ in cuts]
        new = split(now, new_cuts, packed=round_ % 10 != 0)
        assert _differing_items(new, old) == naive(new, old), round_


def _open(image: Path) -> BtrfsFilesystem:
    disk = open_image(str(image))
    (volume,) = [v for v in list_volumes(disk) if not v.is_container]
    fs = open_filesystem(CachedReader(volume.reader))
    assert isinstance(fs, BtrfsFilesystem)
    return fs


def test_the_changes_of_a_kernel_made_step_are_the_recipes() -> None:
    """Step 1 of tests/imagebuild/index_chain.py, made through the kernel: every directory's
    added and removed entries, with the kernel's inode numbers (st_ino of each state)."""
    pytest.importorskip("dissect.btrfs", reason="the [btrfs] extra is not installed")
    chain = index_chain("btrfs")
    before, after = facts(chain, 0), facts(chain, 1)
    ino = {p: f["inode"] for p, f in after.items()}
    old_ino = {p: f["inode"] for p, f in before.items()}
    new, old = _open(chain / "inc1.qcow2"), _open(chain / "base.qcow2")
    try:
        changes = tree_changes(new, old)
    finally:
        new.close()
        old.close()
    assert changes is not None
    added = {d: pairs for d, pairs in changes.added.items() if pairs}
    removed = {d: pairs for d, pairs in changes.removed.items() if pairs}
    assert added == {
        ino["/docs"]: {
            ("report-2025.xlsx", ino["/docs/report-2025.xlsx"]),
            ("report-2024-final.xlsx", ino["/docs/report-2024-final.xlsx"]),
        },
        ino["/docs/old"]: {("beta", ino["/docs/old/beta"])},
        ino["/photos"]: {("copy.jpg", ino["/photos/copy.jpg"])},
        ino["/many"]: {("f0300.txt", ino["/many/f0300.txt"])},
    }
    assert removed == {
        ino["/docs"]: {("report-2024.xlsx", old_ino["/docs/report-2024.xlsx"])},
        ino["/photos"]: {("img_0005.jpg", old_ino["/photos/img_0005.jpg"])},
        ino["/projects"]: {("beta", old_ino["/projects/beta"])},
        ino["/many"]: {("f0200.txt", old_ino["/many/f0200.txt"])},
    }
    assert changes.gone == {old_ino["/photos/img_0005.jpg"], old_ino["/many/f0200.txt"]}
    # chmod, rewrite, a new link's count: their inodes changed, the untouched ones did not
    for path in ("/docs/old/notes.txt", "/many/f0100.txt", "/photos/img_0001.jpg"):
        assert ino[path] in changes.changed, path
    assert ino["/many/f0001.txt"] not in changes.changed


def test_subvolumes_are_compared_each_by_id() -> None:
    """Each subvolume has its own tree and inode numbers: they are compared by subvolume id
    (this image's ``/subvol``, made by ``btrfs subvolume create``, beside the top level).
    The image against itself: every tree's root block is the same, nothing differs."""
    pytest.importorskip("dissect.btrfs", reason="the [btrfs] extra is not installed")
    img = btrfs_image()
    with img.opened() as new, img.opened() as old:
        assert isinstance(new, BtrfsFilesystem) and isinstance(old, BtrfsFilesystem)
        ids = {sid: path for sid, path in new.subvolumes()}
        assert "/subvol" in ids.values() and len(ids) >= 2
        assert subvolume_changes(new, old) == {}
        for sid in ids:
            changes = tree_changes(new, old, sid)
            assert changes is not None and not changes.changed and not changes.added

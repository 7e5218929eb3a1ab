"""The changed-blocks pass's comparison of two versions of an ext directory block
(``ext_changes._block_changes``, which parses only the entries around the bytes that differ)
against the difference of the two blocks parsed whole.

The blocks are laid out as the kernel's fs/ext4/namei.c changes them: a removed entry's
space goes to the rec_len of the entry before it (the first entry of a block gets inode 0
instead), an added entry takes the slack at the end of an entry whose rec_len has room for
it (ext4_add_entry via ext4_find_dest_de), a rename in place rewrites a name. The real
chains (kernel-made changes, expected values from the kernel's mounts) are in
tests/index/test_chain.py; this test covers the many layouts one chain cannot: several
changes in one block, next to each other or far apart, at its start and at its end.
"""

from __future__ import annotations

import random
import struct

from filerestore.fs.ext_changes import _block_changes
from filerestore.fs.ext_dir import parse_dir_block

BLOCK = 4096
_HEAD = struct.Struct("<IHBB")  # inode, rec_len, name_len, file_type


def _rec_len(name_len: int) -> int:
    return (8 + name_len + 3) & ~3


def _block(entries: list[tuple[int, bytes, int]]) -> bytes:
    """(inode, name, slack after it) laid out in order; the last entry spans the rest."""
    out = bytearray()
    for k, (ino, name, slack) in enumerate(entries):
        rec = BLOCK - len(out) if k == len(entries) - 1 else _rec_len(len(name)) + slack
        out += _HEAD.pack(ino, rec, len(name), 1) + name + bytes(rec - 8 - len(name))
    return bytes(out)


def _layout(block: bytes) -> list[tuple[int, int, int, int]]:
    """(offset, inode, rec_len, name_len) of each entry."""
    out, pos = [], 0
    while pos < BLOCK:
        ino, rec, name_len, _ = _HEAD.unpack_from(block, pos)
        out.append((pos, ino, rec, name_len))
        pos += rec
    return out


def _remove(b: bytearray, rng: random.Random) -> None:
    lay = _layout(bytes(b))
    k = rng.randrange(len(lay))
    if k == 0:
        struct.pack_into("<I", b, 0, 0)
    elif len(lay) > 1:
        prev = lay[k - 1]
        struct.pack_into("<H", b, prev[0] + 4, prev[2] + lay[k][2])


def _add(b: bytearray, rng: random.Random) -> None:
    name = b"new-%06d" % rng.randrange(10**6) + b"x" * rng.randrange(8)
    need = _rec_len(len(name))
    room = [e for e in _layout(bytes(b)) if e[2] - (_rec_len(e[3]) if e[1] else 0) >= need]
    if not room:
        return
    pos, ino, rec, name_len = rng.choice(room)
    if not ino:  # an unused first entry is taken whole
        _HEAD.pack_into(b, pos, rng.randrange(1, 10**6), rec, len(name), 1)
        b[pos + 8 : pos + 8 + len(name)] = name
        return
    used = _rec_len(name_len)
    struct.pack_into("<H", b, pos + 4, used)
    _HEAD.pack_into(b, pos + used, rng.randrange(1, 10**6), rec - used, len(name), 1)
    b[pos + used + 8 : pos + used + 8 + len(name)] = name


def _rename(b: bytearray, rng: random.Random) -> None:
    pos, ino, _, name_len = rng.choice(_layout(bytes(b)))
    if ino and name_len:
        b[pos + 8 : pos + 8 + name_len] = bytes(rng.choice(b"abcdefgh") for _ in range(name_len))


def _pairs(block: bytes) -> set[tuple[bytes, int]]:
    return {(name, ino) for name, ino, _ in parse_dir_block(block, True)}


def test_block_changes_equal_the_difference_of_the_whole_blocks() -> None:
    rng = random.Random(20261130)
    checked = 0
    while checked < 3000:
        count = rng.randint(1, 140)
        entries = [
            (
                rng.randrange(1, 10**6),
                b"f%07d" % rng.randrange(10**7) + b"y" * rng.randrange(10),
                rng.choice((0, 0, 0, 4, 12, 40)),
            )
            for _ in range(count)
        ]
        if sum(_rec_len(len(n)) + s for _, n, s in entries) > BLOCK:
            continue
        old = _block(entries)
        new = bytearray(old)
        for _ in range(rng.randint(1, 4)):
            rng.choice((_remove, _add, _add, _rename))(new, rng)
        if bytes(new) == old:
            continue
        now, before = _block_changes(bytes(new), old, True)
        expected_added, expected_removed = (
            _pairs(bytes(new)) - _pairs(old),
            _pairs(old) - _pairs(bytes(new)),
        )
        assert (now - before, before - now) == (expected_added, expected_removed)
        checked += 1

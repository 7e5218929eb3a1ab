"""Fuzz inputs that are byte patches on a seed image: compact, and aimed at its metadata.

A filesystem or a partitioned disk is megabytes, mostly zeros; mutating all of it wastes
nearly every mutation on bytes nothing reads, and a corpus of such inputs would be
gigabytes. So the fuzz input is a small description of damage to one seed:

``[seed][size?][patch]...``

- ``seed`` (1 byte): bits 0-5 pick the seed (modulo the harness's seed count); bit 6 asks
  for the checksums over the damage to be recomputed (:mod:`fuzz.checksums`), so it gets
  past them; bit 7 says a 4-byte big-endian ``size`` follows: the volume is cut to (or
  grown with zeros to) that many bytes, up to twice the seed's size.
- each ``patch``: a 2-byte big-endian sector selector, a 2-byte offset (modulo 512), a
  1-byte length (1-64: modulo 64, plus 1) and that many bytes, written over the seed. The
  selector picks one of the seed's *hot* sectors: those holding anything but zeros in the
  regions the harness cares about (its metadata); bit 15 instead picks any sector of the
  volume, so zero areas can be damaged too.

The same bytes are both the fuzzer's input and a regression input's reproducer: together
with the seed recipe (built by :mod:`tests.imagebuild.fuzz_seeds`) they give the damaged
image again.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from filerestore.blockio import FileReader, SizedReader
from fuzz.checksums import Fixup

SECTOR = 512
MAX_PATCH = 64
_HEAD = struct.Struct(">HHB")


@dataclass(frozen=True)
class Seed:
    """A seed image and the sectors its mutations aim at."""

    name: str
    path: Path
    hot: tuple[int, ...]  # sector numbers, sorted
    fixup: Fixup | None = None  # recomputes checksums over damage (fuzz.checksums)


def nonzero_sectors(path: Path, regions: Iterable[tuple[int, int]] | None = None) -> list[int]:
    """Sectors of ``path`` that hold a non-zero byte, within ``regions`` ((start, end) bytes;
    None: the whole file). Holes of a sparse file are skipped without reading them."""
    size = path.stat().st_size
    spans = [(0, size)] if regions is None else [(max(0, a), min(size, b)) for a, b in regions]
    found: set[int] = set()
    fd = os.open(path, os.O_RDONLY)
    try:
        for start, end in spans:
            pos = start - start % SECTOR
            while pos < end:
                try:
                    data_at = os.lseek(fd, pos, os.SEEK_DATA)
                except OSError:  # ENXIO: only a hole is left
                    break
                if data_at >= end:
                    break
                hole_at = min(os.lseek(fd, data_at, os.SEEK_HOLE), end)
                first = data_at - data_at % SECTOR
                chunk = os.pread(fd, hole_at - first, first)
                for i in range(0, len(chunk), SECTOR):
                    if chunk[i : i + SECTOR].count(0) != len(chunk[i : i + SECTOR]):
                        found.add((first + i) // SECTOR)
                pos = max(hole_at, first + SECTOR)
    finally:
        os.close(fd)
    return sorted(found)


def make_seed(
    name: str,
    path: Path,
    regions: Iterable[tuple[int, int]] | None = None,
    fixup: Fixup | None = None,
) -> Seed:
    hot = nonzero_sectors(path, regions) or [0]
    return Seed(name, path, tuple(hot), fixup)


@dataclass(frozen=True)
class Damage:
    """A decoded input: which seed, the volume size, and (offset, bytes) patches."""

    seed: int
    size: int | None
    patches: tuple[tuple[int, bytes], ...]
    fix_checksums: bool = False


def decode(data: bytes, seeds: list[Seed]) -> Damage:
    """The damage ``data`` describes (every byte string is a valid input)."""
    if not data:
        return Damage(0, None, ())
    index = (data[0] & 0x3F) % len(seeds)
    seed = seeds[index]
    base_size = seed.path.stat().st_size
    pos = 1
    size: int | None = None
    if data[0] & 0x80 and len(data) >= 5:
        size = int.from_bytes(data[1:5], "big") % (2 * base_size + 1)
        pos = 5
    total_sectors = max(1, (size if size is not None else base_size) // SECTOR)
    patches: list[tuple[int, bytes]] = []
    while pos + _HEAD.size < len(data):
        selector, offset, length = _HEAD.unpack_from(data, pos)
        pos += _HEAD.size
        length = length % MAX_PATCH + 1
        payload = data[pos : pos + length]
        pos += length
        if selector & 0x8000:
            sector = (selector & 0x7FFF) * (total_sectors // 0x8000 + 1) % total_sectors
        else:
            sector = seed.hot[selector % len(seed.hot)]
        patches.append((sector * SECTOR + offset % SECTOR, payload))
    return Damage(index, size, tuple(patches), bool(data[0] & 0x40))


def encode(
    seed: int,
    patches: Iterable[tuple[int, int, bytes]],
    size: int | None = None,
    fix_checksums: bool = False,
) -> bytes:
    """An input from (hot-sector selector, offset, bytes) patches: the inverse of decode,
    for writing regression inputs by hand."""
    out = bytearray([seed | (0x80 if size is not None else 0) | (0x40 if fix_checksums else 0)])
    if size is not None:
        out += size.to_bytes(4, "big")
    for selector, offset, payload in patches:
        if not 1 <= len(payload) <= MAX_PATCH:
            raise ValueError("a patch holds 1 to 64 bytes")
        out += _HEAD.pack(selector, offset, len(payload) - 1) + payload
    return bytes(out)


class PatchedReader(SizedReader):
    """A seed image read with patches laid over it and its size changed (zeros past the
    file's end). Reads go to the seed's file each time: nothing of it is held in memory."""

    def __init__(self, base: FileReader, damage: Damage, fixup: Fixup | None = None) -> None:
        self._base = base
        self._size = base.size if damage.size is None else damage.size
        self._patches = list(damage.patches)
        if fixup is not None and damage.fix_checksums:
            # computed over the damaged image, then laid over it
            self._patches += fixup(self, damage.patches)

    def _read(self, offset: int, n: int) -> bytes:
        data = self._base.read_at(offset, n)
        if len(data) < n:
            data += bytes(n - len(data))
        end = offset + n
        touched = [(p, b) for p, b in self._patches if p < end and p + len(b) > offset]
        if not touched:
            return data
        out = bytearray(data)
        for pos, patch in touched:  # in order: a later patch wins
            lo, hi = max(pos, offset), min(pos + len(patch), end)
            out[lo - offset : hi - offset] = patch[lo - pos : hi - pos]
        return bytes(out)

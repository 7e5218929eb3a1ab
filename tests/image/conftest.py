"""Shared checks for the image tests: compare a disk with qemu-img's own conversion."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any

from filerestore.blockio import Reader

CHUNK = 1 << 20


def qemu_img_info(image: Path, *options: str) -> Any:
    """``qemu-img info --output=json`` of ``image``, parsed (a list with --backing-chain)."""
    out = subprocess.run(
        ["qemu-img", "info", *options, "--output=json", str(image)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def sha256_of_reader(reader: Reader, chunk: int = CHUNK) -> str:
    h = hashlib.sha256()
    for offset in range(0, reader.size, chunk):
        data = reader.read_at(offset, chunk)
        assert len(data) == min(chunk, reader.size - offset)
        h.update(data)
    return h.hexdigest()


def sha256_of_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def random_ranges(size: int, cluster_size: int, count: int, seed: int) -> list[tuple[int, int]]:
    """Ranges that start and end off cluster and sector boundaries and cross clusters."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        offset = rng.randrange(size)
        if rng.random() < 0.5:  # just before a cluster boundary, reaching across it
            edge = (offset // cluster_size + 1) * cluster_size
            offset = max(0, min(size - 1, edge - rng.randrange(1, 700)))
        length = rng.choice([1, 511, 513, 4097, cluster_size + 3, 3 * cluster_size + 17, 200_000])
        out.append((offset, length))
    out.append((size - 5, 100))  # across the end of the disk
    return out


def assert_ranges_match(reader: Reader, expected: Path, ranges: list[tuple[int, int]]) -> None:
    fd = os.open(expected, os.O_RDONLY)
    try:
        for offset, length in ranges:
            want = os.pread(fd, length, offset)
            got = reader.read_at(offset, length)
            assert got == want, f"mismatch at {offset}+{length}"
    finally:
        os.close(fd)

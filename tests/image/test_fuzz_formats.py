"""Damaged VMDK, VHD and VHDX files give a filerestore error or data, never another
exception, a hang or an open outside the repository.

Deterministic mutations (fixed seeds) of the places their metadata lives: headers and
footers, the VMDK descriptor and grain directory, the VHD and VHDX BAT, the VHDX region
table and metadata region; each mutated file is opened and read in several places.
"""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import pytest

from filerestore.errors import FileRestoreError
from filerestore.image import open_image
from tests.imagebuild import formats as F

KiB, MiB = 1 << 10, 1 << 20


def _regions(name: str, data: bytes) -> list[tuple[int, int]]:
    if name.startswith("vmdk"):
        desc_offset, desc_size = struct.unpack_from("<QQ", data, 28)
        gd = struct.unpack_from("<Q", data, 56)[0] * 512
        return [(0, 512), (desc_offset * 512, desc_size * 512), (gd, 64), (gd + 512, 2048)]
    if name.startswith("vpc"):
        return [(0, 512), (512, 1024), (1536, 64), (len(data) - 512, 512)]
    meta = struct.unpack_from("<Q", data, 192 * KiB + 16 + 32 + 16)[0]  # 2nd region entry
    bat = struct.unpack_from("<Q", data, 192 * KiB + 16 + 16)[0]
    return [(64 * KiB, 128), (192 * KiB, 128), (meta, 256), (meta + 64 * KiB, 64), (bat, 128)]


def _mutations(name: str, data: bytes, rng: random.Random) -> dict[int, int]:
    """Byte offset -> new value, one to four bytes in the metadata regions."""
    out: dict[int, int] = {}
    for _ in range(rng.randint(1, 4)):
        start, length = rng.choice(_regions(name, data))
        pos = min(len(data) - 1, start + rng.randrange(max(1, length)))
        if rng.random() < 0.5:
            out[pos] = out.get(pos, data[pos]) ^ 1 << rng.randrange(8)
        else:
            out[pos] = rng.choice([0x00, 0xFF, 0x80, 0x01, rng.randrange(256)])
    return out


def _patch(image: Path, changes: dict[int, int]) -> None:
    fd = os.open(image, os.O_WRONLY)
    try:
        for pos, value in changes.items():
            os.pwrite(fd, bytes([value]), pos)
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "name", ["vmdk-monolithicSparse", "vmdk-streamOptimized", "vpc-dynamic", "vhdx-block-1m"]
)
def test_mutated_images_fail_cleanly(name: str, tmp_path: Path) -> None:
    original = F.VARIANTS[name]().read_bytes()
    repo = tmp_path / "repo"
    repo.mkdir()
    image = repo / f"image.{F.EXT[F.qemu_format(name)]}"
    image.write_bytes(original)
    rng = random.Random(name)
    outcomes = {"read": 0, "refused": 0}
    for _ in range(120):
        changes = _mutations(name, original, rng)
        _patch(image, changes)  # the file is large: change its bytes in place, then undo
        try:
            with open_image(image, repo) as disk:
                for _ in range(6):
                    disk.read_at(rng.randrange(disk.size), rng.choice([1, 4096, 70000, MiB]))
            outcomes["read"] += 1
        except FileRestoreError:
            outcomes["refused"] += 1
        _patch(image, {pos: original[pos] for pos in changes})
    assert outcomes["refused"] > 0
    assert outcomes["read"] > 0

"""Damaged images give a filerestore error or data, never another exception, hang or escape.

Deterministic mutations (fixed seeds) of the header, the L1 and L2 tables and compressed data
of real images; each mutated image is opened and read in several places.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from filerestore.errors import FileRestoreError
from filerestore.image import open_image
from tests.imagebuild import data_file, qcow
from tests.imagebuild.hostile import DATA_FILE_BYTES, data_file_image, qcow2_image
from tests.imagebuild.sparse import copy_sparse


def _regions(data: bytes) -> list[tuple[int, int]]:
    """Where the metadata is: the header, the L1 table, the cluster the first L1 entry names."""
    cluster = 1 << struct.unpack_from(">I", data, 20)[0]
    l1_size, l1_offset = struct.unpack_from(">IQ", data, 36)
    regions = [(0, 512), (l1_offset, max(8, l1_size * 8))]
    l2 = struct.unpack_from(">Q", data, l1_offset)[0] & 0x00FF_FFFF_FFFF_FE00
    if l2:
        regions.append((l2, cluster))
    return regions


def _mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        start, length = rng.choice(_regions(data))
        pos = start + rng.randrange(length)
        if rng.random() < 0.5:
            out[pos] ^= 1 << rng.randrange(8)
        else:
            out[pos] = rng.choice([0x00, 0xFF, 0x80, 0x01, rng.randrange(256)])
    return bytes(out)


def _read_some(top: Path, repo: Path, rng: random.Random) -> None:
    with open_image(top, repo) as disk:
        for _ in range(8):
            if disk.size:
                disk.read_at(rng.randrange(disk.size), rng.choice([1, 4096, 70000, 1 << 20]))


@pytest.mark.parametrize(
    "source",
    ["hostile-baseline", "zstd", "v2-512", "extended-l2", "data-file-baseline", "data-file"],
)
def test_mutated_images_fail_cleanly(source: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    if source == "hostile-baseline":
        (repo / "base.qcow2").write_bytes(qcow2_image())
        original = qcow2_image(backing=b"base.qcow2")
    elif source == "data-file-baseline":  # a data file, and a backing file for it to use
        (repo / "base.qcow2").write_bytes(qcow2_image())
        (repo / "disk-data.raw").write_bytes(DATA_FILE_BYTES)
        original = data_file_image(backing=b"base.qcow2")
    elif source == "data-file":
        image = data_file.VARIANTS[source]()
        copy_sparse(image.parent / "disk-data.raw", repo / "disk-data.raw")
        original = image.read_bytes()
    else:
        original = qcow.VARIANTS[source]().read_bytes()
    rng = random.Random(source)
    outcomes = {"read": 0, "refused": 0}
    for i in range(150):
        top = repo / f"m{i}.qcow2"
        top.write_bytes(_mutate(original, rng))
        try:
            _read_some(top, repo, rng)
            outcomes["read"] += 1
        except FileRestoreError:
            outcomes["refused"] += 1
        top.unlink()
    # both outcomes occur: the mutations reach checks, and some leave readable images
    assert outcomes["refused"] > 0
    assert outcomes["read"] > 0

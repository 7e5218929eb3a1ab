"""Every qemu-img-made single-file variant reads byte-exactly as `qemu-img convert -O raw`."""

from __future__ import annotations

import json
import subprocess
import zlib
from pathlib import Path

import pytest

from filerestore.errors import CorruptImageError
from filerestore.image import open_image
from tests.image.conftest import (
    assert_ranges_match,
    qemu_img_info,
    random_ranges,
    sha256_of_file,
    sha256_of_reader,
)
from tests.imagebuild import qcow

# variants made by a plain conversion: qemu's output must equal the source disk itself
PURE = {
    name
    for name in qcow.VARIANTS
    if name
    not in {
        "snapshot",
        "zero-clusters",
        "zero-clusters-prealloc",
        "discarded",
        "compressed-then-written",
        "extended-l2",
        "dirty-lazy-refcounts",
    }
}


def qemu_check(image: Path) -> dict[str, object]:
    res = subprocess.run(
        ["qemu-img", "check", "--output=json", str(image)],
        capture_output=True,
        text=True,
        check=False,
    )
    info: dict[str, object] = json.loads(res.stdout)
    return info


@pytest.mark.parametrize("name", sorted(qcow.VARIANTS))
def test_variant_reads_like_qemu(name: str) -> None:
    image = qcow.VARIANTS[name]()
    expected = qcow.qemu_raw(image)
    if name in PURE:
        assert sha256_of_file(expected) == sha256_of_file(qcow.test_disk())
    with open_image(image) as disk:
        link = disk.chain[0]
        assert disk.size == expected.stat().st_size
        assert sha256_of_reader(disk) == sha256_of_file(expected)
        assert link.cluster_size is not None
        ranges = random_ranges(disk.size, link.cluster_size, 300, seed=zlib.crc32(name.encode()))
        assert_ranges_match(disk, expected, ranges)


def test_variants_exercise_their_feature() -> None:
    """The fixtures hold what they are named for, as qemu-img itself reports it."""
    for name in ("zlib", "zlib-v2", "zlib-4k", "zstd", "zstd-2m"):
        check = qemu_check(qcow.VARIANTS[name]())
        assert check["compressed-clusters"], name
        if name != "zstd-2m":  # every 2 MiB cluster holds some compressible data
            assert check["allocated-clusters"] != check["compressed-clusters"], name
    for name in ("zero-clusters", "zero-clusters-prealloc", "snapshot"):
        extents = qcow.qemu_map(qcow.VARIANTS[name]())
        assert any(e["zero"] and e["present"] and e["depth"] == 0 for e in extents), name
    info = qemu_img_info(qcow.VARIANTS["snapshot"]())
    assert [s["name"] for s in info["snapshots"]] == ["snap1", "snap2"]


def test_chain_link_matches_qemu_info() -> None:
    for name in ("v2-64k", "v3-512", "v3-2m", "zstd"):
        image = qcow.VARIANTS[name]()
        info = qemu_img_info(image)
        with open_image(image) as disk:
            (link,) = disk.chain
        assert link.format == info["format"] == "qcow2"
        assert link.virtual_size == info["virtual-size"]
        assert link.cluster_size == info["cluster-size"]
        assert {"0.10": 2, "1.1": 3}[info["format-specific"]["data"]["compat"]] == link.version
        assert link.compression == info["format-specific"]["data"].get("compression-type", "zlib")
        assert link.backing_name is None


def test_corrupt_flagged_image_reads_like_qemu() -> None:
    """QEMU opens an image flagged corrupt read-only; so do we, with the same bytes."""
    image = qcow.corrupt_flagged()
    info = qemu_img_info(image)
    assert info["format-specific"]["data"]["corrupt"] is True
    with open_image(image) as disk:
        assert sha256_of_reader(disk) == sha256_of_file(qcow.qemu_raw(image))


def test_truncated_image_raises_not_zeros() -> None:
    image = qcow.truncated()
    with open_image(image) as disk, pytest.raises(CorruptImageError, match="past the end"):
        sha256_of_reader(disk)


def test_raw_image_reads_as_itself() -> None:
    raw = qcow.test_disk()
    with open_image(raw) as disk:
        assert disk.chain[0].format == "raw"
        assert disk.size == raw.stat().st_size
        assert sha256_of_reader(disk) == sha256_of_file(raw)


def test_read_contract() -> None:
    with open_image(qcow.VARIANTS["v3-4k"]()) as disk:
        assert disk.read_at(disk.size, 10) == b""
        assert disk.read_at(disk.size + 100, 10) == b""
        assert disk.read_at(0, 0) == b""
        with pytest.raises(ValueError):
            disk.read_at(-1, 10)
    with pytest.raises(ValueError):
        disk.read_at(0, 10)


def test_extended_l2_fixtures_use_subclusters() -> None:
    """qemu-img reports extended L2 and maps extents finer than a cluster in these images."""
    for image in (qcow.VARIANTS["extended-l2"](), qcow.chain("extended-l2") / "top.qcow2"):
        info = qemu_img_info(image)
        assert info["format-specific"]["data"]["extended-l2"] is True
        own = [e for e in qcow.qemu_map(image) if e["depth"] == 0]
        assert any(e["start"] % 65536 or e["length"] % 65536 for e in own), image

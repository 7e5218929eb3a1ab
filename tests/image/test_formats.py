"""VMDK, VHD and VHDX made by qemu-img (every subformat and option) read byte-exactly as
``qemu-img convert -O raw``; chains as qemu reads them; differencing disks as built."""

from __future__ import annotations

import json
import struct
import subprocess
import threading
import zlib
from pathlib import Path

import pytest

from filerestore.errors import MetadataBudgetError, UnsupportedImageError
from filerestore.image import open_image, probe_chain
from tests.image.conftest import (
    assert_ranges_match,
    qemu_img_info,
    random_ranges,
    sha256_of_file,
    sha256_of_reader,
)
from tests.imagebuild import formats as F
from tests.imagebuild.formats_bytes import MiB
from tests.imagebuild.sparse import copytree_sparse


def assert_reads_like(image: Path, expected: Path, repository: Path | None = None) -> None:
    with open_image(image, repository) as disk:
        assert disk.size == expected.stat().st_size
        assert sha256_of_reader(disk) == sha256_of_file(expected)
        ranges = random_ranges(disk.size, 65536, 200, seed=zlib.crc32(str(image).encode()))
        assert_ranges_match(disk, expected, ranges)


@pytest.mark.parametrize("name", sorted(F.VARIANTS))
def test_variant_reads_like_qemu(name: str) -> None:
    image = F.VARIANTS[name]()
    fmt = F.qemu_format(name)
    assert_reads_like(image, F.qemu_raw(image, fmt))
    info = qemu_img_info(image, "-f", fmt)
    (link,) = probe_chain(image)
    assert (link.format, link.virtual_size) == (fmt, info["virtual-size"])
    if fmt == "vmdk":
        assert link.subformat == info["format-specific"]["data"]["create-type"]
    if link.cluster_size is not None and "cluster-size" in info:
        assert link.cluster_size == info["cluster-size"]


def test_variants_hold_what_they_are_named_for() -> None:
    """Subformats as qemu-img reports them; the written variants reach their code paths."""
    for sub in F.VMDK_SUBFORMATS:
        link = probe_chain(F.VARIANTS[f"vmdk-{sub}"]())[0]
        assert link.subformat == sub
        assert bool(link.parts) == (
            sub in ("twoGbMaxExtentSparse", "twoGbMaxExtentFlat", "monolithicFlat")
        )
    zero = F.VARIANTS["vmdk-zeroed-grain"]()
    mapped = json.loads(F.run("qemu-img", "map", "--output=json", "-f", "vmdk", zero))
    # zeroed grains (grain table entry 1): present and zero, where the test disk has data
    assert {
        "start": 2 * MiB,
        "length": 256 * 1024,
        "depth": 0,
        "present": True,
        "zero": True,
        "data": False,
    } in mapped
    with open_image(zero) as disk:
        assert disk.read_at(2 * MiB, 256 * 1024) == bytes(256 * 1024)
    assert probe_chain(F.VARIANTS["vpc-fixed"]())[0].subformat == "fixed"
    assert probe_chain(F.VARIANTS["vhdx-fixed"]())[0].subformat == "fixed"
    assert probe_chain(F.VARIANTS["vhdx-block-1m"]())[0].cluster_size == MiB


@pytest.mark.parametrize("subformat", ["twoGbMaxExtentSparse", "twoGbMaxExtentFlat"])
def test_split_extents_across_their_boundaries(subformat: str) -> None:
    image = F.split(subformat)
    link = probe_chain(image)[0]
    assert len(link.parts) == 3  # 4.5 GiB in 2 GiB extents
    expected = F.qemu_raw(image, "vmdk")
    ranges = [(max(0, off - 3), n + 7) for off, n, _ in F.SPLIT_WRITES]
    ranges += [(2 * F.GiB - 5, 10), (4 * F.GiB - 5, 10), (F.SPLIT_SIZE - 9, 100)]
    ranges += random_ranges(F.SPLIT_SIZE, 65536, 100, seed=7)
    with open_image(image) as disk:
        assert disk.size == expected.stat().st_size == F.SPLIT_SIZE
        assert_ranges_match(disk, expected, ranges)


@pytest.mark.parametrize("kind", F.CHAIN_KINDS)
def test_chain_reads_like_qemu(kind: str) -> None:
    top = F.chain(kind)
    assert_reads_like(top, F.qemu_raw(top))
    links = probe_chain(top)
    info = qemu_img_info(top, "--backing-chain")
    assert len(links) == len(info) == 3
    for link, img in zip(links, info, strict=True):
        assert link.location == str(Path(str(img["filename"])).resolve())
        assert link.format == img["format"]
        assert link.virtual_size == img["virtual-size"]
        assert link.backing_name == img.get("backing-filename")


def test_vmdk_child_checks_its_parents_cid(tmp_path: Path) -> None:
    """A parent written after its child was made is refused, as QEMU refuses to read it."""
    repo = tmp_path / "repo"
    copytree_sparse(F.chain("vmdk").parent, repo)
    F.run("qemu-io", "-f", "vmdk", "-c", "write -P 0x99 0 4k", repo / "inc1.vmdk")
    with pytest.raises(Exception, match="not the disk it was made on"):
        open_image(repo / "top.vmdk", repo)
    res = subprocess.run(
        ["qemu-img", "convert", "-O", "raw", str(repo / "top.vmdk"), str(tmp_path / "x.raw")],
        capture_output=True,
        check=False,
    )
    assert res.returncode != 0  # qemu refuses too


@pytest.mark.parametrize("kind", ["vpc", "vpc-subdir", "vhdx"])
def test_differencing_reads_as_built(kind: str) -> None:
    child = F.differencing(kind)
    root = child.parent.parent if kind == "vpc-subdir" else child.parent
    expected = root / "expected.raw"
    assert_reads_like(child, expected, root)
    # reads starting and ending inside sectors, around every write (bitmap lookups by sector)
    edges = [
        (max(0, off - k), n + 2 * k)
        for off, data in F.DIFF_WRITES
        for n in [len(data)]
        for k in (1, 300, 511, 3996, 4097)
    ]
    with open_image(child, root) as disk:
        assert_ranges_match(disk, expected, edges)
    links = probe_chain(child, root)
    assert [link.subformat for link in links] == ["differencing", "dynamic"]
    assert links[1].identity == links[0].parent_identity


def test_vhdx_pending_log_is_refused_by_name(tmp_path: Path) -> None:
    """qemu's writes leave log entries behind a zero log GUID; naming that GUID again makes
    them pending, which qemu itself then refuses on a read-only open."""
    src = F.VARIANTS["vhdx-written"]()
    data = bytearray(src.read_bytes())
    log_offset = struct.unpack_from("<Q", data, 64 * 1024 + 0x48)[0]
    assert data[log_offset : log_offset + 4] == b"loge"
    guid = bytes(data[log_offset + 32 : log_offset + 48])
    from tests.imagebuild.formats_bytes import _crc_into

    for at in (64 * 1024, 128 * 1024):
        data[at + 48 : at + 64] = guid
        _crc_into(data, at, 4096)
    image = tmp_path / "dirty.vhdx"
    image.write_bytes(bytes(data))
    res = subprocess.run(
        ["qemu-img", "info", "-f", "vhdx", str(image)], capture_output=True, text=True, check=False
    )
    assert "log that needs to be replayed" in res.stderr
    with pytest.raises(UnsupportedImageError, match="log holds updates never written"):
        open_image(image)


def test_stream_optimized_with_its_grain_directory_in_the_footer(tmp_path: Path) -> None:
    """VMware's stream-optimized layout: header gdOffset = GD_AT_END, the real header in a
    footer before the end-of-stream marker (qemu-img writes the directory in front)."""
    src = F.VARIANTS["vmdk-streamOptimized"]()
    data = bytearray(src.read_bytes())
    header = bytes(data[:512])
    struct.pack_into("<Q", data, 56, 0xFFFFFFFFFFFFFFFF)
    marker = struct.pack("<QII", 1, 0, 3).ljust(512, b"\0")
    data += marker + header + bytes(512)
    image = tmp_path / "stream.vmdk"
    image.write_bytes(bytes(data))
    assert_reads_like(image, F.qemu_raw(src, "vmdk"))
    assert_reads_like(image, F.qemu_raw(image, "vmdk"))


def test_tables_share_the_opens_metadata_budget() -> None:
    """The tables of these formats live in the open's one metadata cache: a budget that
    holds one read's tables still reads exactly; one that does not is refused at open."""
    for name in ("vmdk-monolithicSparse", "vmdk-streamOptimized", "vpc-dynamic", "vhdx-block-1m"):
        image = F.VARIANTS[name]()
        expected = sha256_of_file(F.qemu_raw(image, F.qemu_format(name)))
        with open_image(image) as disk:
            least = disk.working_set
        assert 0 < least <= 80 * 1024
        with open_image(image, metadata_budget=least) as disk:
            assert sha256_of_reader(disk) == expected
            assert disk.metadata.used <= least
        with pytest.raises(MetadataBudgetError, match="image metadata budget"):
            open_image(image, metadata_budget=least - 1)


@pytest.mark.parametrize(
    "name", ["vmdk-streamOptimized", "vhdx-written", "vmdk-twoGbMaxExtentFlat"]
)
def test_concurrent_readers(name: str) -> None:
    image = F.VARIANTS[name]()
    expected = F.qemu_raw(image, F.qemu_format(name))
    errors: list[BaseException] = []
    with open_image(image) as disk:

        def worker(seed: int) -> None:
            try:
                assert_ranges_match(disk, expected, random_ranges(disk.size, 65536, 100, seed))
            except BaseException as exc:
                errors.append(exc)

        pool = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    assert not errors, errors

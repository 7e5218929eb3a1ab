"""QCOW2 images with external data files, made by qemu-img and qemu-io, read byte-exactly as
``qemu-img convert -O raw`` (run in the image's directory, where QEMU 7.2 looks for a
relative data file name); chains with data files on the overlay, the base or both.

The reader before this change refused every such image by name ("unsupported qcow2
feature: external data file (incompatible bit 2)"), so each test here failed on it.
"""

from __future__ import annotations

import json
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

from filerestore.image import open_image, probe_chain
from tests.image.conftest import (
    assert_ranges_match,
    qemu_img_info,
    random_ranges,
    sha256_of_file,
    sha256_of_reader,
)
from tests.imagebuild import data_file as D
from tests.imagebuild.hostile import DATA_FILE_BYTES, data_file_image

KiB = 1 << 10
MiB = 1 << 20


def assert_reads_like(image: Path, expected: Path, repository: Path | None = None) -> None:
    with open_image(image, repository) as disk:
        assert disk.size == expected.stat().st_size
        assert sha256_of_reader(disk) == sha256_of_file(expected)
        ranges = random_ranges(disk.size, 65536, 200, seed=zlib.crc32(image.name.encode()))
        # reads across every write's edges
        ranges += [(max(0, off - k), n + 2 * k) for off, n in EDGES for k in (1, 511, 4097)]
        assert_ranges_match(disk, expected, ranges)


# (offset, length) of the writes in tests/imagebuild/data_file.py
EDGES = [
    (100 * KiB + 512, 300 * KiB),
    (2 * MiB, 128 * KiB),
    (6 * MiB, 192 * KiB),
    (7 * MiB + 4 * KiB, 8 * KiB),
    (12 * MiB, 128 * KiB),
    (20 * MiB, 3584),
    (1027 * KiB, 3 * KiB),
    (2050 * KiB, 2 * KiB),
    (3 * MiB, 256 * KiB),
    (5 * MiB, 128 * KiB),
]


@pytest.mark.parametrize("name", sorted(D.VARIANTS))
def test_variant_reads_like_qemu(name: str) -> None:
    image = D.VARIANTS[name]()
    assert_reads_like(image, D.qemu_raw(image))
    data = qemu_img_info(image)["format-specific"]["data"]
    (link,) = probe_chain(image)
    assert (link.data_file, link.data_file_raw) == (data["data-file"], data["data-file-raw"])
    assert link.parts == ("disk-data.raw",)
    assert link.data_file_raw == name.startswith("data-file-raw")


def test_variants_hold_what_they_are_named_for() -> None:
    """The zero writes and the discard left zero clusters over data, and guest cluster 0 is
    mapped at data file offset 0 (an entry of offset 0 with QCOW_OFLAG_COPIED): the
    reader's data-file paths are all reached."""
    image = D.VARIANTS["data-file"]()
    extents = [
        e
        for e in json_map(image)
        if e["start"] < 13 * MiB and e["present"] and e["zero"] and not e["data"]
    ]
    starts = {e["start"] for e in extents}
    assert {2 * MiB, 6 * MiB, 12 * MiB} <= starts
    first = json_map(image)[0]
    assert (first["start"], first["data"], first.get("offset")) == (0, True, 0)
    with open_image(image) as disk, D.qemu_raw(image).open("rb") as fh:
        assert disk.read_at(2 * MiB, 128 * KiB) == bytes(128 * KiB)
        assert disk.read_at(0, 64 * KiB) == fh.read(64 * KiB) != bytes(64 * KiB)


def json_map(image: Path) -> list[dict[str, Any]]:
    out = D.run("qemu-img", "map", "--output=json", image.name, cwd=image.parent)
    extents: list[dict[str, Any]] = json.loads(out)
    return extents


def test_a_raw_data_file_is_read_as_the_guest_disk() -> None:
    """With the raw bit the data file is the guest disk (qcow2.txt autoclear bit 1): it is
    read with no table in between, so no metadata budget is needed, and it equals what qemu
    reads through the tables after zero writes and discards (qemu zeroes the data file
    too)."""
    image = D.VARIANTS["data-file-raw"]()
    expected = D.qemu_raw(image)
    data = image.parent / "disk-data.raw"
    assert data.read_bytes()[: expected.stat().st_size] == expected.read_bytes()
    with open_image(image, metadata_budget=1) as disk:
        assert disk.working_set == 0
        assert sha256_of_reader(disk) == sha256_of_file(expected)
        assert disk.metadata.used == 0


def test_a_raw_data_file_is_read_even_where_qemu_broke_its_promise(tmp_path: Path) -> None:
    """qemu itself can break the raw bit's promise: a guest discard with
    pass-discard-request=off makes the clusters zero clusters and leaves the data file's
    bytes. qemu-img then reads zeros there; this reader reads the data file, as qcow2.txt
    says a raw data file may be read (what the data file read as a raw image gives too).
    Everywhere else both agree. A range the guest discarded holds none of its files."""
    image = D.create(tmp_path / "disk.qcow2", "disk-data.raw", 4 * MiB, raw=True)
    D.qemu_io(image, ["write -P 0x41 0 1M"])
    opts = "driver=qcow2,file.filename=disk.qcow2,pass-discard-request=off"
    D.run("qemu-io", "-d", "unmap", "--image-opts", "-c", "discard 512k 128k", opts, cwd=tmp_path)
    qemu = tmp_path / "qemu.raw"
    D.run("qemu-img", "convert", "-O", "raw", image.name, qemu, cwd=tmp_path)
    standalone = tmp_path / "standalone.raw"
    D.run(
        "qemu-img", "convert", "-f", "raw", "-O", "raw", "disk-data.raw", standalone, cwd=tmp_path
    )
    discarded = slice(512 * KiB, 640 * KiB)
    assert qemu.read_bytes()[discarded] == bytes(128 * KiB)
    assert standalone.read_bytes()[discarded] == b"A" * (128 * KiB)
    with open_image(image) as disk:
        got = disk.read_at(0, disk.size)
    assert got == standalone.read_bytes()
    assert got[: discarded.start] + got[discarded.stop :] == (
        qemu.read_bytes()[: discarded.start] + qemu.read_bytes()[discarded.stop :]
    )


@pytest.mark.parametrize("kind", D.CHAIN_KINDS)
def test_chain_reads_like_qemu(kind: str) -> None:
    top = D.chain(kind)
    assert_reads_like(top, D.qemu_raw(top))
    links = probe_chain(top)
    assert [link.name for link in links] == ["top.qcow2", "base.qcow2"]
    data_files = {
        "data-file-on-base": ["top-data.raw", None],
        "on-data-file-base": [None, "base-data.raw"],
        "on-raw-data-file-base": [None, "base-data.raw"],
        "data-file-on-data-file": ["top-data.raw", "base-data.raw"],
    }[kind]
    assert [link.data_file for link in links] == data_files
    assert [link.parts for link in links] == [(d,) if d else () for d in data_files]
    assert [link.data_file_raw for link in links] == [False, kind == "on-raw-data-file-base"]


def test_absolute_and_climbing_data_file_names(tmp_path: Path) -> None:
    """An absolute name under the repository root, and a relative name climbing out of the
    image's directory but not out of the repository; an image reached through a link finds
    its data file beside the file the link leads to."""
    repo = tmp_path / "repo"
    (repo / "vm").mkdir(parents=True)
    (repo / "data").mkdir()
    writes = ["write -P 0x61 65000 70000", "write -z 1M 64k", "write -P 0x62 0 512"]
    absolute = D.create(repo / "vm" / "abs.qcow2", str(repo / "data" / "abs.raw"), 4 * MiB, writes)
    climbing = D.create(repo / "vm" / "up.qcow2", "../data/up.raw", 4 * MiB, writes)
    (repo / "latest.qcow2").symlink_to("vm/up.qcow2")
    for image in (absolute, climbing):
        expected = tmp_path / f"{image.stem}.expected"
        D.run("qemu-img", "convert", "-O", "raw", image.name, expected, cwd=image.parent)
        assert_reads_like(image, expected, repo)
    assert probe_chain(absolute, repo)[0].parts == ("data/abs.raw",)
    assert probe_chain(climbing, repo)[0].parts == ("data/up.raw",)
    assert_reads_like(repo / "latest.qcow2", tmp_path / "up.expected", repo)


def test_an_overlays_clusters_are_read_from_its_data_file(tmp_path: Path) -> None:
    """The overlay's own file holds only tables: a cluster qemu wrote over the backing file
    (the parts it copied from the backing file included) is read from the data file, as
    qemu reads it, so changing the data file there changes the disk for both."""
    top = D.copy_dir(D.chain("data-file-on-base"), tmp_path / "repo")
    assert top.stat().st_size < 1 * MiB
    start = 100 * KiB + 7 * 512  # the first of OVERLAY_WRITES, inside a cluster
    cluster = start - start % (64 * KiB)
    marker = b"M" * (64 * KiB)
    with (top.parent / "top-data.raw").open("r+b") as fh:
        fh.seek(cluster)
        fh.write(marker)
    expected = tmp_path / "expected.raw"
    D.run("qemu-img", "convert", "-O", "raw", top.name, expected, cwd=top.parent)
    assert expected.read_bytes()[cluster : cluster + len(marker)] == marker
    assert_reads_like(top, expected, top.parent)


def test_byte_built_baseline_is_valid_for_qemu(tmp_path: Path) -> None:
    """The image the hostile data-file entries start from: qemu-img check accepts it and
    qemu reads what this reader reads, with and without the raw bit, and with extended L2
    entries (cluster 0's 32 subclusters allocated at data file offset 0)."""
    extended_l2: dict[str, Any] = {"incompatible": 1 << 4, "l2_bitmap": 0xFFFF_FFFF}
    cases: list[tuple[bool, dict[str, Any]]] = [(False, {}), (True, {}), (False, extended_l2)]
    for raw, kw in cases:
        (tmp_path / "disk-data.raw").write_bytes(DATA_FILE_BYTES)
        image = tmp_path / "image.qcow2"
        image.write_bytes(data_file_image(raw=raw, **kw))
        D.run("qemu-img", "check", image.name, cwd=tmp_path)
        expected = tmp_path / "expected.raw"
        D.run("qemu-img", "convert", "-O", "raw", image.name, expected, cwd=tmp_path)
        assert expected.read_bytes() == DATA_FILE_BYTES
        with open_image(image) as disk:
            assert disk.read_at(0, disk.size) == DATA_FILE_BYTES
            assert disk.chain[0].data_file_raw == raw


def test_qemu_needs_the_data_file_where_it_looks(tmp_path: Path) -> None:
    """Why the expected values are made in the image's directory: qemu-img run elsewhere
    does not find a relative data file name (QEMU 7.2 resolves it from its working
    directory); filerestore resolves it from the image's directory wherever it runs."""
    image = D.VARIANTS["data-file"]()
    res = subprocess.run(
        ["qemu-img", "convert", "-O", "raw", str(image), str(tmp_path / "x.raw")],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert res.returncode != 0 and "disk-data.raw" in res.stderr
    with open_image(image) as disk:
        assert disk.read_at(0, 4096) == D.qemu_raw(image).read_bytes()[:4096]

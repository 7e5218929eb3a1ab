"""Backing chains made by qemu-img/qemu-io read byte-exactly; the chain matches qemu-img info."""

from __future__ import annotations

import subprocess
import threading
import zlib
from pathlib import Path

import pytest

from filerestore.errors import BackingChainTooDeepError, ImageNotFoundError
from filerestore.image import DiskImage, open_image, probe_chain
from tests.image.conftest import (
    assert_ranges_match,
    qemu_img_info,
    random_ranges,
    sha256_of_file,
    sha256_of_reader,
)
from tests.imagebuild import qcow
from tests.imagebuild.overlays import qcow2_overlay
from tests.imagebuild.sparse import copy_sparse, copytree_sparse


def run(*args: str | Path) -> str:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=True).stdout


def qemu_raw_copy(image: Path, dest: Path) -> Path:
    """``image`` and its chain as qemu-img reads them, written raw to ``dest``."""
    run("qemu-img", "convert", "-O", "raw", image, dest)
    return dest


def qemu_chain_info(top: Path) -> list[dict[str, object]]:
    info: list[dict[str, object]] = qemu_img_info(top, "--backing-chain")
    return info


def assert_reads_like_qemu(top: Path, repository: Path, expected: Path) -> None:
    with open_image(top, repository) as disk:
        assert disk.size == expected.stat().st_size
        assert sha256_of_reader(disk) == sha256_of_file(expected)
        ranges = random_ranges(disk.size, 65536, 300, seed=zlib.crc32(str(top).encode()))
        assert_ranges_match(disk, expected, ranges)


@pytest.mark.parametrize("kind", qcow.CHAIN_KINDS)
def test_chain_reads_like_qemu(kind: str) -> None:
    d = qcow.chain(kind)
    top = d / "top.qcow2"
    assert_reads_like_qemu(top, d, qcow.qemu_raw(top))


@pytest.mark.parametrize("kind", qcow.CHAIN_KINDS)
def test_probe_chain_matches_qemu_info(kind: str) -> None:
    d = qcow.chain(kind)
    top = d / "top.qcow2"
    links = probe_chain(top, d)
    info = qemu_chain_info(top)
    assert len(links) == len(info) == (11 if kind == "deep10" else 4)
    for link, img in zip(links, info, strict=True):
        assert link.location == str(Path(str(img["filename"])).resolve())
        assert link.format == img["format"]
        assert link.virtual_size == img["virtual-size"]
        assert link.backing_name == img.get("backing-filename")
        assert link.backing_format == img.get("backing-filename-format")
        if link.format == "qcow2":
            assert link.cluster_size == img["cluster-size"]
    with open_image(top, d) as disk:
        assert disk.chain == links


def test_grown_overlay_is_larger_than_its_backing() -> None:
    links = probe_chain(qcow.chain("grown") / "top.qcow2")
    assert links[0].virtual_size > links[1].virtual_size


def copy_chain(kind: str, dest: Path) -> Path:
    copytree_sparse(qcow.chain(kind), dest)
    return dest


def test_absolute_backing_names(tmp_path: Path) -> None:
    repo = copy_chain("flat", tmp_path / "repo")
    below = {"top.qcow2": "inc2.qcow2", "inc2.qcow2": "inc1.qcow2", "inc1.qcow2": "base.qcow2"}
    for image, backing in below.items():
        run("qemu-img", "rebase", "-u", "-b", repo / backing, "-F", "qcow2", repo / image)
    links = probe_chain(repo / "top.qcow2", repo)
    assert links[0].backing_name == str(repo / "inc2.qcow2")
    expected = qemu_raw_copy(repo / "top.qcow2", tmp_path / "expected.raw")
    assert_reads_like_qemu(repo / "top.qcow2", repo, expected)


def test_relative_name_climbing_inside_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "daily").mkdir(parents=True)
    copy_sparse(qcow.chain("flat") / "base.qcow2", repo / "base.qcow2")
    qcow2_overlay(repo / "daily" / "inc.qcow2", "../base.qcow2", "qcow2")
    run("qemu-io", "-f", "qcow2", "-c", "write -P 0x61 65000 70000", repo / "daily" / "inc.qcow2")
    (repo / "latest.qcow2").symlink_to("daily/inc.qcow2")
    expected = qemu_raw_copy(repo / "daily" / "inc.qcow2", tmp_path / "expected.raw")
    assert_reads_like_qemu(repo / "latest.qcow2", repo, expected)
    assert_reads_like_qemu(repo / "daily" / "inc.qcow2", repo, expected)


def test_max_chain_depth_counts_every_file() -> None:
    d = qcow.chain("deep10")
    assert len(probe_chain(d / "top.qcow2", d, max_chain_depth=11)) == 11
    with pytest.raises(BackingChainTooDeepError, match="limit of 10"):
        open_image(d / "top.qcow2", d, max_chain_depth=10)


def test_missing_backing_file_is_named(tmp_path: Path) -> None:
    repo = copy_chain("flat", tmp_path / "repo")
    (repo / "inc1.qcow2").unlink()
    with pytest.raises(ImageNotFoundError, match=r"inc1\.qcow2"):
        open_image(repo / "top.qcow2", repo)
    with pytest.raises(ImageNotFoundError, match=r"nothing\.qcow2"):
        open_image(repo / "nothing.qcow2", repo)


@pytest.mark.parametrize("compat", ["0.10", "1.1"])
def test_base_declared_raw_is_never_probed(tmp_path: Path, compat: str) -> None:
    """A raw base whose guest wrote a qcow2 header at sector 0 still reads as raw bytes."""
    from tests.imagebuild.hostile import qcow2_image

    repo = tmp_path / "repo"
    repo.mkdir()
    fake = qcow2_image(backing=b"/etc/passwd")
    (repo / "base.raw").write_bytes(fake + bytes(2 * 1024 * 1024 - len(fake)))
    qcow2_overlay(repo / "top.qcow2", "base.raw", "raw", "-o", f"compat={compat}")
    run("qemu-io", "-f", "qcow2", "-c", "write -P 0x62 1M 4k", repo / "top.qcow2")
    expected = qemu_raw_copy(repo / "top.qcow2", tmp_path / "expected.raw")
    links = probe_chain(repo / "top.qcow2", repo)
    assert [link.format for link in links] == ["qcow2", "raw"]
    assert links[0].backing_format == "raw"
    assert links[0].version == {"0.10": 2, "1.1": 3}[compat]
    assert_reads_like_qemu(repo / "top.qcow2", repo, expected)


def read_concurrently(disk: DiskImage, expected: Path, cluster: int, threads: int) -> None:
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            assert_ranges_match(disk, expected, random_ranges(disk.size, cluster, 150, seed))
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors


@pytest.mark.parametrize(
    ("image", "cluster"),
    [("chain-flat", 65536), ("compressed-then-written", 65536), ("v3-512", 512)],
)
def test_concurrent_readers_of_one_chain(image: str, cluster: int) -> None:
    """8 threads reading random ranges of one opened image all get qemu's bytes."""
    top = qcow.chain("flat") / "top.qcow2" if image == "chain-flat" else qcow.VARIANTS[image]()
    with open_image(top, top.parent) as disk:
        read_concurrently(disk, qcow.qemu_raw(top), cluster, threads=8)

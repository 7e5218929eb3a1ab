"""The disk block cache on its own: the cap, least-recently-used eviction, several processes."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

from filerestore.source.blockcache import LOW_WATER, BlockCache

KiB = 1 << 10


def files_on_disk(directory: Path) -> dict[str, int]:
    return {
        p.name: p.stat().st_size
        for p in (directory / "blocks").rglob("*")
        if p.is_file() and ".tmp" not in p.name
    }


def test_a_block_reads_back_and_a_wrong_size_is_a_miss(tmp_path: Path) -> None:
    cache = BlockCache(tmp_path, capacity=1 << 20)
    cache.put("aa-0", b"x" * 1000)
    assert cache.get("aa-0", 1000) == b"x" * 1000
    assert cache.get("aa-0", 999) is None  # not what the reader expects: fetched again
    assert cache.get("bb-0", 1000) is None


def test_the_cap_is_kept_and_the_least_recently_used_go_first(tmp_path: Path) -> None:
    cache = BlockCache(tmp_path, capacity=100 * KiB)
    block = os.urandom(10 * KiB)
    for i in range(10):  # exactly at the cap
        cache.put(f"k{i:02d}-0", block)
    assert cache.total() == 100 * KiB
    assert cache.get("k00-0", len(block)) == block  # k00 is now the most recently used
    cache.put("k10-0", block)  # over the cap: evict down to the low-water mark
    on_disk = files_on_disk(tmp_path)
    assert sum(on_disk.values()) == cache.total() <= LOW_WATER * 100 * KiB
    assert "k00-0" in on_disk and "k10-0" in on_disk
    assert "k01-0" not in on_disk and "k02-0" not in on_disk  # the oldest unused went first


def test_a_block_larger_than_the_cap_is_not_kept(tmp_path: Path) -> None:
    cache = BlockCache(tmp_path, capacity=10 * KiB)
    cache.put("big-0", bytes(11 * KiB))
    assert cache.get("big-0", 11 * KiB) is None
    assert cache.total() == 0


def _writer(directory: str, worker: int) -> None:
    cache = BlockCache(directory, capacity=200 * KiB)
    for i in range(60):
        # half the names are shared between the processes, half their own
        name = f"s{i % 30:02d}-0" if i % 2 else f"w{worker}-{i:02d}"
        data = name.encode().ljust(8 * KiB, b".")
        cache.put(name, data)
        got = cache.get(name, len(data))
        assert got is None or got == data
    cache.close()


def test_processes_sharing_the_directory_keep_one_cap(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    cache = BlockCache(tmp_path, capacity=200 * KiB)
    on_disk = files_on_disk(tmp_path)
    assert cache.total() <= 200 * KiB
    assert sum(on_disk.values()) <= cache.total()  # a counted block may be gone, never more
    for name, size in on_disk.items():  # every surviving block holds its own bytes
        assert cache.get(name, size) == name.encode().ljust(8 * KiB, b".")


def test_remembered_objects(tmp_path: Path) -> None:
    cache = BlockCache(tmp_path, capacity=1 << 20)
    assert cache.remembered("b\0k") is None
    cache.remember("b\0k", '"etag1"', 123, 1.5)
    again = BlockCache(tmp_path, capacity=1 << 20).remembered("b\0k")
    assert again is not None and again[:3] == ('"etag1"', 123, 1.5)
    assert time.time() - 60 < again.seen <= time.time()  # when it was remembered
    cache.forget("b\0k")
    assert cache.remembered("b\0k") is None

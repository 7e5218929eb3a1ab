"""Blocks written to the disk cache behind the fetch threads: nothing lost, the cap kept,
a queued block still a hit, everything on disk once the writer is closed."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from filerestore.source.blockcache import LOW_WATER, Block, BlockCache
from filerestore.source.writebehind import WriteBehind, pending
from tests.source.test_blockcache import files_on_disk

KiB = 1 << 10


def test_every_block_handed_over_is_on_disk_after_close(tmp_path: Path) -> None:
    cache = BlockCache(tmp_path, capacity=1 << 20)
    writer = WriteBehind(cache, limit=2)
    blocks = {f"b{i:02d}-0": os.urandom(4 * KiB) for i in range(40)}
    # four threads at once, as the fetch threads hand blocks over: the queue of two is
    # full most of the time, and a full queue makes them wait, never drops a block
    names = sorted(blocks)

    def hand_over(part: list[str]) -> None:
        for name in part:
            writer.put(name, blocks[name])

    threads = [threading.Thread(target=hand_over, args=(names[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    assert files_on_disk(tmp_path) == {n: 4 * KiB for n in blocks}
    assert cache.total() == 40 * 4 * KiB
    assert all(cache.get(n, len(d)) == d for n, d in blocks.items())
    assert all(pending(n) is None for n in blocks)  # nothing left held in memory
    writer.put("late-0", b"x" * KiB)  # a fetch that ended after close: not cached
    assert cache.get("late-0", KiB) is None and pending("late-0") is None


class SlowDisk(BlockCache):
    """A cache whose writes wait until released: a disk that has fallen behind."""

    def __init__(self, directory: Path, capacity: int) -> None:
        super().__init__(directory, capacity)
        self.entered, self.release = threading.Event(), threading.Event()

    def put_many(self, blocks: list[tuple[str, Block]]) -> None:
        self.entered.set()
        self.release.wait(60)
        super().put_many(blocks)


def test_a_queued_block_is_a_hit_until_it_is_written(tmp_path: Path) -> None:
    cache = SlowDisk(tmp_path, capacity=1 << 20)
    writer = WriteBehind(cache, limit=4)
    writer.put("q-0", b"queued")
    assert cache.entered.wait(60)
    assert pending("q-0") == b"queued"  # served from memory to any store of the process
    assert cache.get("q-0", 6) is None  # not on disk yet
    cache.release.set()
    writer.flush()
    assert cache.get("q-0", 6) == b"queued" and pending("q-0") is None
    writer.close()


def test_batches_keep_the_cap(tmp_path: Path) -> None:
    cache = BlockCache(tmp_path, capacity=100 * KiB)
    writer = WriteBehind(cache, limit=8)
    for i in range(30):
        writer.put(f"c{i:02d}-0", os.urandom(10 * KiB))
    writer.close()
    on_disk = files_on_disk(tmp_path)
    assert sum(on_disk.values()) == cache.total() <= 100 * KiB
    assert cache.total() >= LOW_WATER * 100 * KiB - 10 * KiB  # evicted to the mark, no further
    assert "c29-0" in on_disk  # the newest survive

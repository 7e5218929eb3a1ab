"""The block cache under S3 reads: what a second open costs, stale objects, two processes.

Requests are counted by the latency proxy between client and server (every GET and HEAD
the store sends), so the counts are exact, not timings.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest

from filerestore.errors import ObjectChangedError, ObjectStoreUnavailableError
from filerestore.image.disk import open_backup
from filerestore.source import BlockOptions, S3Store
from tests.image.conftest import sha256_of_file, sha256_of_reader
from tests.imagebuild import qcow
from tests.s3server.fixtures import options, upload_tree
from tests.s3server.servers import Server, proxy_call
from tests.source.conftest import StoreFactory


def test_a_second_open_is_served_from_the_cache(
    s3: Any, bucket: str, store: StoreFactory, proxy: Server
) -> None:
    directory = qcow.chain("deep10")
    upload_tree(s3, bucket, "vm", directory)
    expected = sha256_of_file(qcow.qemu_raw(directory / "top.qcow2"))
    proxy_call(proxy, "reset")
    with open_backup(store("vm"), "top.qcow2") as disk:
        files = len(disk.chain)
        assert sha256_of_reader(disk) == expected
    cold = proxy_call(proxy, "reset")
    assert cold.get("GET", 0) >= files and "HEAD" not in cold

    # a new store (as a new session or a restarted worker would have): same cache directory
    with open_backup(store("vm"), "top.qcow2") as disk:
        assert sha256_of_reader(disk) == expected
    warm = proxy_call(proxy, "stats")
    # one HEAD per file checks its ETag; every block came from the disk cache
    assert warm == {"HEAD": files}


def test_without_a_disk_cache_a_new_store_fetches_again(
    s3: Any, bucket: str, store: StoreFactory, proxy: Server
) -> None:
    upload_tree(s3, bucket, "", qcow.chain("flat"))
    with open_backup(store(cache=False), "top.qcow2") as disk:
        disk.read_at(0, 1 << 20)
    proxy_call(proxy, "reset")
    with open_backup(store(cache=False), "top.qcow2") as disk:
        disk.read_at(0, 1 << 20)
    assert proxy_call(proxy, "stats").get("GET", 0) > 0


def test_a_replaced_object_is_never_served_stale(
    s3: Any, bucket: str, store: StoreFactory, proxy: Server
) -> None:
    """The same key, new bytes (a new ETag): the next open reads the new object, whatever
    the cache holds of the old one."""
    old, new = qcow.VARIANTS["v3-64k"](), qcow.VARIANTS["zlib"]()
    s3.upload_file(str(old), bucket, "img.qcow2")
    with open_backup(store(), "img.qcow2") as disk:
        assert sha256_of_reader(disk) == sha256_of_file(qcow.qemu_raw(old))
    s3.upload_file(str(new), bucket, "img.qcow2")  # same guest disk, other bytes
    with open_backup(store(), "img.qcow2") as disk:
        assert sha256_of_reader(disk) == sha256_of_file(qcow.qemu_raw(new))
    # changed to different guest content: the hash proves no old block was used
    other = qcow.VARIANTS["zero-clusters"]()
    assert sha256_of_file(qcow.qemu_raw(other)) != sha256_of_file(qcow.qemu_raw(new))
    s3.upload_file(str(other), bucket, "img.qcow2")
    with open_backup(store(), "img.qcow2") as disk:
        assert sha256_of_reader(disk) == sha256_of_file(qcow.qemu_raw(other))


def test_an_object_replaced_while_open_fails_its_next_uncached_read(
    s3: Any, bucket: str, store: StoreFactory
) -> None:
    raw = qcow.test_disk()
    s3.upload_file(str(raw), bucket, "disk.raw")
    repo = store(cache=False, prefetch=1)
    f = repo.open("disk.raw")
    assert f.read_at(0, 4096) == raw.read_bytes()[:4096]
    s3.put_object(Bucket=bucket, Key="disk.raw", Body=b"\0" * f.size)
    with pytest.raises(ObjectChangedError):
        f.read_at(10 << 20, 4096)  # If-Match on the ETag it was opened with


def test_a_check_not_waited_for_stops_reads_of_a_replaced_object(
    s3: Any, bucket: str, store: StoreFactory
) -> None:
    """A warm open that does not wait for its check (what opening a backup's stack does)
    reads the cached version until the check answers; then every read of it fails, and
    the next open reads the new object."""
    raw = qcow.test_disk()
    s3.upload_file(str(raw), bucket, "disk.raw")
    with store().open("disk.raw") as f:
        old = f.read_at(0, 64 * 1024)  # its first block, now in the disk cache
    assert old == raw.read_bytes()[: 64 * 1024]
    s3.put_object(Bucket=bucket, Key="disk.raw", Body=b"\7" * (256 * 1024))
    f = store().open("disk.raw")  # from what the cache remembers, its HEAD in flight
    f.confirm(wait=False)  # returns whether or not the HEAD has answered
    with pytest.raises(ObjectChangedError):
        f.confirm()  # waits for it: the ETag differs
    with pytest.raises(ObjectChangedError):
        f.read_at(0, 4096)  # cached, but known to be of a replaced object
    with store().open("disk.raw") as again:  # the host forgot the old version
        assert again.size == 256 * 1024
        assert again.read_at(0, 4096) == b"\7" * 4096


def test_memory_per_store_is_bounded(s3: Any, bucket: str, store: StoreFactory) -> None:
    directory = qcow.chain("flat")
    upload_tree(s3, bucket, "", directory)
    repo = store(memory_bytes=512 * 1024)
    with open_backup(repo, "top.qcow2") as disk:
        sha256_of_reader(disk)
        assert repo.pool.memory_held() <= 512 * 1024


def _hash_chain(endpoint: str, bucket: str, cache_dir: str, start: Any, out: Any) -> None:
    start.wait(60)  # both processes read at once
    blocks = BlockOptions(block_size=64 * 1024, cache_dir=Path(cache_dir), cache_capacity=8 << 20)
    repo = S3Store(options(endpoint, bucket), "vm", blocks)
    with repo, open_backup(repo, "top.qcow2") as disk:
        h = hashlib.sha256()
        for offset in range(0, disk.size, 1 << 20):
            h.update(disk.read_at(offset, 1 << 20))
        out.put(h.hexdigest())


def test_two_processes_share_one_cache_directory(
    s3: Any, bucket: str, proxy: Server, tmp_path: Path
) -> None:
    """Two worker processes, one cache (capped below the chain's size, so they also evict
    each other's blocks) and one expected disk; then a third from what they left."""
    directory = qcow.chain("extended-l2")
    upload_tree(s3, bucket, "vm", directory)
    expected = sha256_of_file(qcow.qemu_raw(directory / "top.qcow2"))
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    args = (proxy.endpoint, bucket, str(tmp_path), start, out)
    for round_ in (2, 1):
        procs = [ctx.Process(target=_hash_chain, args=args) for _ in range(round_)]
        for p in procs:
            p.start()
        start.set()
        hashes = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(30)
        assert hashes == [expected] * round_
        assert [p.exitcode for p in procs] == [0] * round_


def test_a_closed_files_prefetch_still_serves_the_other_readers_of_its_object(
    s3: Any, bucket: str, store: StoreFactory, proxy: Server
) -> None:
    """Blocks are named by object, so one session's prefetch is what another session's read
    of the same backup may wait for. Closing the first file (its session ended, its stack
    evicted) must not fail the other read: that was a download cut short in a two-instance
    run with 100 downloads at once."""
    raw = qcow.test_disk()
    s3.upload_file(str(raw), bucket, "disk.raw")
    repo = store(cache=False, prefetch=1)  # one fetch thread: prefetches run in order
    assert repo.read_ahead >= 2
    block = 64 * 1024
    first, second = repo.open("disk.raw"), repo.open("disk.raw")
    first.read_at(0, 4096)
    proxy_call(proxy, "set", delay_ms=0, stall=1)  # hold every request from here
    proxy_call(proxy, "reset")
    first.read_at(4096, 4096)  # continues the last read: blocks 1 and 2 go out ahead
    first.close()  # block 1 is held at the proxy, block 2 waits behind it
    with pytest.raises(ObjectStoreUnavailableError, match="read after close"):
        first.read_at(0, 16)
    result: list[bytes | BaseException] = []

    def read_block_2() -> None:
        try:
            result.append(second.read_at(2 * block, 4096))
        except BaseException as exc:  # handed to the test's thread
            result.append(exc)

    reader = threading.Thread(target=read_block_2)
    reader.start()
    proxy_call(proxy, "set", delay_ms=0, stall=0)
    reader.join(60)
    assert result == [raw.read_bytes()[2 * block : 2 * block + 4096]]
    # whatever the order, block 2 was fetched once: by the closed file's prefetch
    assert proxy_call(proxy, "stats").get("GET", 0) == 2
    second.close()

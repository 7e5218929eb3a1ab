"""Opening and closing stores and backups many times leaves threads and descriptors flat."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path
from typing import Any

from filerestore.image.disk import open_backup
from filerestore.source import BlockOptions, S3Store
from tests.imagebuild import qcow
from tests.s3server.fixtures import options, upload_tree
from tests.s3server.servers import Server


def open_fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def settled(count: Any, limit: int) -> int:
    """``count()`` once it is at most ``limit``: fetch threads end shortly after the pool's
    shutdown, and a client's idle connections close when the client object is freed."""
    deadline = time.monotonic() + 10
    while (n := count()) > limit and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    return int(n)


def test_threads_and_descriptors_stay_flat(
    s3: Any, bucket: str, proxy: Server, tmp_path: Path
) -> None:
    upload_tree(s3, bucket, "", qcow.chain("flat"))

    def cycle() -> None:
        blocks = BlockOptions(block_size=64 * 1024, cache_dir=tmp_path)
        store = S3Store(options(proxy.endpoint, bucket), "", blocks)
        with store, open_backup(store, "top.qcow2") as disk:
            for offset in range(0, 4 << 20, 256 * 1024):  # sequential: prefetch runs
                disk.read_at(offset, 256 * 1024)

    cycle()
    cycle()  # warm: checks run on their own threads too
    threads, fds = threading.active_count(), open_fds()
    for _ in range(15):
        cycle()
    assert settled(threading.active_count, threads) <= threads
    assert settled(open_fds, fds) <= fds

"""Benchmark of the image layer: read throughput through read_at, and chain open time.

Run: .venv/bin/python bench/image_read.py [--size-mib 1024]

Builds, in a temporary directory, with qemu-img and qemu-io (tests/imagebuild/bench_image_read.py):
- an uncompressed qcow2 (64 KiB clusters) filled with data, read whole with 1 MiB read_at
  calls after one warm-up pass (so from the page cache), best of three;
- the same with 4 KiB clusters (more entries per request) and 2 MiB clusters;
- a fragmented one, whose clusters were written in reverse order;
- a 10-deep chain of incrementals on it: median time of open_image + close over 50 runs,
  and its read throughput (most clusters come from the base, through 10 layers);
- a zstd-compressed copy, for comparison (decompression bound).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from filerestore.image import open_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.imagebuild import bench_image_read as images

MiB = 1 << 20


def read_all(path: Path, chunk: int = MiB) -> float:
    """Seconds to read the whole disk with ``chunk``-sized read_at calls."""
    with open_image(path) as disk:
        start = time.perf_counter()
        for offset in range(0, disk.size, chunk):
            disk.read_at(offset, chunk)
        return time.perf_counter() - start


def throughput(path: Path, size: int) -> float:
    read_all(path)  # warm the page cache and nothing else: each pass opens afresh
    best = min(read_all(path) for _ in range(3))
    return size / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    size = args.size_mib * MiB
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        d = Path(tmp)
        for cluster in (65536, 4096, 2 * MiB):
            img = images.filled(d / f"c{cluster}.qcow2", cluster, size)
            print(
                f"uncompressed qcow2, {cluster // 1024} KiB clusters, {args.size_mib} MiB: "
                f"{throughput(img, size):.2f} GB/s"
            )
        frag_size = 128 * MiB
        frag = images.fragmented(d / "fragmented.qcow2", frag_size)
        print(
            f"fragmented qcow2 (every 64 KiB cluster its own pread), 128 MiB: "
            f"{throughput(frag, frag_size):.2f} GB/s"
        )
        top = images.incremental_chain(d / "c65536.qcow2", 10)
        times = []
        for _ in range(50):
            start = time.perf_counter()
            open_image(top).close()
            times.append(time.perf_counter() - start)
        print(
            f"open a chain of 10 incrementals + base: median "
            f"{statistics.median(times) * 1000:.2f} ms, max {max(times) * 1000:.2f} ms"
        )
        print(f"read through the 10-deep chain: {throughput(top, size):.2f} GB/s")
        zst = images.zstd_copy(d / "c65536.qcow2", d / "zstd.qcow2")
        print(
            f"zstd-compressed qcow2 (one pattern byte, very compressible): "
            f"{throughput(zst, size):.2f} GB/s"
        )


if __name__ == "__main__":
    main()

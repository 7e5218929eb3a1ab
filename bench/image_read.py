"""Benchmark of the image layer: read throughput through read_at, and chain open time.

Run: .venv/bin/python bench/image_read.py [--size-mib 1024]

Builds, in a temporary directory, with qemu-img and qemu-io:
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
import subprocess
import tempfile
import time
from pathlib import Path

from filerestore.image import open_image

MiB = 1 << 20


def run(*args: object) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True)


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
            img = d / f"c{cluster}.qcow2"
            run(
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-o",
                f"cluster_size={cluster}",
                img,
                size,
            )
            run("qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {size}", img)
            print(
                f"uncompressed qcow2, {cluster // 1024} KiB clusters, {args.size_mib} MiB: "
                f"{throughput(img, size):.2f} GB/s"
            )
        # clusters written last to first: no two guest-adjacent clusters are host-adjacent
        frag = d / "fragmented.qcow2"
        frag_size = 128 * MiB
        run("qemu-img", "create", "-q", "-f", "qcow2", frag, frag_size)
        cmds = []
        for i in reversed(range(frag_size // 65536)):
            cmds += ["-c", f"write -P {i % 250 + 1} {i * 65536} 65536"]
        run("qemu-io", "-f", "qcow2", *cmds, frag)
        print(
            f"fragmented qcow2 (every 64 KiB cluster its own pread), 128 MiB: "
            f"{throughput(frag, frag_size):.2f} GB/s"
        )
        below = d / "c65536.qcow2"
        for i in range(10):
            inc = d / f"inc{i + 1}.qcow2"
            run("qemu-img", "create", "-q", "-f", "qcow2", "-b", below.name, "-F", "qcow2", inc)
            run("qemu-io", "-f", "qcow2", "-c", f"write -P {i + 1} {i * 8 * MiB} {4 * MiB}", inc)
            below = inc
        times = []
        for _ in range(50):
            start = time.perf_counter()
            open_image(below).close()
            times.append(time.perf_counter() - start)
        print(
            f"open a chain of 10 incrementals + base: median "
            f"{statistics.median(times) * 1000:.2f} ms, max {max(times) * 1000:.2f} ms"
        )
        print(f"read through the 10-deep chain: {throughput(below, size):.2f} GB/s")
        zst = d / "zstd.qcow2"
        run(
            "qemu-img",
            "convert",
            "-c",
            "-O",
            "qcow2",
            "-o",
            "compression_type=zstd",
            d / "c65536.qcow2",
            zst,
        )
        print(
            f"zstd-compressed qcow2 (one pattern byte, very compressible): "
            f"{throughput(zst, size):.2f} GB/s"
        )


if __name__ == "__main__":
    main()

"""Benchmark of the VMDK, VHD and VHDX readers against qemu-img, in one run.

Run: .venv/bin/python bench/formats.py [--size-mib 1024] [--opens 50]

Builds, in a temporary directory, with sfdisk, mke2fs -d and qemu-img:

- a data disk of ``--size-mib`` MiB, every 64 KiB holding 16 KiB of random bytes and 48 KiB
  of zeros (so every grain and block is allocated, and deflate has something to do), in
  each format and subformat (and QCOW2 for reference). Read whole with 1 MiB ``read_at``
  calls from the page cache (one warm-up pass, then the best of three), against ``qemu-img
  convert -n -f FMT --target-image-opts IMAGE driver=null-co,size=N`` (qemu's conversion
  to a sink: the "/dev/null" of the block layer), best of three. qemu-img reads with 8
  coroutines and skips nothing here; we read with one thread. The ratio is our
  throughput over qemu-img's.
- a 64 MiB GPT disk with one ext4 partition (200 files), in each format: ``open_stack``
  (image + GPT + ext4) and close, median of ``--opens`` runs after one warm-up.

Targets (issue 12): open <= 5 ms per format; read >= 1 GB/s for uncompressed formats,
streamOptimized at the decompressor's speed (zlib-ng's and zlib's inflate alone on the
same grains are printed after the table). Numbers only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from zlib_ng import zlib_ng

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from filerestore.image import open_image
from filerestore.restore import open_stack
from tests.imagebuild.bench_formats import FORMATS, convert, data_disk, ext4_disk

MiB = 1 << 20


def run(*args: object) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True)


def virtual_size(image: Path) -> int:
    with open_image(image) as disk:
        return disk.size


def read_all(image: Path) -> float:
    with open_image(image) as disk:
        start = time.perf_counter()
        for offset in range(0, disk.size, MiB):
            disk.read_at(offset, MiB)
        return time.perf_counter() - start


def qemu_read(image: Path, fmt: str, size: int) -> float:
    start = time.perf_counter()
    run(
        "qemu-img",
        "convert",
        "-n",
        "-f",
        fmt,
        "--target-image-opts",
        image,
        f"driver=null-co,size={size}",
    )
    return time.perf_counter() - start


def open_ms(image: Path, runs: int) -> float:
    open_stack(image).close()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        open_stack(image).close()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def inflate_rate(raw: Path, inflate: Callable[[bytes], bytes]) -> float:
    """``inflate`` alone over 64 KiB grains of the data disk (GB/s of output)."""
    with raw.open("rb") as fh:
        grains = [zlib.compress(fh.read(65536)) for _ in range(256)]
    start = time.perf_counter()
    for _ in range(4):
        for g in grains:
            inflate(g)
    return 4 * 256 * 65536 / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--opens", type=int, default=50)
    args = parser.parse_args()
    size = args.size_mib * MiB
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        work = Path(tmp)
        raw = work / "data.raw"
        data_disk(raw, size)
        small = ext4_disk(work)
        print(f"{'format':<28}{'open ms':>9}{'ours GB/s':>11}{'qemu GB/s':>11}{'ratio':>7}")
        for i, (fmt, sub, options) in enumerate(FORMATS):
            image = convert(raw, work / f"d{i}", fmt, options)
            n = virtual_size(image)  # VHD rounds the size to its CHS geometry
            read_all(image)  # warm the page cache
            ours = n / min(read_all(image) for _ in range(3)) / 1e9
            qemu = n / min(qemu_read(image, fmt, n) for _ in range(3)) / 1e9
            stack_image = convert(small, work / f"s{i}", fmt, options)
            ms = open_ms(stack_image, args.opens)
            name = f"{fmt} {sub}" if fmt != "qcow2" else "qcow2 (reference)"
            print(f"{name:<28}{ms:>9.2f}{ours:>11.2f}{qemu:>11.2f}{ours / qemu:>7.2f}")
            for p in image.parent.iterdir():
                p.unlink()
        for name, inflate in (("zlib-ng (ours)", zlib_ng.decompress), ("zlib", zlib.decompress)):
            rate = inflate_rate(raw, inflate)
            print(f"{name} inflate alone, 64 KiB grains of this data: {rate:.2f} GB/s")


if __name__ == "__main__":
    main()

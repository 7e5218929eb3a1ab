"""libyal's VMDK and VHD/VHDX readers (libvmdk-python, libvhdi-python) against ours, measured
as the QCOW2 choice was: byte-exactness on every test variant, then throughput.

Run: .venv/bin/python bench/libyal_images.py [--size-mib 256]

Byte-exactness: every image of tests/imagebuild/formats.py (each subformat and option
qemu-img writes, the split-extent disks past 4 GiB, the chains made by qemu-img create -b,
the differencing VHD and VHDX built byte by byte), read whole by each reader (parents set
with ``set_parent`` for libyal) and compared with qemu-img's raw conversion (for the
differencing disks, with the disk the builder wrote). Per image: "exact", "DIFFERS at
OFFSET", or the error. Throughput: a data disk of ``--size-mib`` (16 KiB random + 48 KiB
zeros per 64 KiB) in four subformats, read whole with 1 MiB reads, best of three.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyvhdi
import pyvmdk

from filerestore.image import open_image, probe_chain
from tests.imagebuild import formats as F

MiB = 1 << 20
CHUNK = 16 * MiB


def libyal_open(image: Path) -> Any:
    """A libyal handle of ``image`` with its parents set, as the libraries want them."""
    links = probe_chain(image, image.parent.parent if "children" in image.parts else None)
    handles: list[Any] = []
    for link in reversed(links):
        if link.format == "vmdk":
            h = pyvmdk.handle()
            h.open(link.location)
            h.open_extent_data_files()
        elif link.format in ("vpc", "vhdx"):
            h = pyvhdi.file()
            h.open(link.location)
        else:
            raise RuntimeError(f"no {link.format} in libyal")
        if handles:
            h.set_parent(handles[-1])
        handles.append(h)
    return handles[-1]


def first_difference(read: Callable[[int, int], bytes], expected: Path, size: int) -> str:
    if size != expected.stat().st_size:
        return f"SIZE {size} (expected {expected.stat().st_size})"
    # disks past 4 GiB (split extents, sparse): the written ranges and the extent edges
    spans = [(max(0, o - 4096), n + 8192) for o, n, _ in F.SPLIT_WRITES] if size > 1 << 32 else []
    spans += [(o, CHUNK) for o in range(0, size, CHUNK)] if not spans else [(size - 8192, 8192)]
    with expected.open("rb") as fh:
        for offset, length in spans:
            want = os.pread(fh.fileno(), length, offset)
            got = read(offset, len(want))
            if got != want:
                at = next(
                    i for i in range(0, len(want), 512) if got[i : i + 512] != want[i : i + 512]
                )
                return f"DIFFERS at sector {(offset + at) // 512}"
    return "exact"


def check(image: Path, expected: Path) -> tuple[str, str]:
    out = []
    try:
        h = libyal_open(image)
        read = lambda offset, n: h.read_buffer_at_offset(n, offset)  # noqa: E731 (size first)
        out.append(first_difference(read, expected, h.get_media_size()))
    except Exception as exc:  # a library error is a result here
        out.append(f"error: {str(exc).splitlines()[0][:60]}")
    root = image.parent.parent if "children" in image.parts else image.parent
    with open_image(image, root) as disk:
        out.append(first_difference(disk.read_at, expected, disk.size))
    return out[0], out[1]


def cases() -> dict[str, tuple[Path, Path]]:
    found: dict[str, tuple[Path, Path]] = {}
    for name, build in sorted(F.VARIANTS.items()):
        image = build()
        found[name] = (image, F.qemu_raw(image, F.qemu_format(name)))
    for sub in ("twoGbMaxExtentSparse", "twoGbMaxExtentFlat"):
        image = F.split(sub)
        found[f"split-{sub}"] = (image, F.qemu_raw(image, "vmdk"))
    for kind in F.CHAIN_KINDS:
        top = F.chain(kind)
        found[f"chain-{kind}"] = (top, F.qemu_raw(top))
    for kind in ("vpc", "vpc-subdir", "vhdx"):
        child = F.differencing(kind)
        root = child.parent.parent if kind == "vpc-subdir" else child.parent
        found[f"differencing-{kind}"] = (child, root / "expected.raw")
    return found


def throughput(size_mib: int) -> None:
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        raw = Path(tmp) / "data.raw"
        with raw.open("wb") as fh:
            for _ in range(size_mib * MiB // 65536):
                fh.write(os.urandom(16384) + bytes(49152))
        print(f"\n{'throughput, GB/s':<28}{'libyal':>8}{'ours':>8}")
        for fmt, sub in (
            ("vmdk", "monolithicSparse"),
            ("vmdk", "streamOptimized"),
            ("vpc", "dynamic"),
            ("vhdx", "dynamic"),
        ):
            image = Path(tmp) / f"{sub}.{F.EXT[fmt]}"
            subprocess.run(
                [
                    "qemu-img",
                    "convert",
                    "-f",
                    "raw",
                    "-O",
                    fmt,
                    "-o",
                    f"subformat={sub}",
                    str(raw),
                    str(image),
                ],
                check=True,
            )
            rates = []
            for reader in ("libyal", "ours"):
                best = float("inf")
                for _ in range(3):
                    if reader == "libyal":
                        h = libyal_open(image)
                        size = h.get_media_size()
                        read = lambda offset, n, h=h: h.read_buffer_at_offset(n, offset)  # noqa: E731
                    else:
                        disk = open_image(image)
                        read, size = disk.read_at, disk.size
                    start = time.perf_counter()
                    for offset in range(0, size, MiB):
                        read(offset, min(MiB, size - offset))
                    best = min(best, time.perf_counter() - start)
                rates.append(size / best / 1e9)
            print(f"{fmt + ' ' + sub:<28}{rates[0]:>8.2f}{rates[1]:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    args = parser.parse_args()
    print(f"libvmdk {pyvmdk.get_version()}, libvhdi {pyvhdi.get_version()}")
    print(f"{'image':<34}{'libyal':<30}{'ours'}")
    for name, (image, expected) in cases().items():
        theirs, ours = check(image, expected)
        print(f"{name:<34}{theirs[:29]:<30}{ours}")
    throughput(args.size_mib)


if __name__ == "__main__":
    main()

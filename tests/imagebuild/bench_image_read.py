"""The QCOW2 images bench/image_read.py reads, built in its temporary directory with qemu-img
and qemu-io: filled images of several cluster sizes, a fragmented one, a chain of
incrementals, a zstd-compressed copy."""

from __future__ import annotations

import subprocess
from pathlib import Path

MiB = 1 << 20


def run(*args: object) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True)


def filled(image: Path, cluster: int, size: int) -> Path:
    """An uncompressed qcow2 of ``cluster``-byte clusters, every byte written (0x5a)."""
    run("qemu-img", "create", "-q", "-f", "qcow2", "-o", f"cluster_size={cluster}", image, size)
    run("qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {size}", image)
    return image


def fragmented(image: Path, size: int) -> Path:
    """A qcow2 (64 KiB clusters) whose clusters were written last to first: no two
    guest-adjacent clusters are host-adjacent."""
    run("qemu-img", "create", "-q", "-f", "qcow2", image, size)
    cmds = []
    for i in reversed(range(size // 65536)):
        cmds += ["-c", f"write -P {i % 250 + 1} {i * 65536} 65536"]
    run("qemu-io", "-f", "qcow2", *cmds, image)
    return image


def incremental_chain(base: Path, depth: int) -> Path:
    """``depth`` overlays over ``base`` (beside it), each writing 4 MiB at its own 8 MiB
    step; returns the top one."""
    below = base
    for i in range(depth):
        inc = base.with_name(f"inc{i + 1}.qcow2")
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", below.name, "-F", "qcow2", inc)
        run("qemu-io", "-f", "qcow2", "-c", f"write -P {i + 1} {i * 8 * MiB} {4 * MiB}", inc)
        below = inc
    return below


def zstd_copy(source: Path, image: Path) -> Path:
    """``source`` converted to a zstd-compressed qcow2."""
    run("qemu-img", "convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", source, image)
    return image

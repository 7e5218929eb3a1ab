"""The metadata bomb: a 64-file sparse backing chain whose every overlay has the largest L1
table QEMU allows (32 MiB), made by qemu-img and qemu-io, cached per recipe.

``deep_sparse_chain()`` -> Path of a directory holding ``base.qcow2`` (an ext4 filesystem on
the whole disk, made by ``mke2fs -d`` from :data:`FILES` and checked with ``debugfs``) and
``layer01.qcow2`` ... ``layer63.qcow2``, each ``qemu-img create -b`` over the one below with a
virtual size of :data:`VIRTUAL_SIZE` (2 PiB: with 64 KiB clusters, 4,194,304 L1 entries,
exactly QEMU's QCOW_MAX_L1_SIZE of 32 MiB; one byte more and qemu-img refuses). The top is
``layer63.qcow2``; 64 files in all, the default ``max_chain_depth``. A few layers write a
pattern with qemu-io (:data:`WRITES`), some near the end of the 2 PiB disk, so a read there
crosses the last L1 pieces. The L1 tables qemu-img writes as zeros are turned into holes
(``fallocate --dig-holes``), so the chain takes a few MiB on disk while opening it naively
reads 2 GiB of tables. ``qemu-img info --backing-chain`` verifies the chain before caching.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.imagebuild.cache import cached
from tests.imagebuild.commands import run

FILES = {"hello.txt": b"hello from the bottom of a deep chain\n", "etc/motd": b"deep\n" * 100}
LAYERS = 64
VIRTUAL_SIZE = 2 << 50  # 2 PiB
CLUSTER = 65536
BASE_SIZE = 8 << 20
#: (layer number, guest offset, length, pattern byte), written with ``qemu-io write -P``
WRITES = [
    (5, 16 << 20, 100_000, 0x15),
    (30, VIRTUAL_SIZE - (1 << 20), 70_000, 0x30),
    (63, VIRTUAL_SIZE - 4096, 4096, 0x63),
    (63, (16 << 20) + 50_000, 1000, 0x64),
]


def _base(out: Path) -> None:
    work = out / "work"
    tree = work / "tree"
    for name, data in FILES.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
    raw = work / "fs.raw"
    run("truncate", "-s", BASE_SIZE, raw)
    run("mke2fs", "-q", "-F", "-t", "ext4", "-L", "deep", "-d", tree, raw)
    for name, data in FILES.items():
        got = subprocess.run(
            ["debugfs", "-R", f"cat /{name}", str(raw)], check=True, capture_output=True
        ).stdout
        if got != data:
            raise RuntimeError(f"debugfs reads {name} wrongly")
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, out / "base.qcow2")
    shutil.rmtree(work)


def _build(out: Path) -> None:
    out.mkdir()
    _base(out)
    below = "base.qcow2"
    for i in range(1, LAYERS):
        name = f"layer{i:02d}.qcow2"
        run(
            "qemu-img", "create", "-q", "-f", "qcow2", "-o", f"cluster_size={CLUSTER}",
            "-b", below, "-F", "qcow2", name, VIRTUAL_SIZE, cwd=out,
        )  # fmt: skip
        for layer, offset, length, pattern in WRITES:
            if layer == i:
                run("qemu-io", "-f", "qcow2", "-c", f"write -P {pattern} {offset} {length}", name,
                     cwd=out)  # fmt: skip
        run("fallocate", "--dig-holes", out / name)
        below = name
    chain = json.loads(run("qemu-img", "info", "--backing-chain", "--output=json", out / below))
    if len(chain) != LAYERS:
        raise RuntimeError(f"qemu-img sees {len(chain)} files, not {LAYERS}")
    for info in chain[:-1]:
        if info["virtual-size"] != VIRTUAL_SIZE or info["cluster-size"] != CLUSTER:
            raise RuntimeError(f"unexpected layer {info['filename']}: {info}")


def deep_sparse_chain() -> Path:
    recipe = {"files": sorted(FILES), "layers": LAYERS, "size": VIRTUAL_SIZE, "writes": WRITES}
    return cached("deep-sparse-chain", recipe, _build, suffix="d")


def top(chain_dir: Path) -> Path:
    return chain_dir / f"layer{LAYERS - 1:02d}.qcow2"

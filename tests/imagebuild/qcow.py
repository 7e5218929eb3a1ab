"""QCOW2 test images made by qemu-img and qemu-io, cached per recipe.

For every engineer (all return paths inside the image cache, built once):

- ``to_qcow2(raw, name, *, compat="1.1", cluster_size=65536, compression=None,
  options=())`` -> Path: ``qemu-img convert`` of a raw disk to qcow2. ``compression`` is
  ``None``, ``"zlib"`` or ``"zstd"`` (``-c``); ``options`` are extra ``-o`` items such as
  ``"preallocation=metadata"``.
- ``make_incremental(base, writes, name, *, zeros=(), size=None)`` -> Path: an overlay on
  ``base`` (``qemu-img create -b BASE -F FMT``, relative backing name: the overlay lives in
  the cache directory next to its base) holding only ``writes`` (``[(offset, bytes)]``,
  written with ``qemu-io write -s``) and ``zeros`` (``[(offset, length)]``, ``write -z``).
  ``size`` grows the overlay past its base.
- ``incremental_from_raw(base, old_raw, new_raw, name, *, block=65536)`` -> Path: an
  overlay holding exactly the blocks where ``new_raw`` differs from ``old_raw`` (the raw disk
  ``base`` was made from): the way to turn "changed the files, rebuilt the disk" into a
  small incremental backup.
- ``qemu_raw(image)`` -> Path: ``qemu-img convert -O raw`` of an image and its chain: the
  expected guest disk, from qemu itself.
- ``qemu_map(image)`` -> list of ``qemu-img map --output=json`` extents.

For the image layer's own tests: ``test_disk()`` (a raw disk of self-checking blocks with
holes), ``VARIANTS`` (name -> builder of a single-file qcow2 variant of it) and
``chain(kind)`` (directories holding backing chains, top image ``top.qcow2``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.imagebuild.cache import cached
from tests.imagebuild.commands import file_id, run
from tests.imagebuild.sparse import copy_sparse
from tests.imagebuild.tree import MiB, block_content

KiB = 1 << 10


def _format(path: Path) -> str:
    with path.open("rb") as fh:
        return "qcow2" if fh.read(4) == b"QFI\xfb" else "raw"


# --- public helpers -------------------------------------------------------------------------


def to_qcow2(
    raw: Path,
    name: str,
    *,
    compat: str = "1.1",
    cluster_size: int = 65536,
    compression: str | None = None,
    options: Sequence[str] = (),
) -> Path:
    opts = [f"compat={compat}", f"cluster_size={cluster_size}", *options]
    if compression == "zstd":
        opts.append("compression_type=zstd")
    recipe = ["to_qcow2", file_id(raw), opts, compression]

    def build(out: Path) -> None:
        cmd = ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", ",".join(opts)]
        if compression:
            cmd.append("-c")
        run(*cmd, raw, out)

    return cached(name, recipe, build, suffix="qcow2")


def _write_commands(tmp: Path, writes: Sequence[tuple[int, bytes]]) -> list[str]:
    cmds = []
    for i, (offset, data) in enumerate(writes):
        src = tmp / f"w{i}"
        src.write_bytes(data)
        cmds += ["-c", f"write -s {src} {offset} {len(data)}"]
    return cmds


def _overlay(
    out: Path,
    base: Path,
    backing_name: str,
    *,
    writes: Sequence[tuple[int, bytes]] = (),
    zeros: Sequence[tuple[int, int]] = (),
    patterns: Sequence[tuple[int, int, int]] = (),
    size: int | None = None,
    base_format: str | None = None,
    options: Sequence[str] = (),
) -> None:
    fmt = base_format or _format(base)
    cmd = ["qemu-img", "create", "-q", "-f", "qcow2", "-b", backing_name, "-F", fmt, str(out)]
    if options:
        cmd[2:2] = ["-o", ",".join(options)]
    if size is not None:
        cmd.append(str(size))
    run(*cmd)
    with tempfile.TemporaryDirectory() as tmp:
        cmds = _write_commands(Path(tmp), writes)
        cmds += [a for off, n in zeros for a in ("-c", f"write -z {off} {n}")]
        cmds += [a for off, n, p in patterns for a in ("-c", f"write -P {p} {off} {n}")]
        if cmds:
            run("qemu-io", "-f", "qcow2", *cmds, out)


def make_incremental(
    base: Path,
    writes: Sequence[tuple[int, bytes]],
    name: str,
    *,
    zeros: Sequence[tuple[int, int]] = (),
    size: int | None = None,
) -> Path:
    digest = hashlib.sha256()
    for offset, data in writes:
        digest.update(offset.to_bytes(8, "little") + hashlib.sha256(data).digest())
    recipe = ["incremental", file_id(base), digest.hexdigest(), list(zeros), size]

    def build(out: Path) -> None:
        if out.parent != base.parent:
            raise ValueError("make_incremental keeps overlays next to their base")
        _overlay(out, base, base.name, writes=writes, zeros=zeros, size=size)

    return cached(name, recipe, build, suffix="qcow2")


def changed_blocks(old_raw: Path, new_raw: Path, block: int = 65536) -> list[tuple[int, bytes]]:
    """(offset, new bytes) of each run of ``block``-sized blocks that differ."""
    out: list[tuple[int, bytes]] = []
    with old_raw.open("rb") as old, new_raw.open("rb") as new:
        offset = 0
        while True:
            a, b = old.read(block), new.read(block)
            if not b:
                return out
            if a != b:
                if out and out[-1][0] + len(out[-1][1]) == offset:
                    out[-1] = (out[-1][0], out[-1][1] + b)
                else:
                    out.append((offset, b))
            offset += len(b)


def incremental_from_raw(
    base: Path, old_raw: Path, new_raw: Path, name: str, *, block: int = 65536
) -> Path:
    size = new_raw.stat().st_size
    grow = size if size > old_raw.stat().st_size else None
    return make_incremental(base, changed_blocks(old_raw, new_raw, block), name, size=grow)


def qemu_raw(image: Path) -> Path:
    recipe = ["qemu_raw", file_id(image)]

    def build(out: Path) -> None:
        run("qemu-img", "convert", "-O", "raw", image, out)

    return cached(f"{image.stem}-expected", recipe, build, suffix="raw")


def qemu_map(image: Path) -> list[dict[str, Any]]:
    extents: list[dict[str, Any]] = json.loads(run("qemu-img", "map", "--output=json", image))
    return extents


# --- the image layer's own test disk and variants --------------------------------------------

DISK_SIZE = 20 * MiB + 3584  # not a multiple of any cluster size from 4 KiB up
NOISE = (10 * MiB + 4 * KiB, 1 * MiB)
# about half of the disk is holes: every variant, chain and expected raw of it takes only the
# data's room in the cache (about 9 MiB each, from 17 MiB), and a CI machine's disk is small.
# The recipes' zero writes and discards at 3M, 6M, 7M + 4K and 12M still land on data.
HOLES = [
    (1 * MiB, 2 * MiB),
    (5 * MiB + 4 * KiB, 64 * KiB),
    (7 * MiB + 64 * KiB, 2 * MiB - 64 * KiB),
    (9 * MiB + 512, 512),
    (12 * MiB + 256 * KiB, 4 * MiB - 256 * KiB),
    (16 * MiB, 2 * MiB),
    (18 * MiB + 256 * KiB, 2 * MiB - 256 * KiB),
]


def test_disk() -> Path:
    """A raw disk of self-checking 4 KiB blocks with holes of several sizes and alignments."""

    def build(out: Path) -> None:
        data = bytearray(block_content("qcow-test-disk", DISK_SIZE))
        # incompressible: qemu-img -c stores such clusters uncompressed, beside compressed ones
        noise = b"".join(hashlib.sha256(b"noise%d" % i).digest() for i in range(NOISE[1] // 32))
        data[NOISE[0] : NOISE[0] + NOISE[1]] = noise
        for offset, length in HOLES:
            data[offset : offset + length] = bytes(length)
        out.write_bytes(data)
        if out.read_bytes() != data:
            raise RuntimeError("raw test disk did not read back")

    return cached("qcow-test-disk", ["disk", DISK_SIZE, HOLES, NOISE], build, suffix="raw")


def _with_qemu_io(name: str, source: Callable[[], Path], commands: Sequence[str]) -> Path:
    """A copy of ``source()`` changed by qemu-io commands (and qemu-img snapshot ones)."""
    src = source()

    def build(out: Path) -> None:
        copy_sparse(src, out)
        for cmd in commands:
            if cmd.startswith("crash "):
                # qemu-io's abort leaves the image as a crashed VM would: dirty, with lazy
                # refcounts not yet written
                subprocess.run(
                    ["qemu-io", "-f", "qcow2", "-c", cmd.split(" ", 1)[1], "-c", "abort", out],
                    capture_output=True,
                    check=False,
                )
                with out.open("rb") as fh:
                    if not fh.read(80)[79] & 1:
                        raise RuntimeError("the crashed image is not marked dirty")
            elif cmd.startswith("snapshot "):
                run("qemu-img", "snapshot", "-c", cmd.split(" ", 1)[1], out)
            else:
                run("qemu-io", "-f", "qcow2", "-c", cmd, out)

    return cached(name, ["qemu-io", file_id(src), list(commands)], build, suffix="qcow2")


def _variant(**kw: Any) -> Callable[[], Path]:
    return lambda: to_qcow2(test_disk(), "qcow-variant", **kw)


VARIANTS: dict[str, Callable[[], Path]] = {
    "v2-64k": _variant(compat="0.10"),
    "v2-512": _variant(compat="0.10", cluster_size=512),
    "v3-64k": _variant(),
    "v3-512": _variant(cluster_size=512),
    "v3-4k": _variant(cluster_size=4096),
    "v3-2m": _variant(cluster_size=2 * MiB),
    "lazy-refcounts": _variant(options=["lazy_refcounts=on"]),
    "refcount-1": _variant(options=["refcount_bits=1"]),
    "refcount-64": _variant(options=["refcount_bits=64"]),
    "prealloc-metadata": _variant(options=["preallocation=metadata"]),
    "prealloc-full": _variant(options=["preallocation=full"]),
    "zlib": _variant(compression="zlib"),
    "zlib-v2": _variant(compat="0.10", compression="zlib"),
    "zlib-4k": _variant(cluster_size=4096, compression="zlib"),
    "zstd": _variant(compression="zstd"),
    "zstd-2m": _variant(cluster_size=2 * MiB, compression="zstd"),
    "snapshot": lambda: _with_qemu_io(
        "qcow-snapshot",
        _variant(),
        ["snapshot snap1", "write -P 0xab 1000k 200k", "snapshot snap2", "write -z 4M 128k"],
    ),
    "zero-clusters": lambda: _with_qemu_io(
        "qcow-zero",
        _variant(),
        ["write -z 2M 128k", "write -z -u 6M 192k", f"write -z {7 * MiB + 4 * KiB} 8k"],
    ),
    "zero-clusters-prealloc": lambda: _with_qemu_io(
        "qcow-zero-prealloc", _variant(options=["preallocation=metadata"]), ["write -z 3M 256k"]
    ),
    "discarded": lambda: _with_qemu_io(
        "qcow-discard", _variant(), ["discard 4M 192k", "discard 12M 64k"]
    ),
    "compressed-then-written": lambda: _with_qemu_io(
        "qcow-zstd-rw", _variant(compression="zstd"), ["write -P 0x5a 100k 300k"]
    ),
    "dirty-lazy-refcounts": lambda: _with_qemu_io(
        "qcow-dirty", _variant(options=["lazy_refcounts=on"]), ["crash write -P 0x33 1M 200k"]
    ),
    # 32 subclusters per cluster: writes and zeroes smaller than a cluster stay subclusters
    "extended-l2": lambda: _with_qemu_io(
        "qcow-extl2",
        _variant(options=["extended_l2=on"]),
        ["write -z 2050k 2k", "write -P 0x41 1027k 3k", "write -z -u 7000k 64k"],
    ),
    "extended-l2-32k": _variant(cluster_size=32768, options=["extended_l2=on"]),
    "extended-l2-zlib": _variant(compression="zlib", options=["extended_l2=on"]),
}


def corrupt_flagged() -> Path:
    """The v3 variant with the corrupt bit set (``qemu-img info`` then reports corrupt: true)."""
    src = VARIANTS["v3-64k"]()

    def build(out: Path) -> None:
        copy_sparse(src, out)
        with out.open("r+b") as fh:
            fh.seek(79)  # low byte of incompatible_features (big-endian, bytes 72-79)
            flags = fh.read(1)[0]
            fh.seek(79)
            fh.write(bytes([flags | 2]))

    return cached("qcow-corrupt-bit", ["corrupt-bit", file_id(src)], build, suffix="qcow2")


def truncated() -> Path:
    """A qcow2 cut short in the middle of its data clusters."""
    src = VARIANTS["v3-64k"]()

    def build(out: Path) -> None:
        copy_sparse(src, out)
        os.truncate(out, src.stat().st_size * 6 // 10)

    return cached("qcow-truncated", ["truncated", file_id(src)], build, suffix="qcow2")


# --- backing chains -------------------------------------------------------------------------

# Each layer changes data (unaligned, across cluster edges), adds data in a hole, and zeroes
# data: (pattern writes (offset, length, byte), zero writes (offset, length), file writes).
LAYERS: list[dict[str, Any]] = [
    {
        "patterns": [(100 * KiB + 7 * 512, 200 * KiB, 0x11)],
        "zeros": [(3 * MiB, 256 * KiB)],
        "writes": [(1 * MiB + 60 * KiB, 9000)],
    },
    {
        "patterns": [(1 * MiB + 64 * KiB, 64 * KiB, 0x22), (7 * MiB + 512, 1536, 0x23)],
        "zeros": [(100 * KiB, 64 * KiB)],
        "writes": [(17 * MiB - 4 * KiB, 12 * KiB)],
    },
    {
        "patterns": [(20 * MiB, 3584, 0x33)],
        "zeros": [(17 * MiB, 4 * KiB)],
        "writes": [(512, 70 * KiB)],
    },
]


def _layer_args(i: int, layer: dict[str, Any]) -> dict[str, Any]:
    writes = [(off, block_content(f"layer{i}-{off}", n)) for off, n in layer["writes"]]
    return {"patterns": layer["patterns"], "zeros": layer["zeros"], "writes": writes}


def _build_chain(out: Path, kind: str) -> None:
    """Build a chain directory; ``top.qcow2`` is its top image."""
    out.mkdir()
    raw = test_disk()
    # extended L2 overlays: the layers' small writes allocate subclusters over the backing
    options = ["extended_l2=on"] if kind == "extended-l2" else ["compat=1.1"]
    sub = out / "sub" if kind == "subdir" else out
    sub.mkdir(exist_ok=True)
    if kind == "raw-base":
        copy_sparse(raw, out / "base.raw")
        base, base_name = out / "base.raw", "base.raw"
    else:
        base = sub / "base.qcow2"
        run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", ",".join(options), raw, base)
        base_name = "sub/base.qcow2" if kind == "subdir" else "base.qcow2"
    layers = LAYERS
    if kind == "deep10":
        layers = [
            {
                "patterns": [(i * MiB + i * 4096 + 100, 5000 + i, 0x40 + i)],
                "zeros": [],
                "writes": [],
            }
            for i in range(10)
        ]
    below, below_name = base, base_name
    for i, layer in enumerate(layers):
        last = i == len(layers) - 1
        path = out / ("top.qcow2" if last else f"inc{i + 1}.qcow2")
        size = DISK_SIZE + 5 * MiB if last and kind == "grown" else None
        _overlay(path, below, below_name, size=size, options=options, **_layer_args(i, layer))
        below, below_name = path, path.name
    if kind == "grown":
        # data in the grown part, past the end of every backing file
        run("qemu-io", "-f", "qcow2", "-c", f"write -P 0x77 {DISK_SIZE + MiB} 100k", below)


CHAIN_KINDS = ("flat", "subdir", "raw-base", "grown", "deep10", "extended-l2")


def chain(kind: str) -> Path:
    """A directory holding a backing chain of ``kind`` (see CHAIN_KINDS), top ``top.qcow2``."""
    if kind not in CHAIN_KINDS:
        raise ValueError(kind)
    recipe = ["chain", kind, file_id(test_disk()), LAYERS]
    return cached(f"qcow-chain-{kind}", recipe, lambda out: _build_chain(out, kind), suffix="d")

"""QCOW2 images with external data files, made by qemu-img and qemu-io, cached per recipe.

QEMU 7.2 resolves a relative data file name from its own working directory, not from the
image's (block/qcow2.c qcow2_do_open() hands the stored name to bdrv_open_child() as is), so
every qemu command here runs in the image's directory: that is where filerestore looks.

- ``VARIANTS``: name -> builder of one image of ``qcow.test_disk()`` with a data file, then
  changed by qemu-io (pattern writes, zero writes with and without unmap, discards); each
  returns ``disk.qcow2`` in a directory beside its data file ``disk-data.raw``.
- ``chain(kind)``: directories holding chains made with ``qemu-img create -b`` where a data
  file is on the overlay, the base or both (``CHAIN_KINDS``); top ``top.qcow2``.
- ``qemu_raw(image)``: ``qemu-img convert -O raw`` of an image and its chain, run in the
  image's directory: the expected guest disk, from qemu itself.
- ``convert(source, name, raw=...)``: any image converted by qemu-img to a qcow2 with a
  data file (the whole-stack tests convert the GPT + ext4 disk).
- ``create(image, data_file, size, commands, ...)``: ``qemu-img create`` then qemu-io, for
  tests that need names the cache cannot hold (absolute paths in a test's directory).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from tests.imagebuild import qcow
from tests.imagebuild.cache import cached
from tests.imagebuild.commands import file_id
from tests.imagebuild.commands import run as run  # the tests call it through this module too
from tests.imagebuild.sparse import copytree_sparse
from tests.imagebuild.tree import MiB

KiB = 1 << 10


def qemu_io(image: Path, commands: Sequence[str]) -> None:
    if commands:
        args = [a for c in commands for a in ("-c", c)]
        run("qemu-io", "-f", "qcow2", *args, image.name, cwd=image.parent)


def create(
    image: Path,
    data_file: str,
    size: int | None,
    commands: Sequence[str] = (),
    *,
    raw: bool = False,
    backing: str | None = None,
) -> Path:
    """``qemu-img create -f qcow2 -o data_file=...`` in ``image``'s directory, then qemu-io;
    ``size`` None takes the backing file's."""
    opts = f"data_file={data_file}" + (",data_file_raw=on" if raw else "")
    cmd = ["qemu-img", "create", "-q", "-f", "qcow2", "-o", opts]
    if backing is not None:
        cmd += ["-b", backing, "-F", "qcow2"]
    run(*cmd, image.name, *([] if size is None else [str(size)]), cwd=image.parent)
    qemu_io(image, commands)
    return image


def qemu_raw(image: Path) -> Path:
    recipe = ["data-file-raw", file_id(image)]

    def build(out: Path) -> None:
        run("qemu-img", "convert", "-O", "raw", image.name, out, cwd=image.parent)

    return cached(f"{image.stem}-dfexpected", recipe, build, suffix="raw")


def _to_qcow2(source: Path, image: Path, options: Sequence[str]) -> None:
    """``qemu-img convert -O qcow2 -o OPTIONS`` of ``source`` to ``image``, run in its
    directory (the data file names in ``options`` are relative to it)."""
    run(
        "qemu-img",
        "convert",
        "-O",
        "qcow2",
        "-o",
        ",".join(options),
        source,
        image.name,
        cwd=image.parent,
    )


def convert(
    source: Path,
    name: str,
    *,
    raw: bool = False,
    data_name: str = "disk-data.raw",
    options: Sequence[str] = (),
    commands: Sequence[str] = (),
) -> Path:
    """``qemu-img convert -O qcow2 -o data_file=data_name`` of ``source``, then qemu-io:
    ``disk.qcow2`` in a cached directory, beside its data file."""
    opts = [f"data_file={data_name}", *(["data_file_raw=on"] if raw else []), *options]
    recipe = ["convert", file_id(source), opts, list(commands)]

    def build(out: Path) -> None:
        out.mkdir()
        _to_qcow2(source, out / "disk.qcow2", opts)
        qemu_io(out / "disk.qcow2", commands)
        info = run("qemu-img", "info", "disk.qcow2", cwd=out)
        if f"data file: {data_name}" not in info:
            raise RuntimeError(f"qemu-img made no data file: {info}")

    return cached(name, recipe, build, suffix="d") / "disk.qcow2"


# Zero writes over data (the zero flag, and with -u the cluster dropped), a discard, and
# writes that start and end inside clusters.
WRITES = [
    f"write -P 0x5a {100 * KiB + 512} {300 * KiB}",
    "write -z 2M 128k",
    "write -z -u 6M 192k",
    f"write -z {7 * MiB + 4 * KiB} 8k",
    "discard 12M 128k",
    f"write -P 0x3c {20 * MiB} 3584",  # the disk's last, partial cluster
]
# 32 subclusters per cluster: small writes and zeroes stay subclusters
EXTL2_WRITES = [
    "write -z 2050k 2k",
    "write -P 0x41 1027k 3k",
    "write -z -u 7000k 64k",
    "discard 9M 64k",
]


def _variant(raw: bool, options: Sequence[str], commands: Sequence[str]) -> Callable[[], Path]:
    return lambda: convert(
        qcow.test_disk(), "qcow-data-file", raw=raw, options=options, commands=commands
    )


VARIANTS: dict[str, Callable[[], Path]] = {
    "data-file": _variant(False, [], WRITES),
    "data-file-raw": _variant(True, [], WRITES),
    "data-file-4k": _variant(False, ["cluster_size=4096"], WRITES),
    "data-file-extended-l2": _variant(False, ["extended_l2=on"], EXTL2_WRITES),
    "data-file-raw-extended-l2": _variant(True, ["extended_l2=on"], EXTL2_WRITES),
}

# --- chains ----------------------------------------------------------------------------------

# writes over the backing file that start and end inside clusters (qemu copies the rest of
# each cluster from the backing file into the data file), zeroes and a discard over it
OVERLAY_WRITES = [
    f"write -P 0x11 {100 * KiB + 7 * 512} {200 * KiB}",
    "write -z 3M 256k",
    f"write -P 0x22 {17 * MiB - 4 * KiB} 12k",
    "discard 5M 128k",
]
CHAIN_KINDS = (
    "data-file-on-base",  # an overlay with a data file on a plain qcow2
    "on-data-file-base",  # a plain overlay on a base with a data file
    "on-raw-data-file-base",  # a plain overlay on a base with a raw data file
    "data-file-on-data-file",  # both
)


def _build_chain(out: Path, kind: str) -> None:
    out.mkdir()
    base_data = kind != "data-file-on-base"
    opts = ["compat=1.1"]
    if base_data:
        opts.append("data_file=base-data.raw")
    if kind == "on-raw-data-file-base":
        opts.append("data_file_raw=on")
    _to_qcow2(qcow.test_disk(), out / "base.qcow2", opts)
    top = out / "top.qcow2"
    if kind in ("data-file-on-base", "data-file-on-data-file"):
        create(top, "top-data.raw", qcow.DISK_SIZE, OVERLAY_WRITES, backing="base.qcow2")
    else:
        run(
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            "base.qcow2",
            "-F",
            "qcow2",
            top.name,
            cwd=out,
        )
        qemu_io(top, OVERLAY_WRITES)


def chain(kind: str) -> Path:
    """The top ``top.qcow2`` of a chain of ``kind`` (CHAIN_KINDS), in its own directory."""
    if kind not in CHAIN_KINDS:
        raise ValueError(kind)
    recipe = ["chain", kind, file_id(qcow.test_disk()), OVERLAY_WRITES]
    d = cached(f"qcow-data-file-chain-{kind}", recipe, lambda out: _build_chain(out, kind), "d")
    return d / "top.qcow2"


def copy_dir(image: Path, dest: Path) -> Path:
    """A copy of the directory holding ``image`` (and its data files), the image in it."""
    copytree_sparse(image.parent, dest)
    return dest / image.name

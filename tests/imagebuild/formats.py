"""VMDK, VHD and VHDX test images made by qemu-img and qemu-io, cached per recipe.

- ``VARIANTS``: name -> builder of one image of ``qcow.test_disk()`` in a subformat with
  options (every subformat and option qemu-img writes); each returns the top file's path
  and ``QEMU_FORMAT[name]`` is the driver to read it with (``-f``: qemu probes a fixed VHD
  as raw).
- ``SPLIT``: images over 4 GiB (sparse on the host), so twoGbMaxExtent* have several
  extents, with data written across the extent boundaries.
- ``CHAINS``: directories holding chains made with ``qemu-img create -b`` and qemu-io
  writes (VMDK snapshots, QCOW2 overlays on VMDK, VHD and VHDX bases); top ``top.*``.
- ``differencing(kind)``: a differencing VHD or VHDX over a qemu-made base, built byte by
  byte (qemu cannot make one), with its expected raw disk computed from the base's qemu
  conversion and the writes.
- ``convert(source, fmt, options, name)``: any image converted by qemu-img (the whole-stack
  tests convert the GPT + ext4 disk).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.imagebuild import formats_bytes as fb
from tests.imagebuild import qcow
from tests.imagebuild.cache import cached
from tests.imagebuild.commands import file_id
from tests.imagebuild.commands import run as run  # the tests call it through this module too
from tests.imagebuild.sparse import copy_sparse
from tests.imagebuild.tree import MiB, block_content

EXT = {"vmdk": "vmdk", "vpc": "vhd", "vhdx": "vhdx", "qcow2": "qcow2"}
GiB = 1 << 30


def convert(source: Path, fmt: str, options: Sequence[str], name: str) -> Path:
    """``qemu-img convert -O fmt -o options source``, the file ``disk.<ext>`` of a directory."""
    recipe = ["convert", file_id(source), fmt, list(options)]

    def build(out: Path) -> None:
        out.mkdir()
        opts = ["-o", ",".join(options)] if options else []
        run("qemu-img", "convert", "-O", fmt, *opts, source, out / f"disk.{EXT[fmt]}")

    return cached(name, recipe, build, suffix="d") / f"disk.{EXT[fmt]}"


def qemu_raw(image: Path, fmt: str | None = None) -> Path:
    """qemu-img's raw conversion of ``image`` (and its chain), read as ``fmt`` (probed when
    None): the expected guest disk."""
    recipe = ["raw", file_id(image), fmt]

    def build(out: Path) -> None:
        run("qemu-img", "convert", *(["-f", fmt] if fmt else []), "-O", "raw", image, out)

    return cached(f"{image.stem}-qemu", recipe, build, suffix="raw")


def _variant(fmt: str, *options: str) -> Callable[[], Path]:
    return lambda: convert(qcow.test_disk(), fmt, options, f"fmt-{fmt}")


VMDK_SUBFORMATS = (
    "monolithicSparse",
    "monolithicFlat",
    "twoGbMaxExtentSparse",
    "twoGbMaxExtentFlat",
    "streamOptimized",
)
VARIANTS: dict[str, Callable[[], Path]] = {
    **{f"vmdk-{s}": _variant("vmdk", f"subformat={s}") for s in VMDK_SUBFORMATS},
    **{
        f"vmdk-adapter-{a}": _variant("vmdk", f"adapter_type={a}")
        for a in ("ide", "buslogic", "lsilogic", "legacyESX")
    },
    "vmdk-compat6": _variant("vmdk", "compat6=on"),
    "vmdk-hwversion-4": _variant("vmdk", "hwversion=4"),
    "vmdk-stream-compat6": _variant("vmdk", "subformat=streamOptimized", "compat6=on"),
    "vmdk-flat-lsilogic": _variant("vmdk", "subformat=monolithicFlat", "adapter_type=lsilogic"),
    "vpc-dynamic": _variant("vpc", "subformat=dynamic"),
    "vpc-fixed": _variant("vpc", "subformat=fixed"),
    "vpc-dynamic-force-size": _variant("vpc", "subformat=dynamic", "force_size=on"),
    "vpc-fixed-force-size": _variant("vpc", "subformat=fixed", "force_size=on"),
    "vhdx-dynamic": _variant("vhdx", "subformat=dynamic"),
    "vhdx-fixed": _variant("vhdx", "subformat=fixed"),
    "vhdx-block-1m": _variant("vhdx", "block_size=1M"),
    "vhdx-block-64m": _variant("vhdx", "block_size=64M"),
    "vhdx-block-256m-fixed": _variant("vhdx", "subformat=fixed", "block_size=256M"),
    "vhdx-log-4m": _variant("vhdx", "log_size=4M"),
    "vhdx-block-state-zero-off": _variant("vhdx", "block_state_zero=off"),
}


def qemu_format(name: str) -> str:
    return name.split("-", 1)[0]


def _written(name: str, fmt: str, options: Sequence[str], commands: Sequence[str]) -> Path:
    """A copy of the test disk in ``fmt``, then changed by qemu-io (zeroed grains, writes
    through qemu's VHDX log)."""
    src = convert(qcow.test_disk(), fmt, options, f"fmt-{fmt}")

    def build(out: Path) -> None:
        out.mkdir()
        copy_sparse(src, out / src.name)
        args = [a for c in commands for a in ("-c", c)]
        run("qemu-io", "-f", fmt, *args, out / src.name)

    return cached(name, ["written", file_id(src), list(commands)], build, suffix="d") / src.name


VARIANTS |= {
    "vmdk-zeroed-grain": lambda: _written(
        "fmt-vmdk-zero", "vmdk", ["zeroed_grain=on"], ["write -z 2M 256k", "write -z 7M 64k"]
    ),
    "vhdx-written": lambda: _written(
        "fmt-vhdx-written",
        "vhdx",
        ["block_size=1M"],
        ["write -P 0x5c 3000k 2M", "write -z 12M 1M", "discard 15M 1M"],
    ),
    "vpc-written": lambda: _written(
        "fmt-vpc-written", "vpc", ["subformat=dynamic"], ["write -P 0x5d 1000k 300k"]
    ),
}


# --- split extents: more than one 2 GiB extent --------------------------------------------

SPLIT_SIZE = 4 * GiB + 512 * MiB
# (offset, length, pattern) across the 2 GiB and 4 GiB extent boundaries
SPLIT_WRITES = [
    (2 * GiB - 96 * 1024, 200 * 1024, 0x21),
    (4 * GiB - 4096, 8192, 0x42),
    (0, 65536, 0x63),
]


def split(subformat: str) -> Path:
    def build(out: Path) -> None:
        out.mkdir()
        disk = out / "disk.vmdk"
        run(
            "qemu-img",
            "create",
            "-q",
            "-f",
            "vmdk",
            "-o",
            f"subformat={subformat}",
            disk,
            str(SPLIT_SIZE),
        )
        args = [a for off, n, p in SPLIT_WRITES for a in ("-c", f"write -P {p} {off} {n}")]
        run("qemu-io", "-f", "vmdk", *args, disk)

    return (
        cached(f"fmt-split-{subformat}", ["split", SPLIT_WRITES], build, suffix="d") / "disk.vmdk"
    )


# --- chains made by qemu-img create -b -----------------------------------------------------

CHAIN_KINDS = (
    "vmdk",
    "vmdk-flat-base",
    "qcow2-on-vmdk",
    "qcow2-on-vpc",
    "qcow2-on-vhdx",
    "qcow2-on-stream",
)
LAYER_WRITES = [
    ["write -P 0x11 100k 200k", "write -z 3M 256k"],
    ["write -P 0x22 1088k 64k", "write -P 0x23 7M 1536"],
]


def _build_chain(out: Path, kind: str) -> None:
    out.mkdir()
    raw = qcow.test_disk()
    base_fmt = {"qcow2-on-vpc": "vpc", "qcow2-on-vhdx": "vhdx"}.get(kind, "vmdk")
    base_opts = {
        "vmdk-flat-base": ["subformat=monolithicFlat"],
        "qcow2-on-stream": ["subformat=streamOptimized"],
    }.get(kind, [])
    base = out / f"base.{EXT[base_fmt]}"
    opts = ["-o", ",".join(base_opts)] if base_opts else []
    run("qemu-img", "convert", "-f", "raw", "-O", base_fmt, *opts, raw, base)
    top_fmt = "vmdk" if kind.startswith("vmdk") else "qcow2"
    below, below_fmt = base, base_fmt
    for i, commands in enumerate(LAYER_WRITES):
        last = i == len(LAYER_WRITES) - 1
        path = out / (f"top.{EXT[top_fmt]}" if last else f"inc{i + 1}.{EXT[top_fmt]}")
        run("qemu-img", "create", "-q", "-f", top_fmt, "-b", below.name, "-F", below_fmt, path)
        run("qemu-io", "-f", top_fmt, *[a for c in commands for a in ("-c", c)], path)
        below, below_fmt = path, top_fmt


def chain(kind: str) -> Path:
    """A directory holding a chain of ``kind`` (CHAIN_KINDS); the top is ``top.*``."""
    if kind not in CHAIN_KINDS:
        raise ValueError(kind)
    d = cached(
        f"fmt-chain-{kind}",
        ["chain", kind, file_id(qcow.test_disk()), LAYER_WRITES],
        lambda out: _build_chain(out, kind),
        suffix="d",
    )
    return next(d.glob("top.*"))


# --- differencing VHD and VHDX, byte by byte over a qemu-made base -------------------------

DIFF_WRITES = [
    (1 * MiB + 512, block_content("diff-a", 3 * 512)),  # a few sectors inside a block
    (2 * MiB - 4096, block_content("diff-b", 8192)),  # across a block boundary
    (6 * MiB, block_content("diff-c", 1 * MiB)),  # one whole VHDX block
    (16 * MiB + 4096, bytes(4096)),  # zeros written over a hole
]


def _apply(raw: bytes, writes: Sequence[tuple[int, bytes]]) -> bytes:
    out = bytearray(raw)
    for offset, data in writes:
        out[offset : offset + len(data)] = data
    return bytes(out)


def _vhdx_blocks(
    size: int, writes: Sequence[tuple[int, bytes]]
) -> dict[int, tuple[int, bytes, bytes | None]]:
    block = 1 * MiB
    sectors: dict[int, bytearray] = {}
    data: dict[int, bytearray] = {}
    for offset, payload in writes:
        for pos in range(offset, offset + len(payload), fb.SECTOR):
            index, into = divmod(pos, block)
            bits = sectors.setdefault(index, bytearray(block // fb.SECTOR // 8))
            buf = data.setdefault(index, bytearray([fb.GARBAGE]) * block)
            s = into // fb.SECTOR
            bits[s // 8] |= 1 << (s % 8)
            buf[into : into + fb.SECTOR] = payload[pos - offset : pos - offset + fb.SECTOR]
    out: dict[int, tuple[int, bytes, bytes | None]] = {}
    for index, bits in sectors.items():
        if all(b == 0xFF for b in bits):
            out[index] = (6, bytes(data[index]), None)  # fully present
        else:
            out[index] = (7, bytes(data[index]), bytes(bits))  # partially present
    return out


def differencing(kind: str) -> Path:
    """A directory with ``base.*`` (qemu-img), ``child.*`` (byte by byte) and ``expected.raw``;
    returns the child. ``kind``: "vpc", "vpc-subdir" (W2ru ``..\\base.vhd``), "vhdx"."""
    fmt = kind.split("-")[0]
    digest = hashlib.sha256(b"".join(d for _, d in DIFF_WRITES)).hexdigest()

    def build(out: Path) -> None:
        out.mkdir()
        ext = EXT[fmt]
        base = out / f"base.{ext}"
        run("qemu-img", "convert", "-f", "raw", "-O", fmt, qcow.test_disk(), base)
        base_raw = out / "base.raw"
        run("qemu-img", "convert", "-f", fmt, "-O", "raw", base, base_raw)
        raw = base_raw.read_bytes()
        base_raw.unlink()
        child_dir = out / "children" if kind == "vpc-subdir" else out
        child_dir.mkdir(exist_ok=True)
        if fmt == "vpc":
            footer = base.read_bytes()[: fb.SECTOR]
            rel = "..\\base.vhd" if kind == "vpc-subdir" else ".\\base.vhd"
            locators = {
                b"W2ku": b"C:\\vms\\base.vhd".decode().encode("utf-16-le"),
                b"W2ru": rel.encode("utf-16-le"),
            }
            child = fb.vhd_differencing(footer, DIFF_WRITES, locators=locators)
        else:
            parent = base.read_bytes()
            size = len(raw)
            locator = {
                "parent_linkage": "{"
                + str(uuid.UUID(bytes_le=fb.vhdx_data_write_guid(parent)))
                + "}",
                "relative_path": ".\\base.vhdx",
                "absolute_win32_path": "C:\\vms\\base.vhdx",
            }
            blocks = _vhdx_blocks(size, DIFF_WRITES)
            blocks[9] = (2, b"", None)  # an explicit zero block over the parent's data
            child = fb.vhdx_image(size, blocks, locator=locator)
            raw = _apply(raw, [(9 * MiB, bytes(MiB))])
        (child_dir / f"child.{ext}").write_bytes(child)
        (out / "expected.raw").write_bytes(_apply(raw, DIFF_WRITES))

    # the byte builders live in another module: their source is part of the recipe
    recipe = ["diff", kind, digest, file_id(qcow.test_disk()), Path(fb.__file__).read_text()]
    d = cached(f"fmt-diff-{kind}", recipe, build, suffix="d")
    return next(d.rglob("child.*"))

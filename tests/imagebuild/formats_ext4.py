"""The GPT + ext4 disk of the CLI tests (``tests.imagebuild.gpt_ext4.single_ext4``) as a VHDX
differencing chain, cached per recipe, for tests that read files through a chain qemu cannot
make (QEMU's vhdx driver writes no differencing disk).

``vhdx_chain(built)`` -> the directory's ``child.vhdx``: ``base.vhdx`` is ``qemu-img
convert`` of the disk with the start of ``docs/data.bin``'s data zeroed (``DAMAGED``
bytes); ``child.vhdx`` is a differencing disk built byte by byte over it, holding the
1 MiB blocks with those bytes as the disk has them. So the chain reads as the disk and the
base alone does not: a reader that ignored the child would return zeros in that file.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.imagebuild import formats_bytes as fb
from tests.imagebuild.cache import cached
from tests.imagebuild.commands import file_id, run
from tests.imagebuild.gpt_ext4 import Built
from tests.imagebuild.tree import MiB

FILE = "docs/data.bin"  # 3 MiB of block_content: its bytes occur once on the disk
DAMAGED = 256 * 1024  # bytes of it zeroed in the base
BLOCK = 1 * MiB  # the child's block size (formats_bytes.vhdx_image's default)


def vhdx_chain(built: Built) -> Path:
    def build(out: Path) -> None:
        out.mkdir()
        raw = out / "disk.raw"
        run("qemu-img", "convert", "-O", "raw", built.image, raw)
        disk = raw.read_bytes()
        content = (built.tree(0) / FILE).read_bytes()[:DAMAGED]
        at = disk.find(content)
        if at < 0 or disk.find(content, at + 1) >= 0:
            raise RuntimeError(f"the first {DAMAGED} bytes of {FILE} are not on the disk once")
        raw.write_bytes(disk[:at] + bytes(DAMAGED) + disk[at + DAMAGED :])
        base = out / "base.vhdx"
        run("qemu-img", "convert", "-f", "raw", "-O", "vhdx", raw, base)
        # the base as qemu reads it: the disk with those bytes zeroed
        run("qemu-img", "convert", "-f", "vhdx", "-O", "raw", base, raw)
        if raw.read_bytes() != disk[:at] + bytes(DAMAGED) + disk[at + DAMAGED :]:
            raise RuntimeError("qemu reads the base otherwise")
        raw.unlink()
        blocks: dict[int, tuple[int, bytes, bytes | None]] = {
            i: (6, disk[i * BLOCK : (i + 1) * BLOCK], None)  # 6: PAYLOAD_BLOCK_FULLY_PRESENT
            for i in range(at // BLOCK, (at + DAMAGED - 1) // BLOCK + 1)
        }
        linkage = uuid.UUID(bytes_le=fb.vhdx_data_write_guid(base.read_bytes()))
        locator = {"parent_linkage": "{" + str(linkage) + "}", "relative_path": ".\\base.vhdx"}
        (out / "child.vhdx").write_bytes(fb.vhdx_image(len(disk), blocks, locator=locator))

    # the byte builders live in another module: their source is part of the recipe
    recipe = ["vhdx-chain", file_id(built.image), FILE, DAMAGED, Path(fb.__file__).read_text()]
    return cached("ext4-vhdx-chain", recipe, build, suffix="d") / "child.vhdx"

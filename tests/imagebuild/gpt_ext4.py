"""Small GPT disks with ext4 partitions, built by sfdisk + mke2fs -d + qemu-img, shared by the
CLI, open_stack, FUSE and S3 tests.

Each artefact is one cached directory holding the source trees (``tree-<n>``) and the image
(``disk.qcow2``), so the expected values (the source trees, with their mtimes) and the image
built from them can never come from different builds.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.imagebuild.cache import cached
from tests.imagebuild.tree import EXT4, Features, MiB, make_tree

BUILDER_VERSION = 2
SECTOR = 512
FIRST_LBA = 2048

# The standard tree without the 5 GiB sparse file: `get /` must finish in seconds.
CLI_TREE = Features(big_sparse=False)


@dataclass(frozen=True)
class Partition:
    label: str
    size_mib: int
    features: Features | None = EXT4  # None: leave the partition without a filesystem
    named: bool = True  # give the GPT entry the label as its name too


@dataclass(frozen=True)
class Built:
    root: Path

    @property
    def image(self) -> Path:
        return self.root / "disk.qcow2"

    def tree(self, index: int = 0) -> Path:
        return self.root / f"tree-{index}"

    def layout(self) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.root / "sfdisk.json").read_text())
        return data


def _run(*cmd: str | os.PathLike[str]) -> str:
    return subprocess.run(
        [os.fspath(c) for c in cmd], check=True, capture_output=True, text=True
    ).stdout


def build_gpt_ext4(name: str, parts: list[Partition]) -> Built:
    recipe = {
        "v": BUILDER_VERSION,
        "parts": [
            [p.label, p.size_mib, p.features.recipe() if p.features else None, p.named]
            for p in parts
        ],
    }

    def build(out: Path) -> None:
        out.mkdir()
        raw = out / "disk.raw"
        total = FIRST_LBA * SECTOR + sum(p.size_mib for p in parts) * MiB + MiB
        with raw.open("wb") as fh:
            fh.truncate(total)
        script = "label: gpt\n" + "".join(
            f"size={p.size_mib}MiB, type=linux" + (f", name={p.label}\n" if p.named else "\n")
            for p in parts
        )
        subprocess.run(["sfdisk", "-q", raw], input=script, text=True, check=True)
        layout = json.loads(_run("sfdisk", "--json", raw))
        (out / "sfdisk.json").write_text(json.dumps(layout))
        for index, (part, entry) in enumerate(
            zip(parts, layout["partitiontable"]["partitions"], strict=True)
        ):
            if part.features is None:
                continue
            tree = _extended(make_tree(out / f"tree-{index}", part.features))
            fs_img = out / f"p{index}.ext4"
            _run(
                "mke2fs",
                "-q",
                "-F",
                "-t",
                "ext4",
                "-L",
                part.label,
                "-d",
                tree,
                fs_img,
                f"{part.size_mib}M",
            )
            _verify_ext4(fs_img, tree)
            _run(
                "dd",
                f"if={fs_img}",
                f"of={raw}",
                "bs=512",
                f"seek={entry['start']}",
                "conv=notrunc,sparse",
                "status=none",
            )
            fs_img.unlink()
        _run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, out / "disk.qcow2")
        raw.unlink()

    return Built(cached(name, recipe, build, suffix="d"))


def _extended(tree: Path) -> Path:
    """The standard tree plus special mode bits, with mtimes cut to whole seconds.

    mke2fs -d stores whole seconds only, so the source is cut to match: expected values then
    compare exactly.
    """
    suid = tree / "docs" / "suid-tool"
    suid.write_bytes(b"#!/bin/sh\n")
    suid.chmod(0o4755)
    sticky = tree / "shared-tmp"
    sticky.mkdir()
    (sticky / "note.txt").write_bytes(b"in a sticky directory\n")
    sticky.chmod(0o1777)
    paths = [tree, *sorted(tree.rglob("*"), key=lambda p: -len(p.parts))]
    for path in paths:
        st = path.lstat()
        secs = st.st_mtime_ns // 10**9 * 10**9
        os.utime(path, ns=(secs, secs), follow_symlinks=False)
    os.utime(tree, ns=(tree.lstat().st_mtime_ns // 10**9 * 10**9,) * 2)
    return tree


def _verify_ext4(fs_img: Path, tree: Path) -> None:
    """Check a few files read back through debugfs (an independent reader) before trusting."""
    for rel in ("hello.txt", "docs/data.bin", "docs/sub/nested.txt"):
        got = subprocess.run(
            ["debugfs", "-R", f"cat /{rel}", fs_img], check=True, capture_output=True
        ).stdout
        if got != (tree / rel).read_bytes():
            raise AssertionError(f"mke2fs -d wrote {rel} wrongly")


def single_ext4() -> Built:
    """One ext4 partition holding the standard tree."""
    return build_gpt_ext4("cli-ext4", [Partition("root", 64, CLI_TREE)])


def two_ext4() -> Built:
    """Two ext4 partitions (an ambiguous image) and one without a filesystem."""
    small = Features(big_sparse=False, sparse=False, deep=False, long_names=False)
    return build_gpt_ext4(
        "cli-two-ext4",
        [Partition("alpha", 16, small), Partition("empty", 4, None), Partition("beta", 16, small)],
    )


def two_unnamed_ext4() -> Built:
    """Two ext4 partitions whose GPT entries have no names: only the filesystems have labels."""
    small = Features(big_sparse=False, sparse=False, deep=False, long_names=False)
    return build_gpt_ext4(
        "cli-unnamed-ext4",
        [Partition("left", 16, small, named=False), Partition("right", 16, small, named=False)],
    )

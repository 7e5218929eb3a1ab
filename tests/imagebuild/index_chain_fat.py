"""The FAT states of tests/imagebuild/index_chain.py, made with mtools (the kernel here has no
FAT driver): the same steps as on the other kinds, as far as FAT can hold them (no symbolic
or hard links, no owner or mode: a chmod becomes the read-only attribute, a changed mtime a
copy with that mtime).

Each state's facts come from mtools reading it back (``mcopy -s -m`` of the whole volume to
a host directory, mtimes kept), never from our reader. mtools runs with TZ=UTC: FAT holds
local time, and our reader takes it as UTC.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.imagebuild.tree import block_content

MTIME = 1_600_000_000  # even: FAT keeps mtimes to 2 s
TOUCHED = 1_700_000_000
_ENV = {**os.environ, "TZ": "UTC", "MTOOLS_SKIP_CHECK": "1"}


def _m(tool: str, raw: Path, *args: str | Path) -> None:
    subprocess.run([tool, "-i", raw, *args], check=True, capture_output=True, env=_ENV)


class _Fat:
    """One FAT image changed through mtools; files are staged in a host directory first."""

    def __init__(self, raw: Path, stage: Path) -> None:
        self.raw, self.stage = raw, stage

    def put(self, path: str, data: bytes, mtime: int = MTIME) -> None:
        """Write (or overwrite) ``path`` with ``data`` and ``mtime``; parents must exist."""
        local = self.stage / Path(path).name
        local.write_bytes(data)
        os.utime(local, (mtime, mtime))
        _m("mcopy", self.raw, "-o", "-m", local, f"::/{path}")
        local.unlink()

    def get(self, path: str) -> bytes:
        local = self.stage / "got"
        _m("mcopy", self.raw, "-n", f"::/{path}", local)
        data = local.read_bytes()
        local.unlink()
        return data

    def mkdir(self, path: str) -> None:
        _m("mmd", self.raw, f"::/{path}")


def fat_base(fat: _Fat) -> None:
    for d in ("docs", "docs/old", "photos", "projects", "projects/alpha", "projects/beta"):
        fat.mkdir(d)
    fat.mkdir("unicode")
    fat.mkdir("many")
    fat.put("docs/readme.md", b"# readme\n" * 50)
    fat.put("docs/report-2024.xlsx", block_content("report-2024", 3000))
    fat.put("docs/old/notes.txt", b"old notes\n")
    for i in range(1, 21):
        fat.put(f"photos/img_{i:04d}.jpg", block_content(f"img{i}", 1000 + i))
    fat.put("projects/alpha/main.c", b"int main(void) { return 0; }\n")
    fat.put("projects/alpha/Makefile", b"all:\n\tcc main.c\n")
    fat.put("projects/beta/main.c", b"int main(void) { return 1; }\n")
    fat.put("empty.txt", b"")
    fat.put("unicode/Résumé.PDF", b"resume\n")
    for i in range(300):
        fat.put(f"many/f{i:04d}.txt", b"%d\n" % i)


def fat_step1(fat: _Fat) -> None:
    fat.put("docs/readme.md", fat.get("docs/readme.md") + b"appended in step 1\n", MTIME + 2)
    fat.put("docs/report-2025.xlsx", block_content("report-2025", 4000))
    _m("mren", fat.raw, "::/docs/report-2024.xlsx", "report-2024-final.xlsx")
    _m("mdel", fat.raw, "::/photos/img_0005.jpg")
    _m("mmove", fat.raw, "::/projects/beta", "::/docs/old/beta")
    _m("mattrib", fat.raw, "+r", "::/docs/old/notes.txt")
    fat.put("many/f0100.txt", b"changed in step 1\n")
    _m("mdel", fat.raw, "::/many/f0200.txt")
    fat.put("many/f0300.txt", b"new in step 1\n")


def fat_step2(fat: _Fat) -> None:
    main = fat.get("projects/alpha/main.c")
    fat.put("projects/alpha/main.c", main.replace(b"return 0", b"return 7"), MTIME + 60)
    _m("mdeltree", fat.raw, "::/docs/old")
    _m("mdel", fat.raw, "::/empty.txt")
    fat.mkdir("empty.txt")
    fat.put("empty.txt/inside.txt", b"a directory now\n")
    fat.put("photos/img_0002.jpg", fat.get("photos/img_0002.jpg"), TOUCHED)
    # new bytes, same size, the old mtime put back: only the contents tell
    fat.put("photos/img_0003.jpg", block_content("img3-new", 1003))
    fat.put("photos/img_0005.jpg", block_content("img5-again", 1005))
    _m("mren", fat.raw, "::/projects/alpha", "alpha2")


FAT_STEPS: list[Callable[[_Fat], None]] = [fat_base, fat_step1, fat_step2]


def mkfs(kind: str, raw: Path, mib: int) -> None:
    subprocess.run(["truncate", "-s", f"{mib}M", raw], check=True)
    # FAT32 on 512-byte clusters (it needs 65,525 clusters at least, fatgen103 3.5: and long
    # cluster chains are what its directories are read by); FAT16 on 2 KiB ones (at most
    # 65,524), with its fixed root directory
    bits, sectors = ("32", "1") if kind == "fat32" else ("16", "4")
    subprocess.run(
        ["mkfs.vfat", "-F", bits, "-s", sectors, "-S", "512", "-n", "IDX", raw],
        check=True,
        capture_output=True,
    )


def change(raw: Path, state: int) -> None:
    with tempfile.TemporaryDirectory(prefix="fr-fat-stage-") as stage:
        FAT_STEPS[state](_Fat(raw, Path(stage)))


def read_back(raw: Path, dest: Path) -> None:
    """The whole volume copied out by mtools into ``dest`` (made here), mtimes kept."""
    dest.mkdir()
    _m("mcopy", raw, "-s", "-m", "-n", "::*", f"{dest}/")
    if not any(dest.iterdir()):
        shutil.rmtree(dest)
        raise RuntimeError(f"mtools read nothing back from {raw}")

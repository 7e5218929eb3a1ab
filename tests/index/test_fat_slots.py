"""The FAT changed-block pass where only a long name's slots changed: a FAT12 volume (12-bit
FAT entries, a fixed root directory) made by mtools, whose directory of 60 long names spans
a chain of 512-byte clusters; in the next backup one long name is rewritten in place (its
8.3 entry, whose checksum the long name carries, left as it was: mtools still takes the long
name), one file deleted there and one added to the root by mtools. The names the index holds for the
incremental must be those mtools lists, and what the pass writes what the walk writes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.imagebuild.index_chain import overlay
from tests.index.conftest import Chain, indexed_repository, methods_of
from tests.index.test_chain import everything
from tests.index.test_jobs import dump

NAMES = [f"long file name {i:04d}.txt" for i in range(60)]
_ENV = {"TZ": "UTC", "MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}


def _m(*argv: str | Path) -> str:
    done = subprocess.run(argv, check=True, capture_output=True, text=True, env=_ENV)
    return done.stdout


def _build(tmp: Path) -> tuple[Path, set[str]]:
    """The repository (base.qcow2, incr.qcow2) and the names mtools lists in /dir of the
    incremental."""
    base, new = tmp / "base.raw", tmp / "new.raw"
    _m("truncate", "-s", "1M", base)
    _m("mkfs.vfat", "-F", "12", "-s", "1", "-S", "512", "-n", "SLOTS", base)
    _m("mmd", "-i", base, "::/dir")
    stage = tmp / "stage"
    stage.mkdir()
    for name in NAMES:
        (stage / name).write_bytes(name.encode())
    _m("mcopy", "-i", base, *sorted(stage.iterdir()), "::/dir/")
    shutil.copyfile(base, new)
    # "long file name 0042.txt": its first stored long-name slot holds characters 14-26,
    # "e 004" of them in bytes 1-10 (fatgen103 section 7); "e" becomes "x" in place
    raw = bytearray(new.read_bytes())
    at = raw.find("e 004".encode("utf-16-le"))
    while raw[at + 13 : at + 23] != "2.txt".encode("utf-16-le"):  # bytes 14-23: "2.txt"
        at = raw.find("e 004".encode("utf-16-le"), at + 1)
    assert at > 0 and raw[at - 1 + 11] == 0x0F, "not a long-name slot"
    raw[at : at + 2] = "x".encode("utf-16-le")
    new.write_bytes(raw)
    _m("mdel", "-i", new, "::/dir/long file name 0007.txt")
    (stage / "added later.txt").write_bytes(b"added\n")
    # in the fixed root directory (in /dir it would take a new cluster: /dir listed whole)
    _m("mcopy", "-i", new, stage / "added later.txt", "::/")
    lines = _m("mdir", "-i", new, "-b", "::/dir").splitlines()
    listed = {line.rsplit("/", 1)[1] for line in lines if line}
    repo = tmp / "repo"
    repo.mkdir()
    _m("qemu-img", "convert", "-f", "raw", "-O", "qcow2", base, repo / "base.qcow2")
    overlay(repo / "incr.qcow2", "base.qcow2", base, new)
    return repo, listed


def test_a_long_name_rewritten_in_place_is_seen(tmp_path: Path) -> None:
    repo, listed = _build(tmp_path)
    assert "long file namx 0042.txt" in listed and "long file name 0042.txt" not in listed
    dumps = []
    for method in (None, "walk-diff"):
        state_dir = tmp_path / f"state-{method}"
        with indexed_repository(state_dir, repo, ("base", "incr"), method) as (db, settings, ids):
            if method is None:
                assert methods_of(db)[ids[1]] == "changed-blocks"
                chain = Chain("fat12", repo, repo, db, settings, ids)
                state = everything(chain, ids[1])
                assert {p[len("/dir/") :] for p in state if p.startswith("/dir/")} == listed
                assert "/added later.txt" in state
            dumps.append(dump(db))
    assert dumps[0] == dumps[1]

"""The file index against 7-Zip, on the images of tests/imagebuild/bench_index.py (built
once, cached).

    .venv/bin/python bench/index.py                     # ext4 and NTFS, 100,000 files
    .venv/bin/python bench/index.py --kinds ext4 --files 1000000 --json
    .venv/bin/python bench/index.py --kinds xfs,btrfs,exfat,fat32   # the other kinds
    .venv/bin/python bench/index.py --db postgresql        # on PostgreSQL (the floor: SQLite)

Per kind, on a fresh SQLite catalog in a temporary directory (``--db postgresql``: a
database of its own on the server of ``FILERESTORE_TEST_PG_URL``, dropped afterwards):

- **7zz l**: whole-process wall time of `7zz l base.qcow2` (7-Zip descends qcow2 -> GPT ->
  filesystem and lists every entry), best of ``--repeat``; the peer of the next figure.
  7-Zip reads ext, NTFS and FAT, not XFS, Btrfs or exFAT (it lists their partition as one
  file): for those the peer is ``find`` over the partition mounted read-only by the kernel
  (exfat-fuse for exFAT) from a raw copy, each run on a fresh mount;
- **full**: `index_backup` of the full backup (open the image, walk the filesystem the
  fastest way it allows, write every entry), best of ``--repeat`` (each on a new catalog);
  the ratio full / 7zz l (target <= 1.5 on ext4 and NTFS);
- **incr**: `index_backup` of the incremental (about 1% of the files changed) after the
  full one on the same catalog, best of ``--repeat`` like the full pass (one sample of it
  against the full pass's best was biased against it), its time and rows as a share of the
  full pass's (target <= 10% of both);
- **walk alone** and **writes alone** (bench/index_floor.py): the full pass's two halves
  measured apart, best of ``--repeat`` each: our bulk walk of the full backup with nothing
  written, and the full pass's rows stored in a new catalog with nothing parsed (the same
  statements and transactions). Their sum, over the peer, is a floor under the full pass's
  ratio;
- **bytes/version**: the SQLite file's size (PostgreSQL: ``pg_total_relation_size`` of the
  index tables) over the versions it holds (target <= 100);
- **search**: p50 / p95 of a substring search for a word of the vocabulary plus a number
  (``report-00001``), first page of 50, over both backups, 50 queries.

Timings on a shared machine vary; compare figures from the same run.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.index_floor import rows_of, walk_alone, writes_alone
from bench.index_scale import settings_for, storage_bytes

from filerestore.catalog import add_repository, register_backup
from filerestore.db import open_database
from filerestore.db.engine import Database
from filerestore.index.passes import index_backup
from filerestore.index.search import SearchQuery, search
from filerestore.settings import Settings
from tests.imagebuild import bench_index


def seven_zip(image: Path, repeat: int) -> tuple[float, int]:
    """Best time of ``7zz l`` and the number of files it listed (its summary line)."""
    best, listed = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        out = subprocess.run(["7zz", "l", str(image)], capture_output=True, text=True, check=True)
        best = min(best, time.perf_counter() - start)
        counts = re.findall(r"(\d+) files", out.stdout)  # the summary is the last one
        listed = int(counts[-1]) if counts else 0
    return best, listed


def kernel_find(kind: str, images: Path, repeat: int) -> float:
    """Best time of ``find`` over the filesystem mounted read-only by the kernel (XFS,
    Btrfs) or exfat-fuse, on a raw copy of the full backup's partition (the kernel mounts no
    qcow2 without NBD): the peer where 7-Zip does not read the filesystem. Each run on a
    fresh mount, the image file in the page cache."""
    offset = json.loads((images / "manifest.json").read_text())["offset"]
    best = float("inf")
    with tempfile.TemporaryDirectory(dir=images) as tmp:
        raw = Path(tmp) / "disk.raw"
        subprocess.run(["qemu-img", "convert", "-O", "raw", images / "base.qcow2", raw], check=True)
        part = Path(tmp) / "part.raw"
        subprocess.run(
            ["dd", f"if={raw}", f"of={part}", "bs=1M", f"skip={offset}", "iflag=skip_bytes",
             "conv=sparse", "status=none"],
            check=True,
        )  # fmt: skip
        raw.unlink()
        for _ in range(repeat):
            with bench_index.mount(kind, part, writable=False) as mnt:
                start = time.perf_counter()
                subprocess.run(["find", mnt], capture_output=True, check=True)
                best = min(best, time.perf_counter() - start)
    return best


def catalog(images: Path, settings: Settings) -> tuple[Database, list[int]]:
    db = open_database(settings)
    add_repository(db, "bench", str(images))  # the images' own directory is the repository
    ids = [register_backup(db, "bench", n).id for n in ("base.qcow2", "incr.qcow2")]
    return db, ids


def one_kind(kind: str, files: int, repeat: int, dialect: str = "sqlite") -> dict[str, Any]:
    images = bench_index.build(kind, files)
    peer, listed = seven_zip(images / "base.qcow2", repeat)
    peer_name = "7zz l"
    if listed < files:  # 7-Zip lists the partition as one file: it does not read this kind
        peer, peer_name = kernel_find(kind, images, repeat), "find (kernel mount)"
    full_best = incr_s = float("inf")
    out: dict[str, Any] = {
        "kind": kind,
        "db": dialect,
        "files": files,
        "peer": peer_name,
        "peer_s": round(peer, 3),
    }
    for attempt in range(repeat):
        tmp = Path(tempfile.mkdtemp(prefix="bench-index-"))
        try:
            with settings_for(dialect, tmp / "state", 64) as settings:
                db, ids = catalog(images, settings)
                start = time.perf_counter()
                full = index_backup(db, settings, ids[0])
                full_best = min(full_best, time.perf_counter() - start)
                if attempt == repeat - 1 and dialect == "sqlite":
                    full_rows = rows_of(db)
                start = time.perf_counter()  # the incremental: best of the attempts too
                incr = index_backup(db, settings, ids[1])
                incr_s = min(incr_s, time.perf_counter() - start)
                if attempt < repeat - 1:
                    db.dispose()
                    continue
                with db.read() as s:
                    versions = (
                        s.connection()
                        .exec_driver_sql("SELECT count(*) FROM index_versions")
                        .scalar_one()
                    )
                size = storage_bytes(db, settings, dialect)
                db.dispose()
                db = open_database(settings)
                times = []
                for i in range(50):
                    start = time.perf_counter()
                    search(db, SearchQuery(name=f"report-{i:05d}", limit=50), set(ids))
                    times.append(time.perf_counter() - start)
                db.dispose()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    times.sort()
    if dialect == "sqlite":  # the floor: on SQLite, the default catalog
        walk_s = walk_alone(images / "base.qcow2", repeat)
        writes_s = writes_alone(
            full_rows, lambda tmp: catalog(images, Settings(state_dir=tmp))[0], repeat
        )
        out.update(
            walk_s=round(walk_s, 3),
            writes_s=round(writes_s, 3),
            ratio_floor_to_peer=round((walk_s + writes_s) / peer, 2),
        )
    out.update(
        full_s=round(full_best, 3),
        full_entries=full.entries,
        full_rows=full.rows_added,
        ratio_full_to_peer=round(full_best / peer, 2),
        incr_s=round(incr_s, 3),
        incr_method=incr.methods,
        incr_rows=incr.rows_added + incr.rows_closed,
        incr_time_share=round(incr_s / full_best, 3),
        incr_row_share=round((incr.rows_added + incr.rows_closed) / full.rows_added, 4),
        versions=versions,
        db_bytes=size,
        bytes_per_version=round(size / versions, 1),
        search_p50_ms=round(statistics.median(times) * 1000, 2),
        search_p95_ms=round(times[int(len(times) * 0.95) - 1] * 1000, 2),
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default="ext4,ntfs")
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [one_kind(k, args.files, args.repeat, args.db) for k in args.kinds.split(",")]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    for r in rows:
        print(
            f"{r['kind']:<6} {r['files']:>8} files, {r['db']}: {r['peer']} {r['peer_s']:.2f} s, "
            f"full index {r['full_s']:.2f} s ({r['full_entries']} entries) "
            f"= {r['ratio_full_to_peer']:.2f}x the peer (target <= 1.5x 7zz l)"
        )
        if "walk_s" in r:
            print(
                f"       walk alone {r['walk_s']:.2f} s, writes alone {r['writes_s']:.2f} s: "
                f"their sum = {r['ratio_floor_to_peer']:.2f}x the peer (a floor under the "
                "full pass)"
            )
        print(
            f"       incremental {r['incr_s']:.2f} s {r['incr_method']}: "
            f"{r['incr_time_share']:.1%} of the full pass's time, {r['incr_rows']} rows = "
            f"{r['incr_row_share']:.2%} of its rows (target <= 10%)"
        )
        print(
            f"       {r['bytes_per_version']:.0f} bytes/version ({r['versions']} versions, "
            f"{r['db_bytes']} B; target <= 100); search p50 {r['search_p50_ms']} ms, "
            f"p95 {r['search_p95_ms']} ms (2 backups)"
        )


if __name__ == "__main__":
    main()

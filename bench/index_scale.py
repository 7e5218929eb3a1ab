"""Search and history over a long backup chain, on SQLite and on PostgreSQL (issue 10).

    .venv/bin/python bench/index_scale.py                       # 100 backups x 100,000 files
    .venv/bin/python bench/index_scale.py --backups 5 --files 2000 --json   # smoke size

The chain (tests/imagebuild/bench_index_scale.py, built once and cached): one ext4 disk and
its backups, each made by a real change of about 1% of the files through a kernel mount and
written by ``qemu-img convert -B`` as an overlay of the previous one. Per database, a fresh
catalog (SQLite: a file in a temporary directory; PostgreSQL: a database of its own on
``FILERESTORE_TEST_PG_URL``'s server, dropped afterwards) indexes every backup in order with
the product's ``index_backup``, and the script prints:

- **index**: the total time of the passes, the first (full) pass's, and the methods used;
- **rows**: versions stored (by kind), names, directories; the versions the generator's
  changes imply (``expected_versions``, from the generator, not the product);
- **bytes/version**: the SQLite file after a checkpoint, or PostgreSQL's
  ``pg_total_relation_size`` of the index tables (tables, indexes, TOAST), over the versions;
- **search**: p50 / p95 of the first page (50 hits) of ``--queries`` substring searches
  over every backup, in three groups: a word and a number prefix (``report-00012``, a few
  paths), a number alone (``34567``, a few paths, any word), a word alone (``invoice``,
  tens of thousands of paths: the page fills at once), and each group's p95;
- **history**: p50 / p95 of ``path_history`` of ``--queries`` paths of the last backup's
  disk, half of them files the chain changed (several versions), half untouched ones;

then the targets (search p95 <= 100 ms, history <= 20 ms, <= 100 bytes per version) with
met / not met. The peer is the other database in the same run. Timings on a shared 2-core
machine vary; compare figures from the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from filerestore.catalog import add_repository, register_backup
from filerestore.db import Database, open_database
from filerestore.index.history import path_history
from filerestore.index.passes import index_backup
from filerestore.index.search import SearchQuery, search
from filerestore.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.dbfixtures import PG_ENV, fresh_pg_database
from tests.imagebuild.bench_index_scale import WORDS, build, file_name, leaf_dir, manifest

SEARCH_TARGET_MS = 100.0
HISTORY_TARGET_MS = 20.0
BYTES_TARGET = 100.0
#: what the index stores (its job queue is left out)
INDEX_TABLES = (
    "index_lines", "index_backups", "index_volumes", "index_names", "index_dirs", "index_versions"
)  # fmt: skip


@contextlib.contextmanager
def settings_for(dialect: str, tmp: Path, depth: int) -> Iterator[Settings]:
    """Settings of a fresh catalog; ``depth``: the chain's length (the default limit, 64
    images, is below 100)."""
    if dialect == "sqlite":
        yield Settings(state_dir=tmp, max_chain_depth=depth)
        return
    server = os.environ.get(PG_ENV)
    if not server:
        raise SystemExit(f"{PG_ENV} is not set: the PostgreSQL server to measure on")
    with fresh_pg_database(server, "fr_bench") as url:
        yield Settings(state_dir=tmp, database_url=url, max_chain_depth=depth)


def _scalar(db: Database, sql: str) -> int:
    with db.read() as s:
        return int(s.connection().exec_driver_sql(sql).scalar_one() or 0)


def storage_bytes(db: Database, settings: Settings, dialect: str) -> int:
    if dialect == "postgresql":
        return _scalar(
            db,
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname = current_schema() "
            f"AND c.relname IN ({', '.join(repr(t) for t in INDEX_TABLES)})",
        )
    # closing the last connection checkpoints the WAL into the file (what is left is counted)
    db.dispose()
    wal = settings.sqlite_path.with_name(settings.sqlite_path.name + "-wal")
    return settings.sqlite_path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _pct(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return round(ordered[max(0, int(len(ordered) * q + 0.999999) - 1)], 2)


def search_terms(files: int, count: int) -> dict[str, list[str]]:
    rng = random.Random(10)
    third = max(1, count // 3)
    return {
        "word+number": [
            f"{WORDS[i % len(WORDS)]}-{i // 100:05d}"
            for i in (rng.randrange(files) for _ in range(third))
        ],
        "number": [f"{rng.randrange(files):07d}"[2:] for _ in range(third)],
        "word": [WORDS[i % len(WORDS)] for i in range(count - 2 * third)],
    }


def every_name(chain_manifest: dict[str, Any]) -> list[str]:
    """The name of every path of any backup, per the generator, case-folded."""
    paths = [f"{leaf_dir(i)}/{file_name(i)}" for i in range(chain_manifest["files"])]
    paths += [rel for step in chain_manifest["steps"] for rel in step["added"]]
    dirs = {d for rel in paths for d in (rel.split("/")[0], rel.rsplit("/", 1)[0])}
    return [p.rsplit("/", 1)[-1].casefold() for p in paths + sorted(dirs)] + ["lost+found"]


def expected_hits(names: list[str], term: str, limit: int) -> int:
    """Paths whose name holds ``term`` (at most ``limit``: one page)."""
    needle = term.casefold()
    return min(limit, sum(needle in name for name in names))


def modifications(chain_manifest: dict[str, Any]) -> dict[str, int]:
    changed: dict[str, int] = {}
    for step in chain_manifest["steps"]:
        for rel in step["modified"]:
            changed[rel] = changed.get(rel, 0) + 1
    return changed


def history_paths(chain_manifest: dict[str, Any], count: int) -> list[str]:
    """Half files the chain changed (most often first), half files never touched."""
    rng = random.Random(11)
    changed = modifications(chain_manifest)
    busy = sorted(changed, key=lambda p: (-changed[p], p))[: count // 2]
    files = chain_manifest["files"]
    quiet: list[str] = []
    touched = {
        rel for step in chain_manifest["steps"] for k in ("modified", "deleted") for rel in step[k]
    }
    while len(quiet) < count - len(busy):
        i = rng.randrange(files)
        rel = f"{leaf_dir(i)}/{file_name(i)}"
        if rel not in touched:
            quiet.append(rel)
    return ["/" + p for p in busy + quiet]


def _index_all(db: Database, settings: Settings, ids: list[int]) -> dict[str, Any]:
    methods: dict[str, int] = {}
    pass_s = []
    for backup_id in ids:
        start = time.perf_counter()
        report = index_backup(db, settings, backup_id)
        pass_s.append(time.perf_counter() - start)
        for m in report.methods.values():
            methods[m] = methods.get(m, 0) + 1
    return {
        "index_total_s": round(sum(pass_s), 2),
        "index_full_s": round(pass_s[0], 2),
        "index_incr_mean_s": round(statistics.mean(pass_s[1:]), 3) if len(ids) > 1 else None,
        "methods": methods,
    }


def _counts(db: Database) -> dict[str, Any]:
    return {
        "versions": _scalar(db, "SELECT count(*) FROM index_versions"),
        "versions_by_kind": {
            name: _scalar(db, f"SELECT count(*) FROM index_versions WHERE kind = {code}")
            for name, code in (("file", 1), ("dir", 2))
        },
        "live_files": _scalar(
            db, "SELECT count(*) FROM index_versions WHERE kind = 1 AND last_seq IS NULL"
        ),
        "names": _scalar(db, "SELECT count(*) FROM index_names"),
        "dirs": _scalar(db, "SELECT count(*) FROM index_dirs"),
    }


def _timed(call: Callable[[Any], Any], args: list[Any]) -> tuple[list[float], list[Any]]:
    """Milliseconds of ``call(arg)`` for each arg, and what each returned."""
    times, results = [], []
    for arg in args:
        start = time.perf_counter()
        results.append(call(arg))
        times.append((time.perf_counter() - start) * 1000)
    return times, results


def _searches(
    db: Database, info: dict[str, Any], allowed: set[int], queries: int
) -> dict[str, Any]:
    names = every_name(info)
    times: dict[str, list[float]] = {}
    hits: dict[str, int] = {}
    want: dict[str, int] = {}
    for group, terms in search_terms(info["files"], queries).items():
        times[group], pages = _timed(
            lambda t: search(db, SearchQuery(name=t, limit=50), allowed), terms
        )
        hits[group] = sum(len(p.hits) for p in pages)
        want[group] = sum(expected_hits(names, t, 50) for t in terms)
    every = [t for ts in times.values() for t in ts]
    return {
        "search_p50_ms": _pct(every, 0.5),
        "search_p95_ms": _pct(every, 0.95),
        "search_p95_ms_by_group": {g: _pct(ts, 0.95) for g, ts in times.items()},
        "search_hits_by_group": hits,
        "expected_hits_by_group": want,
    }


def _histories(db: Database, info: dict[str, Any], ids: list[int], queries: int) -> dict[str, Any]:
    paths = history_paths(info, queries)
    allowed = set(ids)
    times, found = _timed(lambda p: path_history(db, ids[-1], p, allowed), paths)
    changed = modifications(info)
    return {
        "history_p50_ms": _pct(times, 0.5),
        "history_p95_ms": _pct(times, 0.95),
        "history_paths": len(paths),
        "history_versions": sum(len(h.versions) for h in found),
        "expected_history_versions": sum(1 + changed.get(p[1:], 0) for p in paths),
    }


def measure(dialect: str, chain: Path, queries: int) -> dict[str, Any]:
    info = manifest(chain)
    images = ["b000.qcow2"] + [s["image"] for s in info["steps"]]
    with (
        tempfile.TemporaryDirectory(prefix="bench-idxscale-") as tmp,
        settings_for(dialect, Path(tmp), len(images)) as settings,
    ):
        db = open_database(settings)
        try:
            add_repository(db, "bench", str(chain))
            ids = [
                register_backup(db, "bench", n, max_chain_depth=settings.max_chain_depth).id
                for n in images
            ]
            out: dict[str, Any] = {"db": dialect, "backups": len(ids), "files": info["files"]}
            out.update(_index_all(db, settings, ids))
            out.update(_counts(db))
            out["expected_versions"] = info["expected_versions"]
            out["expected_live_files"] = info["final_files"]
            out["index_bytes"] = storage_bytes(db, settings, dialect)
            out["bytes_per_version"] = round(out["index_bytes"] / out["versions"], 1)
            out.update(_searches(db, info, set(ids), queries))
            out.update(_histories(db, info, ids, queries))
            out["targets"] = {
                "search_p95_le_100ms": out["search_p95_ms"] <= SEARCH_TARGET_MS,
                "history_p95_le_20ms": out["history_p95_ms"] <= HISTORY_TARGET_MS,
                "bytes_per_version_le_100": out["bytes_per_version"] <= BYTES_TARGET,
            }
            return out
        finally:
            db.dispose()


def _print(r: dict[str, Any]) -> None:
    def met(key: str) -> str:
        return "met" if r["targets"][key] else "NOT met"

    print(
        f"{r['db']:<10} {r['backups']} backups x {r['files']} files: index {r['index_total_s']} s "
        f"(full {r['index_full_s']} s, incremental mean {r['index_incr_mean_s']} s, {r['methods']})"
    )
    print(
        f"           {r['versions']} versions {r['versions_by_kind']} (generator: "
        f"{r['expected_versions']}), {r['names']} names, {r['dirs']} dirs; "
        f"{r['index_bytes']} B = {r['bytes_per_version']} B/version "
        f"(target <= 100: {met('bytes_per_version_le_100')})"
    )
    print(
        f"           search p50 {r['search_p50_ms']} ms, p95 {r['search_p95_ms']} ms "
        f"{r['search_p95_ms_by_group']} (target p95 <= 100 ms: {met('search_p95_le_100ms')})"
    )
    print(
        f"           history p50 {r['history_p50_ms']} ms, p95 {r['history_p95_ms']} ms "
        f"(target <= 20 ms: {met('history_p95_le_20ms')})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backups", type=int, default=100)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--dbs", default="sqlite,postgresql")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    chain = build(args.files, args.backups)
    built_s = time.perf_counter() - start
    rows = [measure(d, chain, args.queries) for d in args.dbs.split(",")]
    if args.json:
        print(
            json.dumps(
                {"chain": str(chain), "chain_s": round(built_s, 1), "results": rows}, indent=1
            )
        )
        return
    print(f"chain {chain} ({built_s:.0f} s to build or find)")
    for r in rows:
        _print(r)


if __name__ == "__main__":
    main()

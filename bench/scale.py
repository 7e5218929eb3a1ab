"""Benchmark of the scale-out deployment: 100 concurrent downloads from an S3 repository,
served by 2 instances x 2 workers on one PostgreSQL, with and without session affinity.

Run: .venv/bin/python bench/scale.py [--latency 20] [--downloads 100] [--sessions 8]
     [--backups 4]

The cluster is the scale-out test's (tests/scale/cluster.py): SeaweedFS behind the latency
proxy (which counts the GETs every instance makes), two ``filerestore serve`` instances with
their own block caches, HAProxy with deploy/haproxy/filerestore.cfg. The database is a
throwaway one on the PostgreSQL server of ``FILERESTORE_TEST_PG_URL`` (scripts/postgres).

Two rounds of the same downloads (the same sessions, files and concurrency), each on empty
block caches (the instances are restarted with their cache directories removed between):

1. **through the balancer**: each session's requests hashed to one instance (affinity);
2. **the peer, no affinity**: each request goes straight to an instance drawn at random (a
   fixed seed), as a balancer without affinity spreads them; each instance then reads
   every session's backup itself.

The sessions are spread over ``--backups`` VMs (the scale test's image uploaded under one
key per VM, so each has blocks of its own), as many users restoring from different VMs.

Printed per round: wall time, MB/s (10^6 bytes), S3 GETs, blocks each instance cached,
requests each instance answered, and corrupt bytes (every download's sha256 against the
source tree; 0 is the target).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.dbfixtures import pg_admin  # noqa: E402
from tests.imagebuild.scale_image import FILES, name_of, scale_image  # noqa: E402
from tests.scale.cluster import API, Cluster, start_cluster  # noqa: E402

MiB = 1 << 20


def restart_cold(cluster: Cluster) -> None:
    """Every instance stopped, its block cache removed, started again (as a new host)."""
    for node in cluster.nodes:
        node.server.stop()
        shutil.rmtree(node.state_dir / "blocks", ignore_errors=True)
    for node in cluster.nodes:
        node.server.start(120)


def one_round(
    cluster: Cluster, sessions: list[tuple[str, str]], downloads: int, affinity: bool
) -> dict[str, Any]:
    tree = scale_image() / "tree"
    expected = {}
    for i in range(FILES):
        expected[i] = hashlib.sha256((tree / name_of(i)).read_bytes()).hexdigest()
    cluster.settle()
    cluster.gets()
    before = {n.name: n.blocks()[0] for n in cluster.nodes}

    def fetch(n: int) -> tuple[int, str, int, str]:
        who, mount_id = sessions[n % len(sessions)]
        index = n % FILES
        node = cluster.nodes[spread.randrange(len(cluster.nodes))]
        url = None if affinity else node.url
        digest, size, served = cluster.download(who, mount_id, index, url)
        return index, digest, size, served or node.name

    failures: list[str] = []
    spread = random.Random(7)  # the peer's instance per request: arbitrary, as arrival order

    def attempt(n: int) -> tuple[int, str, int, str]:
        try:
            return fetch(n)
        except (httpx.HTTPError, RuntimeError) as exc:  # reported, not fatal: it is a finding
            failures.append(f"download {n} ({name_of(n % FILES)}): {exc!r}")
            return n % FILES, "", 0, "failed"

    start = time.perf_counter()
    with ThreadPoolExecutor(downloads) as pool:
        results = list(pool.map(attempt, range(downloads)))
    seconds = time.perf_counter() - start
    cluster.settle()
    corrupt = 0
    for index, digest, size, _ in results:
        if digest and digest != expected[index]:  # a wrong download: all its bytes count (a bound)
            want = (tree / name_of(index)).read_bytes()
            corrupt += max(len(want), size)
    total = sum(size for _, _, size, _ in results)
    return {
        "round": "balancer (affinity)" if affinity else "no affinity (peer)",
        "seconds": seconds,
        "MBps": total / seconds / 1e6,
        "bytes": total,
        "gets": cluster.gets(),
        "blocks": {n.name: n.blocks()[0] - before[n.name] for n in cluster.nodes},
        "served": dict(Counter(s for _, _, _, s in results)),
        "corrupt_bytes": corrupt,
        "failed": failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=20.0, help="ms added per S3 request")
    parser.add_argument("--downloads", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument(
        "--backups", type=int, default=4, help="VMs (the same image under other keys)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    server_url = os.environ.get("FILERESTORE_TEST_PG_URL")
    if not server_url:
        sys.exit("bench/scale.py: set FILERESTORE_TEST_PG_URL (bash scripts/postgres prints one)")
    name = f"fr_bench_scale_{uuid.uuid4().hex[:12]}"
    with pg_admin(server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    work = ROOT / ".cache" / "bench" / f"scale-run-{os.getpid()}"
    work.mkdir(parents=True)
    cluster = start_cluster(
        work,
        url,
        scale_image() / "disk.qcow2",
        users=args.sessions,
        latency_ms=args.latency,
        backups=args.backups,
    )
    results = []
    try:
        sessions = []
        for i in range(args.sessions):
            who = f"u{i:02d}"
            with cluster.client(who) as c:
                backup = cluster.backup_ids[i % len(cluster.backup_ids)]
                r = c.post(f"{API}/restore/mount", json={"backup_id": backup})
                r.raise_for_status()
                sessions.append((who, str(r.json()["mount_id"])))
        for affinity in (True, False):
            restart_cold(cluster)
            r = one_round(cluster, sessions, args.downloads, affinity)
            results.append(r)
            print(
                f"{r['round']}: {args.downloads} downloads of {r['bytes'] / MiB:.0f} MiB from "
                f"{len(sessions)} sessions on {args.backups} backups, {args.latency:g} ms/request: "
                f"{r['seconds']:.2f} s, "
                f"{r['MBps']:.0f} MB/s, {r['gets']} S3 GETs, blocks cached {r['blocks']}, "
                f"answered by {r['served']}, {r['corrupt_bytes']} corrupt bytes, "
                f"{len(r['failed'])} failed",
                flush=True,
            )
            for failure in r["failed"][:5]:
                print(f"  {failure}", flush=True)
    except BaseException:
        cluster.stop()
        print(f"bench/scale.py: failed; the instances' logs are in {work}", file=sys.stderr)
        raise
    else:
        cluster.stop()
        for log in sorted(work.glob("node*.log")):  # what went wrong on the servers' side
            problems = [
                line
                for line in log.read_text(errors="replace").splitlines()
                if "Traceback" in line or '"status": 5' in line or "Error" in line
            ]
            print(f"{log.name}: {len(problems)} error lines", *problems[:5], sep="\n  ")
        shutil.rmtree(work, ignore_errors=True)
    finally:
        with pg_admin(server_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""bench/index_scale.py runs end to end at a small size, and what it indexed is what the
generator changed (the full 100 x 100,000 run is on demand, not a test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.imagebuild.bench_index_scale import PER_DIR, manifest

# the benchmark builds its chain (loop mounts, as root) in a subprocess, hence the marker
pytestmark = pytest.mark.root

BENCH = Path(__file__).resolve().parents[2] / "bench" / "index_scale.py"
FILES, BACKUPS = 2000, 5


def test_index_scale_benchmark_small(pg_server_url: str) -> None:
    env = {**os.environ, "FILERESTORE_TEST_PG_URL": pg_server_url}
    proc = subprocess.run(
        [sys.executable, BENCH, "--backups", str(BACKUPS), "--files", str(FILES), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    chain = manifest(Path(out["chain"]))
    steps = chain["steps"]
    assert len(steps) == BACKUPS - 1
    # what the generator did, recounted here from its change lists
    files = FILES
    for step in steps:
        assert step["modified"] and step["deleted"] and step["added"]
        files += len(step["added"]) - len(step["deleted"])
        assert step["kernel_files"] == files  # the kernel's count through the mount
    leaf_dirs = FILES // PER_DIR
    expected = {
        "file": FILES + sum(len(s["modified"]) + len(s["added"]) for s in steps),
        # leaf dirs, their parent, the root and lost+found; a new version of a directory
        # each time the step added or deleted entries in it
        "dir": leaf_dirs + 1 + 2 + sum(len(s["dirs"]) for s in steps),
    }
    assert {r["db"] for r in out["results"]} == {"sqlite", "postgresql"}
    for r in out["results"]:
        assert r["backups"] == BACKUPS and r["files"] == FILES
        assert r["methods"] == {"full": 1, "changed-blocks": BACKUPS - 1}
        assert r["versions_by_kind"] == expected
        assert r["versions"] == expected["file"] + expected["dir"]
        assert r["live_files"] == files
        assert r["search_hits_by_group"] == r["expected_hits_by_group"]
        assert r["search_hits_by_group"]["word"] > 0
        assert r["history_versions"] == r["expected_history_versions"] > r["history_paths"]
        for key in ("index_total_s", "index_bytes", "bytes_per_version", "search_p95_ms"):
            assert r[key] > 0
        assert r["history_p95_ms"] >= r["history_p50_ms"] > 0
        assert set(r["targets"]) == {
            "search_p95_le_100ms",
            "history_p95_le_20ms",
            "bytes_per_version_le_100",
        }

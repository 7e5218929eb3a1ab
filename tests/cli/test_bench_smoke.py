"""bench/core.py runs end to end at a tiny size (the full run is on demand, not a test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# the benchmarks build their own images (as root) in a subprocess, hence the marker by hand
pytestmark = pytest.mark.root

BENCH = Path(__file__).resolve().parents[2] / "bench" / "core.py"


def test_core_benchmark_tiny() -> None:
    proc = subprocess.run(
        [sys.executable, BENCH, "--tiny", "--kinds", "ext4,fat32", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    # the benchmark itself checks every listing count and the big file's sha256
    for kind in ("ext4", "fat32"):
        ours, theirs = results[kind]["ours"], results[kind]["7zz"]
        assert ours["kind"] == kind
        for key in ("open_ms", "list_ms", "stat_ms", "read_mbps", "rss_mib"):
            assert ours[key] > 0
        assert theirs["list_ms"] > 0 and theirs["read_mbps"] > 0
    assert results["chain"]["depth"] == 11


def test_fuse_benchmark_tiny() -> None:
    proc = subprocess.run(
        [sys.executable, BENCH.with_name("fuse.py"), "--tiny", "--runs", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    # the benchmark itself checks the file's sha256 and the entry counts through the mount
    assert results["cat"]["filerestore_cat_mbps"] > 0
    assert all(row["mbps"] > 0 for row in results["cat"]["mount"].values())
    assert results["find"]["kernel_s"] > 0
    assert all(row["warm_s"] > 0 for row in results["find"]["mount"].values())
    assert all(row["two_halves_mbps"] > 0 for row in results["parallel"].values())

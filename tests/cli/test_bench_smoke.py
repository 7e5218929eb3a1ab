"""The benchmarks run end to end at a tiny size (the full runs are on demand, not tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# the benchmarks build their own images (as root) in a subprocess, hence the marker by hand
pytestmark = pytest.mark.root

BENCH = Path(__file__).resolve().parents[2] / "bench"


def bench_json(script: str, *args: str, timeout: float) -> Any:
    """The ``--json`` output of ``bench/SCRIPT --tiny ARGS``, which must exit 0."""
    proc = subprocess.run(
        [sys.executable, BENCH / script, "--tiny", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_core_benchmark_tiny() -> None:
    results = bench_json("core.py", "--kinds", "ext4,fat32", timeout=300)
    # the benchmark itself checks every listing count and the big file's sha256
    for kind in ("ext4", "fat32"):
        ours, theirs = results[kind]["ours"], results[kind]["7zz"]
        assert ours["kind"] == kind
        for key in ("open_ms", "list_ms", "stat_ms", "read_mbps", "rss_mib"):
            assert ours[key] > 0
        assert theirs["list_ms"] > 0 and theirs["read_mbps"] > 0
    assert results["chain"]["depth"] == 11


def test_fuse_benchmark_tiny() -> None:
    results = bench_json("fuse.py", "--runs", "1", timeout=600)
    # the benchmark itself checks the file's sha256 and the entry counts through the mount
    assert results["cat"]["filerestore_cat_mbps"] > 0
    assert all(row["mbps"] > 0 for row in results["cat"]["mount"].values())
    assert results["find"]["kernel_s"] > 0
    assert all(row["warm_s"] > 0 for row in results["find"]["mount"].values())
    assert all(row["two_halves_mbps"] > 0 for row in results["parallel"].values())


def test_browse_benchmark_tiny() -> None:
    results = bench_json("browse.py", timeout=600)
    # the benchmark itself checks the first page's names against the source tree's
    assert [r["kind"] for r in results] == ["ext4", "ntfs"]
    for row in results:
        assert row["entries"] == 2_020
        assert row["first_page_ms"] > 0 and row["ls_ms"] > 0

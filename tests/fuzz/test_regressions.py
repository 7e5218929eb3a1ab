"""Every input that ever failed a fuzz harness, run again: the outcome must now be inside the
harness's contract (a return, or an expected FileRestoreError with a one-line reason).

Inputs live in fuzz/regressions/HARNESS/NAME (the raw input; for image harnesses it is
damage to a seed image, see fuzz/patches.py). Each also runs under tracemalloc: what the
Python side allocates for one input stays inside the harness's memory budget. A hang shows
as this test's timeout.
"""

from __future__ import annotations

import functools
import tracemalloc
from pathlib import Path

import pytest

from fuzz.harness import Harness, OneInput, check_one
from fuzz.targets import REGISTRY, load
from tests import tiers

REGRESSIONS = Path(__file__).resolve().parents[2] / "fuzz" / "regressions"
INPUTS = sorted(p for p in REGRESSIONS.glob("*/*") if p.is_file() and p.parent.name in REGISTRY)


@functools.cache
def _prepared(name: str) -> tuple[Harness, OneInput]:
    harness = load(name)
    return harness, harness.setup()


def test_every_regression_directory_names_a_harness():
    dirs = {p.name for p in REGRESSIONS.iterdir() if p.is_dir()}
    assert dirs <= set(REGISTRY), dirs - set(REGISTRY)
    assert INPUTS, "no regression inputs found"


def _needs_root(name: str) -> bool:
    """Whether the harness's setup builds seed images (the harness is chosen by name at run
    time, so the root marker cannot see it in the test's code: asked here, per input)."""
    return tiers.Reach(tiers.SINKS)(load(name).setup)


def _input(path: Path) -> object:
    marks = [pytest.mark.root] if _needs_root(path.parent.name) else []
    return pytest.param(path, marks=marks, id=f"{path.parent.name}/{path.name}")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", [_input(p) for p in INPUTS])
def test_regression_input_ends_inside_the_error_tree(path: Path):
    harness, one = _prepared(path.parent.name)
    tracemalloc.start()
    try:
        check_one(one, path.read_bytes(), harness.expected)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < harness.rss_budget_mb << 20, f"{peak >> 20} MiB allocated for one input"

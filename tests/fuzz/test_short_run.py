"""The short CI pass of every fuzz harness: a few seconds each from the seed corpus, and no
finding (no crash, hang, error outside the harness's contract or over-budget allocation).

``FILERESTORE_FUZZ_SECONDS`` sets the seconds per harness (default 15). The long runs are
``scripts/fuzz`` (fuzz/README.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.targets import REGISTRY

REPO = Path(__file__).resolve().parents[2]
SECONDS = int(os.environ.get("FILERESTORE_FUZZ_SECONDS", "15"))

# the runner builds its seed images (as root) in a subprocess, hence the marker by hand
pytestmark = pytest.mark.root


@pytest.mark.fuzz
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_short_fuzz_run_finds_nothing(name: str, tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "fuzz.run", "campaign", name, f"--seconds={SECONDS}",
         f"--dir={tmp_path}", "--ci"],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=SECONDS + 600,
    )  # fmt: skip
    summary = [line for line in done.stdout.splitlines() if line.startswith("fuzz summary:")]
    reports = "\n".join(p.read_text()[-3000:] for p in (tmp_path / name / "findings").glob("*.txt"))
    assert done.returncode == 0 and summary, f"{done.stdout}\n{done.stderr[-3000:]}\n{reports}"
    assert " findings=0 " in summary[0], f"{summary[0]}\n{reports}"
    assert " execs=0 " not in summary[0], summary[0]

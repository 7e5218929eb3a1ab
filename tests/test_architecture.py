"""The layout is the pipeline: imports flow one way (contract in pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_imports_flow_one_way() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_module_is_a_grab_bag() -> None:
    names = {p.stem for p in (ROOT / "src" / "filerestore").rglob("*.py")}
    assert not names & {"utils", "helpers", "misc", "common"}

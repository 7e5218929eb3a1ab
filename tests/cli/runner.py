"""Runs the installed ``filerestore`` console script in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPT = Path(sys.executable).parent / "filerestore"


def run(*args: str | os.PathLike[str], timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    cmd = [os.fspath(SCRIPT) if SCRIPT.exists() else sys.executable]
    if not SCRIPT.exists():
        cmd += ["-m", "filerestore.cli.main"]
    cmd += [os.fspath(a) for a in args]
    return subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)


def ok(*args: str | os.PathLike[str]) -> bytes:
    proc = run(*args)
    assert proc.returncode == 0, (proc.returncode, proc.stderr.decode(errors="replace"))
    assert proc.stderr == b""
    return proc.stdout


def json_out(*args: str | os.PathLike[str]) -> Any:
    """The one JSON document a ``--json`` command prints."""
    return json.loads(ok(*args))


def fails(code: int, *args: str | os.PathLike[str]) -> str:
    """Run, expect exit ``code`` and exactly one `filerestore: error:` line; return it."""
    proc = run(*args)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == code, (proc.returncode, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("filerestore: error: "), err
    assert "Traceback" not in err
    return lines[0]

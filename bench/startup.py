"""Start-up time of the CLI, whole process, beside ``7zz l`` of the same image (issue 14).

Run: .venv/bin/python bench/startup.py [--runs N] [--json]

Commands, each a fresh process started from outside, taken in turn (ours, 7zz, ours, ...) so
a drift in the machine's speed falls on both alike:

- ``filerestore ls IMAGE /`` of a small directory (16 entries) on the test image of the CLI
  (GPT with one ext4 partition, as QCOW2: tests/cli/images.py), which 7-Zip also opens;
- ``filerestore --help``;
- ``7zz l IMAGE`` (a full listing of the same image, 7-Zip's own start-up included).

Python's bytecode is compiled first into a private cache (PYTHONPYCACHEPREFIX), as an
installed wheel has it; PYTHONDONTWRITEBYTECODE is dropped for the runs. Figures: the median
and minimum of wall time (monotonic clock around the child) and of CPU time (the child's own
user + system from wait4), and the ratio of medians to ``7zz l``. Targets: ls <= 100 ms,
--help <= 150 ms, whole process. On a shared machine wall time carries the other load;
CPU time is the steadier figure, and both are printed.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.imagebuild.gpt_ext4 import single_ext4  # noqa: E402

TARGETS_MS = {"ls": 100.0, "help": 150.0}


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``cmd`` (output discarded; it must exit 0)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read() if proc.stderr else b""
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed ({proc.returncode}): {stderr.decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime


def summary(samples: list[tuple[float, float]]) -> dict[str, float]:
    walls = [w * 1000 for w, _ in samples]
    cpus = [c * 1000 for _, c in samples]
    return {
        "wall_ms": statistics.median(walls),
        "wall_min_ms": min(walls),
        "cpu_ms": statistics.median(cpus),
        "cpu_min_ms": min(cpus),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sevenzip = shutil.which("7zz")
    if sevenzip is None:
        raise SystemExit("7zz (Debian package 7zip) is needed as the yardstick")
    image = str(single_ext4().image)
    program = str(Path(sys.executable).with_name("filerestore"))
    with tempfile.TemporaryDirectory(prefix="startup-pyc-") as pyc:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pyc
        sys.pycache_prefix = pyc
        compileall.compile_dir(ROOT / "src", quiet=1)
        commands = {
            "ls": [program, "ls", image, "/"],
            "help": [program, "--help"],
            "7zz l": [sevenzip, "l", image],
        }
        for cmd in commands.values():  # warm-up: page cache, and bytecode of what compileall
            run_once(cmd, env)  # did not reach (site-packages)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, cmd in commands.items():
                samples[name].append(run_once(cmd, env))
    results = {name: summary(s) for name, s in samples.items()}
    yardstick = results["7zz l"]
    for name in TARGETS_MS:
        results[name]["ratio_wall"] = results[name]["wall_ms"] / yardstick["wall_ms"]
        results[name]["ratio_cpu"] = results[name]["cpu_ms"] / max(yardstick["cpu_ms"], 1.0)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{args.runs} runs each, alternating; median (min) in ms")
    print(f"{'command':<10}{'wall':>18}{'cpu':>18}{'/ 7zz l (wall, cpu)':>24}  target")
    for name, r in results.items():
        ratio = f"{r['ratio_wall']:.1f}x, {r['ratio_cpu']:.1f}x" if name in TARGETS_MS else ""
        target = TARGETS_MS.get(name)
        verdict = ""
        if target is not None:
            verdict = f"<= {target:.0f} ms: " + ("met" if r["wall_ms"] <= target else "NOT met")
        wall = f"{r['wall_ms']:.1f} ({r['wall_min_ms']:.1f})"
        cpu = f"{r['cpu_ms']:.1f} ({r['cpu_min_ms']:.1f})"
        print(f"{name:<10}{wall:>18}{cpu:>18}{ratio:>24}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Peak memory and outcome of each hostile filesystem image (tests/imagebuild/fs_hostile.py).

Run: .venv/bin/python bench/fs_bombs.py [--src DIR] [--only NAME] [--timeout S]

Each case runs in a fresh Python process (so its peak RSS, VmHWM of its own address space,
is its own): open the image with the case's backend, do what a user would (list, walk, read
everything), and report the error it ended with, the peak RSS and the wall time. The first
row is a baseline: the valid small ext4 image listed and read whole.

``--src DIR`` runs the children against another checkout's ``src`` (for example the main
branch before a fix), to print the before and after of the same cases. A case still running
after ``--timeout`` seconds is killed and reported as a hang.

Target (issue 8): a directory inode claiming 4 GiB: <= 64 MiB peak RSS, clean refusal.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.imagebuild.fs_hostile import FS_HOSTILE, read_everything, small_ext4  # noqa: E402


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(name: str, image: str) -> None:
    import importlib

    from filerestore.blockio import FileReader

    if name == "baseline":
        kind, action = "ext", read_everything
    else:
        case = next(c for c in FS_HOSTILE if c.name == name)
        kind, action = case.kind, case.action
    backend = importlib.import_module(f"filerestore.fs.{kind}")
    start = time.perf_counter()
    outcome = "ok"
    try:
        with FileReader(image) as reader:
            action(backend.open_fs(reader))
    except BaseException as exc:  # what escaped is the measurement
        outcome = f"{type(exc).__name__}: {' '.join(str(exc).split())[:110]}"
    elapsed = time.perf_counter() - start
    print(json.dumps({"outcome": outcome, "rss": peak_rss_mib(), "seconds": elapsed}))


def measure(name: str, image: Path, src: Path | None, timeout: float) -> dict[str, object]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = f"{src}{os.pathsep}{ROOT}"
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", name, str(image)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"outcome": f"HANG: still running after {timeout:.0f} s", "rss": None}
    if out.returncode != 0:
        return {"outcome": f"crashed: {out.stderr.strip().splitlines()[-1:]}", "rss": None}
    result: dict[str, object] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=2)
    parser.add_argument("--src", type=Path, help="run the cases against this src directory")
    parser.add_argument("--only", help="one case by name")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="fr-bombs-") as tmp:
        cases = [("baseline", small_ext4())]
        for case in FS_HOSTILE:
            if args.only in (None, case.name):
                workdir = Path(tmp) / case.name
                workdir.mkdir()
                cases.append((case.name, case.build(workdir)))
        print(f"{'case':<40} {'peak RSS':>9} {'time':>8}  outcome")
        for name, image in cases:
            if args.only not in (None, name) and name != "baseline":
                continue
            r = measure(name, image, args.src, args.timeout)
            rss = "-" if r["rss"] is None else f"{r['rss']:.0f} MiB"
            secs = "-" if r.get("seconds") is None else f"{r['seconds']:.2f} s"
            print(f"{name:<40} {rss:>9} {secs:>8}  {r['outcome']}", flush=True)


if __name__ == "__main__":
    main()

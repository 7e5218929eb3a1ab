"""Core benchmark: open, list, stat and read through image -> GPT -> filesystem, vs 7-Zip.

Run on demand (not part of the test suite):

    .venv/bin/python bench/core.py            # full: 2,000 files + 200 MiB per fs kind
    .venv/bin/python bench/core.py --tiny     # smoke run: 200 files + 4 MiB

The image is built once with the real tools and cached under .cache/bench (see
tests/imagebuild/bench_core.py). Each fs kind is measured in a fresh Python process, so its peak RSS
is its own. Reads are from the page cache: every file is read once before it is timed.
MB/s is 10^6 bytes per second. 7-Zip is measured in the same run on a one-partition copy
of the same filesystem (it descends qcow2 -> GPT -> filesystem by itself only when the disk
holds one partition); its times are whole-process wall times, which include its start-up
and opening of the image, so the ratio is given against our open + list.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.imagebuild import bench_core

REPEAT = 7
CHUNK = 1 << 20
TARGETS = {
    "chain_open_ms": 50.0,
    "list_ratio": 2.0,
    "read_mbps": 1000.0,
    "rss_mib": 150.0,
}


# --- measured in a fresh child process --------------------------------------------------------


def child_fs(image: str, volume: str, files: int, big_sha: str) -> dict[str, Any]:
    import filerestore.fs as fs_pkg
    from filerestore.restore import open_stack

    for name in fs_pkg._BACKENDS:  # load the libraries first: open time is not import time
        __import__(name)

    opens, lists = [], []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        stack = open_stack(image, volume_id=volume)
        t1 = time.perf_counter()
        entries = list(stack.fs.list_dir("/many"))
        t2 = time.perf_counter()
        opens.append(t1 - t0)
        lists.append(t2 - t1)
        if len(entries) != files:
            raise RuntimeError(f"listed {len(entries)} entries, expected {files}")
        stack.close()

    with open_stack(image, volume_id=volume) as stack:
        names = [e.name for e in stack.fs.list_dir("/many")]
        stat_times = []
        for _ in range(3):
            t0 = time.perf_counter()
            for name in names:
                stack.fs.stat(f"/many/{name}")
            stat_times.append(time.perf_counter() - t0)

        reader = stack.fs.open("/big.bin")
        digest = hashlib.sha256()
        for offset in range(0, reader.size, CHUNK):  # warm the page cache, and check the bytes
            digest.update(reader.read_at(offset, CHUNK))
        if digest.hexdigest() != big_sha:
            raise RuntimeError("big.bin read back wrongly")
        read_times = []
        for _ in range(3):
            t0 = time.perf_counter()
            for offset in range(0, reader.size, CHUNK):
                reader.read_at(offset, CHUNK)
            read_times.append(time.perf_counter() - t0)
        kind = stack.fs.kind

    return {
        "kind": kind,
        "open_ms": min(opens) * 1e3,
        "list_ms": min(lists) * 1e3,
        "stat_ms": min(stat_times) * 1e3,
        "read_mbps": reader.size / min(read_times) / 1e6,
        "rss_mib": peak_rss_self(),
    }


def child_chain(image: str, volume: str) -> dict[str, Any]:
    import filerestore.fs as fs_pkg
    from filerestore.image import open_image
    from filerestore.restore import open_stack

    for name in fs_pkg._BACKENDS:
        __import__(name)
    image_times, stack_times = [], []
    for _ in range(REPEAT * 2):
        t0 = time.perf_counter()
        disk = open_image(image)
        t1 = time.perf_counter()
        depth = len(disk.chain)
        disk.close()
        t2 = time.perf_counter()
        with open_stack(image, volume_id=volume) as stack:
            stack.fs.stat("/big.bin")
        t3 = time.perf_counter()
        image_times.append(t1 - t0)
        stack_times.append(t3 - t2)
    return {
        "depth": depth,
        "image_open_ms": min(image_times) * 1e3,
        "stack_open_ms": min(stack_times) * 1e3,
        "rss_mib": peak_rss_self(),
    }


def peak_rss_self() -> float:
    """This process's peak RSS in MiB: VmHWM of its own address space.

    Not ru_maxrss: Linux carries the parent's peak across fork and exec into it.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        last = out.stderr.strip().splitlines()[-1:] or ["no message"]
        raise RuntimeError(f"measuring {args[0]} {args[2]} failed: {last[0]}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# --- 7-Zip ---------------------------------------------------------------------------------


def timed_7zz(args: list[str], stdout: int | None = subprocess.PIPE) -> tuple[float, bytes]:
    """Wall seconds and output of one 7zz run."""
    t0 = time.perf_counter()
    proc = subprocess.run(["7zz", *args], stdout=stdout, stderr=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"7zz {args} failed")
    return elapsed, proc.stdout or b""


def peak_rss_7zz(args: list[str]) -> float | None:
    """Peak RSS (MiB) of one 7zz run, measured by GNU time.

    Not from our own wait4: Linux carries the parent's peak RSS across fork and exec into
    the child's ru_maxrss, so a Python parent would inflate it. GNU time is a small C parent.
    """
    if not Path("/usr/bin/time").exists():
        return None
    with tempfile.NamedTemporaryFile("r") as report:
        subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", report.name, "7zz", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        return int(report.read().split()[-1]) / 1024


def seven_zip(image: Path, files: int, big_size: int) -> dict[str, Any]:
    lists = []
    for _ in range(REPEAT):
        elapsed, out = timed_7zz(["l", "-ba", str(image)])
        lists.append(elapsed)
        listed = sum(1 for line in out.splitlines() if b"many/file" in line)
        if listed != files:
            raise RuntimeError(f"7zz listed {listed} small files, expected {files}")
    read_args = ["x", "-so", str(image), "big.bin"]
    with Path(os.devnull).open("wb") as null:
        timed_7zz(read_args, stdout=null.fileno())  # warm the page cache
        reads = [timed_7zz(read_args, stdout=null.fileno())[0] for _ in range(3)]
    peaks = [peak_rss_7zz(["l", "-ba", str(image)]), peak_rss_7zz(read_args)]
    return {
        "list_ms": min(lists) * 1e3,
        "read_mbps": big_size / min(reads) / 1e6,
        "rss_mib": None if None in peaks else max(p for p in peaks if p is not None),
    }


# --- report ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="small smoke-test sizes")
    parser.add_argument("--kinds", default=",".join(bench_core.KINDS))
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        what, *rest = args.child
        if what == "fs":
            print(json.dumps(child_fs(rest[0], rest[1], int(rest[2]), rest[3])))
        else:
            print(json.dumps(child_chain(rest[0], rest[1])))
        return 0

    kinds = tuple(k for k in args.kinds.split(",") if k)
    scale = bench_core.TINY if args.tiny else bench_core.FULL
    t0 = time.perf_counter()
    bench = bench_core.build(scale, kinds)
    built_s = time.perf_counter() - t0
    manifest = bench.manifest
    volumes: dict[str, str] = manifest["volumes"]  # type: ignore[assignment]
    files, big_size = int(manifest["files"]), int(manifest["big_size"])  # type: ignore[call-overload]

    results: dict[str, Any] = {"scale": scale.name, "files": files, "big_size": big_size}
    rows = []
    failed = {}
    for kind in kinds:
        try:
            ours = run_child(
                "fs", str(bench.disk), volumes[kind], str(files), str(manifest["big_sha256"])
            )
        except RuntimeError as exc:  # report it, and still measure the other kinds
            failed[kind] = str(exc)
            results[kind] = {"error": str(exc)}
            continue
        theirs = (
            seven_zip(bench.solo(kind), files, big_size)
            if kind in bench_core.SEVEN_ZIP_KINDS
            else None
        )
        rows.append((kind, ours, theirs))
        results[kind] = {"ours": ours, "7zz": theirs}
    first = volumes[kinds[0]]
    chain = run_child("chain", str(bench.chain_top), first)
    results["chain"] = chain

    if args.json:
        print(json.dumps(results, indent=1))
        return 1 if failed else 0
    how = "cached" if built_s < 5 else f"built in {built_s:.0f} s"
    print(f"benchmark image: {bench.root} ({how})")
    print(
        f"{files} small files in /many, /big.bin {big_size // bench_core.MiB} MiB; "
        f"best of {REPEAT} runs (3 for stat-all and reads); reads from page cache; "
        "MB = 10^6 bytes\n"
    )
    print(_table(rows))
    print(
        f"\nchain of {chain['depth']} files (base + {chain['depth'] - 1} incrementals): "
        f"open_image {chain['image_open_ms']:.1f} ms, open image+volume+fs "
        f"{chain['stack_open_ms']:.1f} ms, peak RSS {chain['rss_mib']:.0f} MiB"
    )
    for kind, message in failed.items():
        print(f"{kind}: NOT MEASURED: {message}")
    print("\n" + _targets(rows, chain))
    return 1 if failed else 0


def _table(rows: list[tuple[str, dict[str, Any], dict[str, Any] | None]]) -> str:
    head = (
        "kind    open ms  list ms  stat-all ms  read MB/s  RSS MiB | 7zz l ms  7zz read MB/s  "
        "7zz RSS MiB | (open+list)/7zz l  read ours/7zz"
    )
    lines = [head, "-" * len(head)]
    for kind, o, z in rows:
        line = (
            f"{kind:<7} {o['open_ms']:>7.1f}  {o['list_ms']:>7.1f}  {o['stat_ms']:>11.1f}  "
            f"{o['read_mbps']:>9.0f}  {o['rss_mib']:>7.0f} |"
        )
        if z:
            ratio = (o["open_ms"] + o["list_ms"]) / z["list_ms"]
            line += (
                f" {z['list_ms']:>8.1f}  {z['read_mbps']:>13.0f}  {_mib(z['rss_mib']):>11} |"
                f" {ratio:>17.2f}  {o['read_mbps'] / z['read_mbps']:>14.2f}"
            )
        else:
            line += "      n/a (7-Zip does not read this kind)"
        lines.append(line)
    return "\n".join(lines)


def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _targets(
    rows: list[tuple[str, dict[str, Any], dict[str, Any] | None]], chain: dict[str, Any]
) -> str:
    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"

    out = ["targets:"]
    c = chain["stack_open_ms"]
    out.append(
        f"  open a 10-incremental chain <= 50 ms: {c:.1f} ms (image+volume+fs): {mark(c <= 50)}"
    )
    for kind, o, z in rows:
        if z:
            ratio = (o["open_ms"] + o["list_ms"]) / z["list_ms"]
            out.append(f"  list within 2x of 7zz, {kind}: {ratio:.2f}x: {mark(ratio <= 2)}")
    slowest = min(rows, key=lambda r: r[1]["read_mbps"])
    out.append(
        f"  read >= 1 GB/s, every kind: slowest {slowest[0]} {slowest[1]['read_mbps']:.0f} MB/s: "
        f"{mark(slowest[1]['read_mbps'] >= 1000)}"
    )
    peak = max([r[1]["rss_mib"] for r in rows] + [chain["rss_mib"]])
    out.append(f"  peak RSS < 150 MiB: {peak:.0f} MiB: {mark(peak < 150)}")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())

"""Run the fuzz harnesses: one libFuzzer worker, a supervising campaign, reproduction.

``python -m fuzz.run campaign HARNESS --seconds N --dir DIR [--ci]``
    Fuzz HARNESS for N seconds, resuming from ``DIR/HARNESS/corpus``. The seed inputs are
    written to ``DIR/HARNESS/seeds`` (from the seed recipes, each time). A worker that
    stops on a finding is started again for the time left (at most ``MAX_RESTARTS`` times),
    so a long unattended run keeps going; each finding lands in ``DIR/HARNESS/findings``
    (the input, its minimised form for crashes, and the worker's report). At the end one
    summary line (executions, exec/s, cov, ft, corpus, findings) is printed and appended to
    ``DIR/summary.log``. ``--ci``: exit 1 when there was a finding.
``python -m fuzz.run worker HARNESS [libFuzzer options and directories]``
    The process libFuzzer runs in: instruments the product, sets the harness up, fuzzes.
``python -m fuzz.run reproduce HARNESS FILE...``
    Run inputs once, without libFuzzer, and print each outcome (for triage).
``python -m fuzz.run list``

Per input the worker watches its own peak RSS: growing by more than the harness's budget
over its size before the first input is a finding (the high-water mark only grows, so the
input that first crosses the budget is the one that allocated). libFuzzer's ``-timeout``
(hangs) and ``-rss_limit_mb`` (a backstop) are set from the harness.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import os
import pkgutil
import re
import resource
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

MAX_RESTARTS = 50
REPO = Path(__file__).resolve().parents[1]
WORKER_SCRIPT_ENV = "FILERESTORE_FUZZ_WORKER"
RSS_LIMIT_MB = 2048
FINDING_PREFIXES = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-")
_STATUS = re.compile(r"^#(\d+)\s+\S+\s+cov: (\d+) ft: (\d+) corp: (\d+)/")
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- worker ---------------------------------------------------------------------------------


def _import_all(names: tuple[str, ...]) -> None:
    """Import each module, and every module of each package, in ``names``."""
    for name in names:
        module = importlib.import_module(name)
        for info in pkgutil.walk_packages(getattr(module, "__path__", []), f"{name}."):
            importlib.import_module(info.name)


def worker(name: str, libfuzzer_args: list[str]) -> None:
    import atheris

    from fuzz.targets import REGISTRY, load

    # (atheris 3.0.0's "RegEx" hook breaks Pattern.match(text, pos), which the LVM tokenizer
    # calls: it stays off)
    atheris.enabled_hooks.add("str")
    eager = REGISTRY[name][2]
    if any(n.startswith("dissect.") for n in eager):
        # dissect's struct parser and helpers: imported first, so not instrumented (general
        # machinery whose edges would only dilute the coverage signal of the Btrfs code)
        _import_all(("dissect.cstruct", "dissect.util"))
    with atheris.instrument_imports(include=sorted({n.split(".")[0] for n in eager})):
        _import_all(eager)
        harness = load(name)
        from fuzz.harness import Finding, check_one
    one = harness.setup()
    baseline = _maxrss_mb()

    def test_one(data: bytes) -> None:
        check_one(one, data, harness.expected)
        grown = _maxrss_mb() - baseline
        if grown > harness.rss_budget_mb:
            raise Finding(f"peak RSS grew by {grown:.0f} MiB (budget {harness.rss_budget_mb} MiB)")

    # libFuzzer runs argv[0] again for some jobs (crash minimisation): a script that does so
    argv0 = os.environ.get(WORKER_SCRIPT_ENV, sys.argv[0])
    atheris.Setup([argv0, *libfuzzer_args], test_one)
    atheris.Fuzz()


# --- campaign -------------------------------------------------------------------------------


@dataclass
class Totals:
    execs: int = 0
    seconds: float = 0.0
    cov: int = 0
    ft: int = 0
    corpus: int = 0
    new_units: int = 0
    peak_rss_mb: int = 0
    restarts: int = 0
    findings: list[str] = field(default_factory=list)


def _write_seeds(name: str, where: Path) -> int:
    from fuzz.targets import load

    where.mkdir(parents=True, exist_ok=True)
    inputs = load(name).seeds()
    for data in inputs:
        (where / hashlib.sha1(data).hexdigest()).write_bytes(data)  # noqa: S324 - a file name
    return len(inputs)


def _dictionary(name: str, path: Path) -> Path | None:
    from fuzz.targets import load

    tokens = load(name).dictionary
    if not tokens:
        return None
    path.write_text("".join('"' + "".join(f"\\x{b:02x}" for b in t) + '"\n' for t in tokens))
    return path


def _libfuzzer_args(name: str, base: Path, seconds: int) -> list[str]:
    from fuzz.targets import load

    h = load(name)
    args = [
        f"-max_total_time={seconds}",
        f"-timeout={h.timeout}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-max_len={h.max_len}",
        f"-artifact_prefix={base / 'findings'}/",
        "-print_final_stats=1",
        "-reload=0",
    ]
    dictionary = _dictionary(name, base / "dictionary.txt")
    if dictionary is not None:
        args.append(f"-dict={dictionary}")
    return [*args, str(base / "corpus"), str(base / "seeds")]


def _worker_script(name: str, base: Path) -> Path:
    """An executable that starts a worker of ``name`` with its arguments (libFuzzer's argv[0])."""
    script = base / "worker.sh"
    script.write_text(
        "#!/bin/sh\n"
        f"cd {shlex.quote(str(REPO))} || exit 1\n"
        f"{WORKER_SCRIPT_ENV}={shlex.quote(str(script))} "
        f'exec {shlex.quote(sys.executable)} -m fuzz.run worker {name} "$@"\n'
    )
    script.chmod(0o755)
    return script


def _run_worker(script: Path, args: list[str], log: Path, limit: float) -> tuple[int, str]:
    """Run one worker; kill its process group when it is still there ``limit`` seconds on.

    Seen in an hour-long run on a starved machine: after a timeout, atheris fell back to
    libFuzzer's native handling and the worker then waited on a futex for ever (its input
    ran in 0.08 s when reproduced). Without this watchdog the campaign waited with it."""
    with log.open("w") as out:
        worker = subprocess.Popen(
            [script, *args], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = worker.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            code = worker.wait()
            out.write(f"\nfuzz.run: worker killed, still running {limit:.0f} s after its start\n")
    return code, log.read_text(errors="replace")


def _account(totals: Totals, output: str, elapsed: float) -> list[str]:
    """Add one worker's figures to ``totals``; the finding artifacts it wrote."""
    totals.seconds += elapsed
    last_status = 0  # executions by the last status line: a killed worker prints no stats
    counted = False
    for line in output.splitlines():
        if m := _STATUS.match(line):
            last_status = int(m.group(1))
            totals.cov = max(totals.cov, int(m.group(2)))
            totals.ft = max(totals.ft, int(m.group(3)))
            totals.corpus = int(m.group(4))
        elif m := _STAT.match(line):
            key, value = m.group(1), int(m.group(2))
            if key == "number_of_executed_units":
                totals.execs += value
                counted = True
            elif key == "new_units_added":
                totals.new_units += value
            elif key == "peak_rss_mb":
                totals.peak_rss_mb = max(totals.peak_rss_mb, value)
    if not counted:
        totals.execs += last_status
    return _ARTIFACT.findall(output)


def _minimise(script: Path, artifact: Path, timeout: int) -> None:
    """libFuzzer's crash minimisation, into ARTIFACT.min (crashes only: a hang would take
    the whole minimisation budget per try)."""
    if not artifact.name.startswith("crash-"):
        return
    cmd: list[str | Path] = [
        script, "-minimize_crash=1", "-max_total_time=120", "-runs=100000",
        f"-timeout={timeout}", f"-exact_artifact_path={artifact}.min", str(artifact),
    ]  # fmt: skip
    with contextlib.suppress(subprocess.TimeoutExpired):  # the unminimised input is kept
        subprocess.run(cmd, capture_output=True, check=False, timeout=240)


def campaign(name: str, seconds: int, base_dir: Path, ci: bool) -> int:
    from fuzz.targets import load

    base = base_dir / name
    for sub in ("corpus", "findings", "seeds", "logs"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    seeds = _write_seeds(name, base / "seeds")
    script = _worker_script(name, base)
    timeout = load(name).timeout
    totals = Totals()
    silent = 0  # workers that stopped without writing their input
    deadline = time.monotonic() + seconds
    while True:
        left = int(deadline - time.monotonic())
        if left < 1 or totals.restarts > MAX_RESTARTS:
            break
        log = base / "logs" / f"worker-{time.strftime('%Y%m%dT%H%M%S')}-{totals.restarts}.log"
        start = time.monotonic()
        # libFuzzer stops itself after ``left`` seconds; the grace covers loading the
        # corpus and one input's timeout
        limit = left + 300 + 2 * timeout
        code, output = _run_worker(script, _libfuzzer_args(name, base, left), log, limit)
        artifacts = _account(totals, output, time.monotonic() - start)
        repeated = [a for a in artifacts if a in totals.findings]
        for artifact in artifacts:
            if artifact in repeated:
                continue
            report = Path(artifact + ".txt")
            report.write_text(output[-20000:])
            if not ci:
                _minimise(script, Path(artifact), timeout)
            totals.findings.append(artifact)
        if repeated:  # the same input again (a seed, or one the corpus replays): stop
            break
        if code == 0:
            break
        if not artifacts:
            # killed before libFuzzer wrote the input (a signal during its crash handling):
            # the log holds the report; go on, unless it keeps happening
            totals.findings.append(f"worker exited {code} without an artifact: {log}")
            silent += 1
            if silent > 2:
                break
        totals.restarts += 1
    line = (
        f"fuzz summary: harness={name} seconds={totals.seconds:.0f} execs={totals.execs} "
        f"exec_per_s={totals.execs / max(totals.seconds, 1):.1f} cov={totals.cov} "
        f"ft={totals.ft} corpus={totals.corpus} new_units={totals.new_units} seeds={seeds} "
        f"peak_rss_mb={totals.peak_rss_mb} findings={len(totals.findings)} "
        f"restarts={totals.restarts}"
    )
    print(line, flush=True)
    for finding in totals.findings:
        print(f"  finding: {finding}", flush=True)
    with (base_dir / "summary.log").open("a") as out:
        out.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")
    return 1 if ci and totals.findings else 0


# --- reproduce ------------------------------------------------------------------------------


def reproduce(name: str, files: list[Path]) -> int:
    from fuzz.harness import Finding, check_one
    from fuzz.targets import load

    harness = load(name)
    one = harness.setup()
    failed = 0
    for path in files:
        start = time.monotonic()
        try:
            check_one(one, path.read_bytes(), harness.expected)
            outcome = "ok (an expected outcome)"
        except Finding as exc:
            outcome = f"FINDING: {exc}"
            failed += 1
        print(f"{path}: {outcome} [{time.monotonic() - start:.2f} s]", flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["worker"]:
        worker(args[1], args[2:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m fuzz.run")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("campaign")
    run.add_argument("harness")
    run.add_argument("--seconds", type=int, default=3600)
    run.add_argument("--dir", type=Path, default=Path(".cache/fuzz"))
    run.add_argument("--ci", action="store_true")
    rep = sub.add_parser("reproduce")
    rep.add_argument("harness")
    rep.add_argument("files", nargs="+", type=Path)
    sub.add_parser("list")
    ns = parser.parse_args(args)
    from fuzz.targets import REGISTRY

    if ns.command == "list":
        print("\n".join(REGISTRY))
        return 0
    if ns.harness not in REGISTRY:
        parser.error(f"unknown harness {ns.harness!r}; one of: {', '.join(REGISTRY)}")
    if ns.command == "reproduce":
        return reproduce(ns.harness, ns.files)
    return campaign(ns.harness, ns.seconds, ns.dir.absolute(), ns.ci)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())

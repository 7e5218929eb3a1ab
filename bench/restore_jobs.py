"""Restore jobs against ``cp -a`` and ``rsync``: to a local directory and over SFTP on loopback.

The image (built once with the real tools, cached under ``.cache/bench/``): one ext4
filesystem on a whole raw disk (``mke2fs -d``), holding ``big/`` (4 files of random bytes,
``--big-mib`` in all) and ``small/`` (100 directories of small files, 1 to 8 KiB each,
``--small`` in all). The source tree it was made from is kept beside it: the peers copy
that tree (from the page cache), which is the best case for them (no image to parse).

Each job is measured end to end in this process as the service runs it: a real SQLite
database, a session opened on the image, ``create_job``, then ``JobRunner.run_once`` (claim,
the counting walk, the copy with its SHA-256 per file and manifest journal, the audit row).
The targets: a local directory on the disk (``local``); one on a tmpfs (``/dev/shm``: what
the copy costs without the disk, which on a shared machine dominates small files); a real
``sshd`` on loopback as an unprivileged account (``remote``, tests/sshserver). The peers,
in the same run: ``cp -a`` and ``rsync -a`` into each local directory, and ``rsync -a``
over ``ssh`` to the same sshd (``-e ssh``, host key checked). Every copy goes into a fresh
directory; the times are the best of ``--runs``, for us and the peers alike. Each of our
copies is checked against the source tree: the file count and each big file's SHA-256.

    .venv/bin/python bench/restore_jobs.py            # 512 MiB + 10,000 small files (as root)
    .venv/bin/python bench/restore_jobs.py --tiny     # a smoke run
    .venv/bin/python bench/restore_jobs.py --targets local,tmpfs   # no sshd, no SFTP rows

Targets (issue 13): to a local directory >= 500 MB/s for large files and >= 5,000 small
files/s; over SFTP, printed beside rsync over ssh.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from filerestore import catalog
from filerestore.db.engine import Database
from filerestore.db.migrate import ensure_schema
from filerestore.service import jobs as job_service
from filerestore.service.job_runner import JobRunner
from filerestore.service.principal import Principal
from filerestore.service.sessions import SessionManager
from filerestore.settings import load_settings
from tests.imagebuild.bench_tools import build_once, random_file, run
from tests.sshserver.sshd import Sshd, start_sshd

MiB = 1 << 20
VERSION = 1
BIG_FILES = 4
#: a tmpfs: the local targets once more without the disk (what the copy itself costs)
SHM = Path("/dev/shm")
SMALL_DIRS = 100


@dataclass(frozen=True)
class Corpus:
    root: Path
    big_mib: int
    small: int

    @property
    def image(self) -> Path:
        return self.root / "disk.img"

    @property
    def source(self) -> Path:
        return self.root / "source"

    def digests(self) -> dict[str, str]:
        found: dict[str, str] = json.loads((self.root / "manifest.json").read_text())
        return found

    @property
    def small_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.source / "small").rglob("*") if p.is_file())


def build(big_mib: int, small: int) -> Corpus:
    def make(root: Path) -> None:
        digests = _source(root / "source", big_mib, small)
        size_mib = big_mib + small * 16 // 1024 + 128
        run("truncate", "-s", f"{size_mib}M", root / "disk.img")
        run("mke2fs", "-q", "-F", "-t", "ext4", "-N", str(small + 1000), "-d",
            root / "source", root / "disk.img")  # fmt: skip
        (root / "manifest.json").write_text(json.dumps(digests))

    name = f"restore-jobs-{big_mib}m-{small}"
    return Corpus(build_once(name, [VERSION], Path(__file__), make), big_mib, small)


def _source(src: Path, big_mib: int, small: int) -> dict[str, str]:
    (src / "big").mkdir(parents=True)
    digests = {}
    for i in range(BIG_FILES):
        digests[f"b{i}.bin"] = random_file(src / "big" / f"b{i}.bin", big_mib // BIG_FILES)
    rng = random.Random(13)
    for i in range(small):
        d = src / "small" / f"d{i % SMALL_DIRS:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:06d}.txt").write_bytes(os.urandom(rng.randint(1024, 8192)))
    return digests


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def check_copy(corpus: Corpus, dest: Path, part: str) -> None:
    """Our copy against the source tree (independent of our reader: the tree mke2fs got)."""
    if part == "big":
        for name, digest in corpus.digests().items():
            if _sha256(dest / "big" / name) != digest:
                raise RuntimeError(f"{dest}/big/{name} differs from its source")
    else:
        count = sum(len(files) for _, _, files in os.walk(dest / "small"))
        if count != corpus.small:
            raise RuntimeError(f"{dest}/small holds {count} files, not {corpus.small}")


#: the --targets choices: which rows (ours and the peers') are measured
TARGETS = ("local", "tmpfs", "sftp")


@dataclass
class Bench:
    corpus: Corpus
    sshd: Sshd | None
    work: Path
    runs: int

    def __post_init__(self) -> None:
        self.local = self.work / "local"
        self.local.mkdir()
        self.shm = Path(tempfile.mkdtemp(prefix="fr-bench-jobs-", dir=SHM))
        targets: list[dict[str, object]] = [
            {"name": "local", "kind": "local", "path": str(self.local)},
            {"name": "shm", "kind": "local", "path": str(self.shm)},
        ]
        if self.sshd is not None:
            targets.append(
                {
                    "name": "remote",
                    "kind": "sftp",
                    "host": self.sshd.host,
                    "port": self.sshd.port,
                    "username": self.sshd.user.pw_name,
                    "path": str(self.sshd.area),
                    "client_keys": [str(self.sshd.client_key)],
                    "known_hosts": str(self.sshd.known_hosts),
                }
            )
        state = self.work / "state"
        state.mkdir()
        repo = self.work / "repo"
        repo.mkdir()
        os.link(self.corpus.image, repo / "disk.img")
        self.settings = load_settings(
            state_dir=state, restore_targets=targets, restore_job_poll_interval=0.2
        )
        self.db = Database(self.settings.effective_database_url)
        ensure_schema(self.db)
        catalog.add_repository(self.db, "bench", repo)
        backup = catalog.register_backup(self.db, "bench", "disk.img").id
        self.manager = SessionManager(self.db, self.settings)
        self.who = Principal.operator()
        self.mount_id = self.manager.mount(backup, None, self.who).mount_id
        self.runner = JobRunner(self.manager)
        self.serial = 0

    def job(self, part: str, target: str) -> float:
        """Seconds of one job restoring ``/part`` into a fresh destination of ``target``."""
        self.serial += 1
        destination = f"ours-{self.serial}"
        job = job_service.create_job(
            self.db, self.settings, self.who, self.mount_id, [f"/{part}"], target, destination
        )
        start = time.perf_counter()
        ran = self.runner.run_once()
        seconds = time.perf_counter() - start
        done = job_service.get_job(self.db, self.who, job.job_id)
        if ran != job.job_id or done.status != "completed":
            raise RuntimeError(f"job {job.job_id}: {done.status} {done.error}")
        where = {"local": self.local, "shm": self.shm}.get(target)
        if where is None:
            assert self.sshd is not None
            where = self.sshd.area
        check_copy(self.corpus, where / destination, part)
        shutil.rmtree(where / destination)
        return seconds

    def peer(self, argv: Callable[[Path], list[str]], where: Path) -> float:
        self.serial += 1
        dest = where / f"peer-{self.serial}"
        start = time.perf_counter()
        subprocess.run(argv(dest), check=True, capture_output=True)
        seconds = time.perf_counter() - start
        shutil.rmtree(dest)
        return seconds

    def best(self, measure: Callable[[], float]) -> float:
        return min(measure() for _ in range(self.runs))

    def close(self) -> None:
        self.manager.unmount(self.mount_id, self.who, force=True)
        self.db.dispose()
        shutil.rmtree(self.shm, ignore_errors=True)


def _line(what: str, seconds: float, files: int, nbytes: int) -> None:
    print(
        f"  {what:34s} {seconds:7.2f} s  {nbytes / seconds / 1e6:8.1f} MB/s  "
        f"{files / seconds:8.0f} files/s"
    )


def _local_rows(bench: Bench, part: str, kind: str, where: Path, target: str) -> dict[str, float]:
    tree = f"{bench.corpus.source / part}/"
    return {
        f"job -> {kind}": bench.best(lambda: bench.job(part, target)),
        f"cp -a -> {kind}": bench.best(
            lambda: bench.peer(lambda d: ["cp", "-a", tree, str(d)], where)
        ),
        f"rsync -a -> {kind}": bench.best(
            lambda: bench.peer(lambda d: ["rsync", "-a", tree, f"{d}/"], where)
        ),
    }


def _measure_part(bench: Bench, part: str, chosen: tuple[str, ...]) -> dict[str, float]:
    tree = f"{bench.corpus.source / part}/"
    rows: dict[str, float] = {}
    if "local" in chosen:
        rows.update(_local_rows(bench, part, "local", bench.local, "local"))
    if "tmpfs" in chosen:
        rows.update(_local_rows(bench, part, "tmpfs", bench.shm, "shm"))
    sshd = bench.sshd
    if sshd is not None:
        ssh = " ".join(sshd.ssh_command())
        remote = f"{sshd.user.pw_name}@{sshd.host}"
        rows["job -> sftp (loopback)"] = bench.best(lambda: bench.job(part, "remote"))
        rows["rsync -a -e ssh (loopback)"] = bench.best(
            lambda: bench.peer(
                lambda d: ["rsync", "-a", "-e", ssh, tree, f"{remote}:{d}/"], sshd.area
            )
        )
    return rows


def measure(bench: Bench, chosen: tuple[str, ...]) -> dict[str, dict[str, float]]:
    corpus = bench.corpus
    sizes = {"big": corpus.big_mib * MiB, "small": corpus.small_bytes}
    counts = {"big": BIG_FILES, "small": corpus.small}
    results: dict[str, dict[str, float]] = {}
    for part in ("big", "small"):
        print(f"/{part}: {counts[part]} files, {sizes[part] / 1e6:.1f} MB")
        results[part] = _measure_part(bench, part, chosen)
        for what, seconds in results[part].items():
            _line(what, seconds, counts[part], sizes[part])
    if "local" not in chosen:
        return results
    local_mbps = sizes["big"] / results["big"]["job -> local"] / 1e6
    local_fps = counts["small"] / results["small"]["job -> local"]
    print(
        f"targets: local large files {local_mbps:.0f} MB/s (>= 500: "
        f"{'met' if local_mbps >= 500 else 'NOT met'}), local small files {local_fps:.0f}/s "
        f"(>= 5,000: {'met' if local_fps >= 5000 else 'NOT met'})"
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big-mib", type=int, default=512)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="8 MiB and 500 small files, 1 run")
    parser.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help=f"comma-separated, of {', '.join(TARGETS)} (default: all)",
    )
    args = parser.parse_args()
    chosen = tuple(t for t in args.targets.split(",") if t)
    unknown = sorted(set(chosen) - set(TARGETS))
    if unknown or not chosen:
        parser.error(f"--targets: choose from {', '.join(TARGETS)}, not {args.targets!r}")
    if args.tiny:
        args.big_mib, args.small, args.runs = 8, 500, 1
    corpus = build(args.big_mib, args.small)
    rsync = run("rsync", "--version").splitlines()[0]
    print(f"{rsync}; image {corpus.image} ({corpus.image.stat().st_size / MiB:.0f} MiB)")
    sshd = start_sshd() if "sftp" in chosen else None
    work = Path(tempfile.mkdtemp(prefix="fr-bench-jobs-"))
    try:
        bench = Bench(corpus, sshd, work, args.runs)
        try:
            measure(bench, chosen)
        finally:
            bench.close()
    finally:
        if sshd is not None:
            sshd.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

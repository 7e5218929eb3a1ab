"""Peak RSS against the metadata bomb: a 64-file sparse chain of 2 PiB overlays (32 MiB L1
each, tests/imagebuild/deep_chain.py), through the CLI and an API worker.

Run: .venv/bin/python bench/metadata_budget.py [--json]

Measures VmHWM (the peak resident set of the process's own address space; not ru_maxrss,
which Linux carries across fork and exec) of:

- the CLI: ``ls /etc`` and ``inspect`` of the top image, each in a fresh Python process
  that runs the CLI's main() and then reads its own /proc/self/status;
- the API workers (a real ``filerestore serve --workers 2``, the larger of the two): right
  after start-up, then after
  five ``GET /backups/{id}`` of the chain, then after ``POST /restore/mount`` and a listing
  of ``/etc``, read from /proc/<worker>/status.

Target (issue 8): <= 150 MiB, or a clean refusal (422 / exit 4). The image is built by the
test recipe and cached (FILERESTORE_TEST_CACHE or .cache/images); the first run takes a few
minutes. To measure another tree of the code, put its ``src`` first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.api.server import Server  # noqa: E402
from tests.imagebuild.deep_chain import deep_sparse_chain, top  # noqa: E402

TARGET_MIB = 150
API = "/api/v1"

CHILD = r"""
import json, os, sys
from filerestore.cli.main import main
out = os.dup(1)
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
rc = main(sys.argv[1:])
sys.stdout.flush()
status = open("/proc/self/status").read().splitlines()
hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
os.write(out, json.dumps({"rc": rc, "hwm_kib": hwm}).encode())
"""


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for {pid}")


def cli(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=False
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    result["stderr"] = proc.stderr.strip()
    return result


def api(chain: Path, tmp: Path) -> dict[str, Any]:
    from filerestore import catalog
    from filerestore.db.engine import Database
    from filerestore.db.migrate import ensure_schema
    from filerestore.service.tokens import create_token
    from filerestore.settings import load_settings

    repo = tmp / "repo"
    (repo / "deep").mkdir(parents=True)
    for f in chain.iterdir():
        try:
            os.link(f, repo / "deep" / f.name)
        except OSError:
            subprocess.run(["cp", "--sparse=always", f, repo / "deep" / f.name], check=True)
    state = tmp / "state"
    state.mkdir()
    db = Database(load_settings(state_dir=state).effective_database_url)
    ensure_schema(db)
    catalog.add_repository(db, "bench", repo)
    backup_id = catalog.register_backup(db, "bench", f"deep/{top(chain).name}").id
    token = create_token(db, "bench", admin=True)[1]
    db.dispose()
    server = Server({"FILERESTORE_STATE_DIR": str(state)}, workers=2).start()
    out: dict[str, Any] = {}
    try:
        workers = server.worker_pids()

        def peak() -> int:  # the worker that served the requests is the larger one
            return max(vm_hwm_kib(pid) for pid in workers)

        out["idle_kib"] = peak()
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=300
        ) as c:
            statuses = [c.get(f"{API}/backups/{backup_id}").status_code for _ in range(5)]
            out["detail_status"] = statuses
            out["detail_kib"] = peak()
            r = c.post(f"{API}/restore/mount", json={"backup_id": backup_id})
            out["mount_status"] = r.status_code
            if r.status_code == 201:
                listing = c.get(
                    f"{API}/restore/{r.json()['mount_id']}/files", params={"path": "/etc"}
                )
                out["list_status"] = listing.status_code
            out["mount_kib"] = peak()
    finally:
        server.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    chain = deep_sparse_chain()
    image = str(top(chain))
    results: dict[str, Any] = {
        "cli_ls": cli(["ls", image, "/etc"]),
        "cli_inspect": cli(["inspect", image]),
    }
    with tempfile.TemporaryDirectory(dir=ROOT / ".cache") as tmp:
        results["api_worker"] = api(chain, Path(tmp))
    if args.json:
        print(json.dumps(results))
        return
    print(f"64-file chain, 2 PiB overlays with 32 MiB L1 tables each: {image}")
    for name in ("cli_ls", "cli_inspect"):
        r = results[name]
        print(f"{name:12} exit {r['rc']}  peak RSS {r['hwm_kib'] / 1024:7.1f} MiB  {r['stderr']}")
    w = results["api_worker"]
    print(f"api worker   idle {w['idle_kib'] / 1024:.1f} MiB")
    print(
        f"             after 5x GET /backups/{{id}} {w['detail_status']}: "
        f"{w['detail_kib'] / 1024:.1f} MiB"
    )
    print(
        f"             after mount ({w['mount_status']}) and a listing "
        f"({w.get('list_status', '-')}): {w['mount_kib'] / 1024:.1f} MiB"
    )
    worst = max(results["cli_ls"]["hwm_kib"], results["cli_inspect"]["hwm_kib"], w["mount_kib"])
    verdict = "met" if worst / 1024 <= TARGET_MIB else "NOT met"
    print(f"target: peak RSS <= {TARGET_MIB} MiB or a clean refusal: {verdict}")


if __name__ == "__main__":
    main()

"""REST API throughput over loopback HTTP, against a real `filerestore serve` (2 workers).

Measures, on an uncompressed qcow2 holding an ext4 filesystem (whole disk) built by
mke2fs -d from a generated tree (``big.bin``: 256 MiB of random bytes; ``many/``: 2,000
files of 64 KiB; the recipe is tests/imagebuild/bench_api.py):

- single-file download of big.bin (MB/s; read off a plain socket, and with httpx), with
  the sha256 of every download computed for its audit event as in production; and the same
  extraction by ``7zz x -so`` in the same run, as the peer;
- a ZIP of many/ (MB/s of archive bytes received);
- mount request to first listing (ms): POST /restore/mount then GET /files of "/", each
  time on a fresh session.

Usage: .venv/bin/python bench/api.py [--repeat N] [--json]. MB = 10^6 bytes; median of N.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.api.server import Server  # noqa: E402
from tests.imagebuild.bench_api import BIG_MIB, build  # noqa: E402

MiB = 1 << 20
TARGETS = {"download_mbps": 800, "zip_mbps": 300, "mount_to_listing_ms": 100}


def received(
    client: httpx.Client, url: str, params: object, sha: bool = False
) -> tuple[float, int, str]:
    h = hashlib.sha256() if sha else None
    n = 0
    t0 = time.perf_counter()
    with client.stream("GET", url, params=params) as r:  # type: ignore[arg-type]
        r.raise_for_status()
        for chunk in r.iter_raw(4 * MiB):
            n += len(chunk)
            if h:
                h.update(chunk)
    return time.perf_counter() - t0, n, h.hexdigest() if h else ""


def raw_get(url: str, target: str, token: str) -> tuple[float, int]:
    """Seconds and body bytes of one GET read off a plain socket: measures the server, not
    a Python HTTP client's parser (httpx/h11 costs CPU on the same two cores). A chunked
    body is counted with its chunk framing (about 10 bytes per 1 MiB chunk)."""
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    view = memoryview(bytearray(4 * MiB))
    t0 = time.perf_counter()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(request)
        total, head = 0, b""
        while n := sock.recv_into(view):
            if len(head) < 65536 and b"\r\n\r\n" not in head:
                head += bytes(view[:n])
            total += n
    elapsed = time.perf_counter() - t0
    if head.split(b" ", 2)[1] not in (b"200", b"206"):
        raise RuntimeError(f"GET {target}: {head[:200]!r}")
    return elapsed, total - (head.index(b"\r\n\r\n") + 4)


def seven_zip(image: Path, repeat: int) -> float:
    times = []
    with Path(os.devnull).open("wb") as null:
        for i in range(repeat + 1):
            t0 = time.perf_counter()
            subprocess.run(
                ["7zz", "x", "-so", str(image), "big.bin"],
                stdout=null,
                stderr=subprocess.DEVNULL,
                check=True,
            )
            if i:  # the first run warms the page cache
                times.append(time.perf_counter() - t0)
    return BIG_MIB * MiB / statistics.median(times) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from filerestore import catalog
    from filerestore.db.engine import Database
    from filerestore.db.migrate import ensure_schema
    from filerestore.service.tokens import create_token

    bench = build()
    manifest = json.loads((bench / "manifest.json").read_text())
    state = Path(tempfile.mkdtemp(prefix="fr-api-bench."))
    try:
        db = Database(f"sqlite:///{state / 'filerestore.db'}")
        ensure_schema(db)
        catalog.add_repository(db, "bench", bench)
        backup_id = catalog.register_backup(db, "bench", "disk.qcow2").id
        _, token = create_token(db, "bench", admin=True)
        db.dispose()
        env = {"FILERESTORE_STATE_DIR": str(state), "FILERESTORE_MAX_SESSIONS": "64"}
        server = Server(env, workers=2, log=state / "server.log").start()
        try:
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=300) as c:
                mount_ms = []
                for _ in range(max(args.repeat, 5)):
                    t0 = time.perf_counter()
                    m = c.post("/api/v1/restore/mount", json={"backup_id": backup_id}).json()
                    listing = c.get(f"/api/v1/restore/{m['mount_id']}/files", params={"path": "/"})
                    mount_ms.append((time.perf_counter() - t0) * 1e3)
                    assert listing.status_code == 200
                    c.delete(f"/api/v1/restore/{m['mount_id']}")
                m = c.post("/api/v1/restore/mount", json={"backup_id": backup_id}).json()
                url = f"/api/v1/restore/{m['mount_id']}"
                _, size, digest = received(c, f"{url}/download", {"path": "/big.bin"}, sha=True)
                if digest != manifest["big_sha256"]:
                    raise SystemExit("download differs from the source")
                target = f"/api/v1/restore/{m['mount_id']}"
                dl = [
                    raw_get(server.url, f"{target}/download?path=/big.bin", token)
                    for _ in range(args.repeat)
                ]
                zp = [
                    raw_get(server.url, f"{target}/download-directory?path=/many&format=zip", token)
                    for _ in range(args.repeat)
                ]
                httpx_dl = [
                    received(c, f"{url}/download", {"path": "/big.bin"}) for _ in range(args.repeat)
                ]
        finally:
            server.stop()
        peer = seven_zip(bench / "disk.qcow2", args.repeat)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    if any(n != size for _, n in dl):
        raise SystemExit("a raw download returned the wrong length")
    results = {
        "download_mbps": size / statistics.median(t for t, _ in dl) / 1e6,
        "download_httpx_mbps": size / statistics.median(t for t, _, _ in httpx_dl) / 1e6,
        "zip_mbps": statistics.median(n / t for t, n in zp) / 1e6,
        "zip_bytes": zp[0][1],
        "mount_to_listing_ms": statistics.median(mount_ms),
        "7zz_download_mbps": peer,
    }
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print(f"image: {bench / 'disk.qcow2'} (uncompressed qcow2, ext4); loopback HTTP, 2 workers")
    for key, value in results.items():
        if key == "zip_bytes":
            continue
        target = TARGETS.get(key)
        mark = ""
        if target is not None:
            at_most = key.endswith("_ms")
            met = value <= target if at_most else value >= target
            mark = f"  (target {'<=' if at_most else '>='} {target}: {'met' if met else 'MISSED'})"
        print(f"{key:22} {value:10.1f}{mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

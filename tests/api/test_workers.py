"""Worker processes: each runs under its memory limit, and one killed while another serves
a download is replaced; the download finishes and the next request for the same session is
answered (sessions are rows, any worker reopens them)."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

import httpx

from tests.api.conftest import API, Env

MiB = 1 << 20


def worker_of(c: httpx.Client) -> int:
    return int(c.get(f"{API}/restore/resources").json()["worker_pid"])


def address_space_limit(pid: int) -> str:
    limits = Path(f"/proc/{pid}/limits").read_text()
    line = next(x for x in limits.splitlines() if x.startswith("Max address space"))
    return line.split()[3]


def test_workers_run_under_the_memory_limit(api: Env) -> None:
    pids = api.server.worker_pids()
    assert len(pids) == 2
    deadline = time.monotonic() + 60  # a worker sets its limit when its application loads
    while time.monotonic() < deadline:
        if all(address_space_limit(p) == str(4 << 30) for p in pids):
            break
        time.sleep(0.5)
    assert [address_space_limit(p) for p in pids] == [str(4 << 30)] * 2


def test_killed_worker_is_replaced_and_the_session_survives(api: Env) -> None:
    mount = api.mount("carol")
    before = set(api.server.worker_pids())
    clients = [api.client("carol") for _ in range(80)]
    try:
        by_pid: dict[int, httpx.Client] = {}
        for c in clients:
            by_pid.setdefault(worker_of(c), c)
            if len(by_pid) == 2:
                break
        assert set(by_pid) == before, "two connections on two different workers"
        victim, survivor = sorted(by_pid)
        want = 64 * MiB
        source = api.source.path("/big-sparse.bin")
        with source.open("rb") as fh:
            expected = hashlib.sha256(fh.read(want)).hexdigest()
        h = hashlib.sha256()
        with by_pid[survivor].stream(
            "GET",
            f"{API}/restore/{mount}/download",
            params={"path": "/big-sparse.bin"},
            headers={"Range": f"bytes=0-{want - 1}"},
        ) as r:
            assert r.status_code == 206
            chunks = r.iter_raw(MiB)
            h.update(next(chunks))
            os.kill(victim, signal.SIGKILL)  # while the download is in flight elsewhere
            for chunk in chunks:
                h.update(chunk)
        assert h.hexdigest() == expected
    finally:
        for c in clients:
            c.close()
    for _ in range(6):  # new connections, whichever worker takes them
        with api.client("carol") as c:
            assert (
                c.get(f"{API}/restore/{mount}/files", params={"path": "/docs"}).status_code == 200
            )
    now = api.server.replaced(victim, 20)
    assert victim not in now and len(now) == 2 and survivor in now

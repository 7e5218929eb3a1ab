"""Several hosts on one machine: `filerestore serve` instances on one PostgreSQL database,
reading one S3 repository, behind HAProxy with the deployment guide's configuration.

Everything is a process of its own on loopback: SeaweedFS (``weed mini``, a real S3
server), the tests' latency proxy in front of it (it counts the requests every instance
makes), each instance with its own state directory (its own block cache, as a host has),
and ``haproxy -f deploy/haproxy/filerestore.cfg``, the very file the guide documents. The
catalog is set up as an operator would, with the CLI: ``repo add``, ``scan``, ``token
create``. Used by tests/scale and bench/s3.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.api.server import Server, api_client, healthy, run_cli
from tests.imagebuild.scale_image import name_of
from tests.processes import free_port, terminate, wait_up
from tests.s3server import servers

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy" / "filerestore.cfg"
BUCKET = "scale"
PREFIX = "offsite"
REPOSITORY = "offsite"
STAGING = "staging"  # a local repository named in the settings file
API = "/api/v1"


@dataclass
class Node:
    name: str  # the balancer's name for it (X-Filerestore-Instance)
    server: Server
    state_dir: Path

    @property
    def url(self) -> str:
        return self.server.url

    def blocks(self) -> tuple[int, int]:
        """(blocks, bytes) in this host's block cache: each was one GET of the store."""
        index = self.state_dir / "blocks" / "index.sqlite3"
        if not index.exists():
            return 0, 0
        with sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=30) as db:
            row = db.execute("SELECT count(*), coalesce(sum(size), 0) FROM blocks").fetchone()
        count, size = row
        return int(count), int(size)


@dataclass
class Balancer:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        terminate(self.process)


@dataclass
class Cluster:
    nodes: list[Node]
    balancer: Balancer
    s3: servers.Server
    proxy: servers.Server
    tokens: dict[str, str]
    backup_id: int  # the first of backup_ids
    backup_ids: list[int]  # the same image under vm1/, vm2/, ... (start_cluster's backups)
    work: Path

    def client(self, who: str, url: str | None = None, **kw: object) -> httpx.Client:
        return api_client(url or self.balancer.url, self.tokens[who], **kw)

    def download(
        self, who: str, mount_id: str, index: int, url: str | None = None
    ) -> tuple[str, int, str | None]:
        """(sha256, bytes, instance that answered) of the scale image's file ``index``
        downloaded through ``url`` (the balancer by default); RuntimeError unless 200."""
        h = hashlib.sha256()
        size = 0
        path = "/" + name_of(index)
        with (
            self.client(who, url) as c,
            c.stream("GET", f"{API}/restore/{mount_id}/download", params={"path": path}) as r,
        ):
            if r.status_code != 200:
                raise RuntimeError(f"download of {path}: HTTP {r.status_code} {r.read()!r}")
            for chunk in r.iter_raw(1 << 20):
                h.update(chunk)
                size += len(chunk)
            return h.hexdigest(), size, r.headers.get("X-Filerestore-Instance")

    def gets(self) -> int:
        """S3 GETs every instance made since the last call (the proxy counts them)."""
        return servers.proxy_call(self.proxy, "reset").get("GET", 0)

    def settle(self, quiet: float = 1.0, limit: float = 60.0) -> None:
        """Wait until no instance is fetching: the store's GET count and every block cache
        stay the same for ``quiet`` seconds (prefetches outlive the response that began
        them). Counts nothing itself: the next :meth:`gets` still sees every GET."""
        last: tuple[int, ...] = ()
        still_since = time.monotonic()
        deadline = still_since + limit
        while time.monotonic() < deadline:
            now = (
                servers.proxy_call(self.proxy, "stats").get("GET", 0),
                *(n.blocks()[0] for n in self.nodes),
            )
            if now != last:
                last, still_since = now, time.monotonic()
            elif time.monotonic() - still_since >= quiet:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the instances kept fetching for {limit} s")

    def stop(self) -> None:
        self.balancer.stop()
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda n: n.server.stop(), self.nodes))
        self.proxy.stop()
        self.s3.stop()


def _settings_file(work: Path) -> Path:
    """What every host's settings file holds: the S3 repository's credentials, by name, and
    a local repository every instance adds when it starts (the instances start at once)."""
    staging = work / "staging"
    staging.mkdir(exist_ok=True)
    config = work / "filerestore.toml"
    config.write_text(
        "max_sessions = 64\n"
        "max_downloads_per_session = 64\n"
        "[[repositories]]\n"
        f'name = "{STAGING}"\n'
        f'path = "{staging}"\n'
        f"[s3_credentials.{REPOSITORY}]\n"
        'env_prefix = "OFFSITE_"\n'
    )
    return config


def start_balancer(nodes: list[Node], log: Path) -> Balancer:
    port = free_port()
    env = {
        **os.environ,
        "FILERESTORE_BIND": f"127.0.0.1:{port}",
        **{f"FILERESTORE_NODE{i + 1}": n.url.removeprefix("http://") for i, n in enumerate(nodes)},
    }
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    check = subprocess.run(
        [haproxy, "-c", "-f", str(HAPROXY_CONFIG)], env=env, capture_output=True, text=True
    )
    if check.returncode != 0:
        raise RuntimeError(f"haproxy -c refused {HAPROXY_CONFIG}: {check.stdout}{check.stderr}")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [haproxy, "-db", "-f", str(HAPROXY_CONFIG)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    wait_up(process, lambda: healthy(url), "haproxy", 30, log)
    return Balancer(url, process)


def start_cluster(
    work: Path,
    database_url: str,
    image: Path,
    users: int = 24,
    nodes: int = 2,
    workers: int = 2,
    latency_ms: float = 0.0,
    backups: int = 1,
) -> Cluster:
    """Set the catalog up with the CLI, then start the instances and the balancer."""
    s3 = servers.start_seaweedfs(work / "weed", BUCKET)
    proxy = servers.start_proxy(s3, latency_ms)
    started: list[Node] = []
    try:
        for vm in range(1, backups + 1):  # one backup per VM (other keys: other blocks)
            servers.boto_client(s3).upload_file(str(image), BUCKET, f"{PREFIX}/vm{vm}/disk.qcow2")
        config = _settings_file(work)
        common = {
            "FILERESTORE_DATABASE_URL": database_url,
            "FILERESTORE_CONFIG": str(config),
            "FILERESTORE_CLEANUP_INTERVAL": "30",
            "OFFSITE_ACCESS_KEY_ID": servers.ACCESS_KEY,
            "OFFSITE_SECRET_ACCESS_KEY": servers.SECRET_KEY,
        }

        def env_of(i: int) -> dict[str, str]:
            return {**common, "FILERESTORE_STATE_DIR": str(work / f"node{i}")}

        url = f"s3://{BUCKET}/{PREFIX}"
        run_cli(env_of(1), "repo", "add", REPOSITORY, url, "--endpoint", proxy.endpoint,
             "--region", servers.REGION)  # fmt: skip
        run_cli(env_of(1), "scan", REPOSITORY)
        found = json.loads(run_cli(env_of(1), "backups", "--json"))
        backup_ids = [int(b["id"]) for b in sorted(found, key=lambda b: b["path"])]
        assert len(backup_ids) == backups, found
        names = ["admin", *(f"u{i:02d}" for i in range(users))]
        tokens = {}
        for name in names:
            admin = ["--admin"] if name == "admin" else []
            tokens[name] = run_cli(env_of(1), "token", "create", name, *admin).strip()
        candidates = [
            Node(f"node{i}", Server(env_of(i), workers, work / f"node{i}.log"), work / f"node{i}")
            for i in range(1, nodes + 1)
        ]
        with ThreadPoolExecutor(nodes) as pool:  # hosts boot at once
            starting = [(n, pool.submit(n.server.start, 120)) for n in candidates]
        failed = [f.exception() for _, f in starting if f.exception() is not None]
        started += [n for n, f in starting if f.exception() is None]
        if failed:
            raise RuntimeError(f"an instance did not start: {failed[0]}")
        balancer = start_balancer(started, work / "haproxy.log")
    except BaseException:
        for node in started:
            node.server.stop()
        proxy.stop()
        s3.stop()
        raise
    return Cluster(started, balancer, s3, proxy, tokens, backup_ids[0], backup_ids, work)

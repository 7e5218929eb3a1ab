"""A moto S3 server process per test worker, the latency proxy in front of it, and stores.

Every test gets its own bucket (``bucket``), so tests never see each other's objects; the
``store`` factory opens an :class:`S3Store` on it through the proxy with small timeouts, so
a dead or stalled server fails a test in seconds.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from filerestore.source import BlockOptions, S3Options, S3Store
from tests.s3server.servers import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    Server,
    boto_client,
    proxy_call,
    start_moto,
    start_proxy,
)

_buckets = itertools.count()
StoreFactory = Callable[..., S3Store]


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def proxy(moto: Server) -> Iterator[Server]:
    server = start_proxy(moto)
    yield server
    server.stop()


@pytest.fixture
def s3(moto: Server) -> Any:
    """boto3 on the server itself (not through the proxy): uploads are not counted."""
    return boto_client(moto)


@pytest.fixture
def bucket(s3: Any, worker_id: str) -> str:
    name = f"test-{worker_id}-{next(_buckets)}".lower()
    s3.create_bucket(Bucket=name)
    return name


def options(endpoint: str, bucket: str, **kw: Any) -> S3Options:
    settings: dict[str, Any] = {
        "request_timeout": 3.0,
        "connect_timeout": 1.0,
        "retries": 2,
        "backoff_initial": 0.05,
        "backoff_max": 0.2,
        **kw,
    }
    return S3Options(
        bucket=bucket,
        endpoint=endpoint,
        region=REGION,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        **settings,
    )


@pytest.fixture
def store(proxy: Server, bucket: str, tmp_path: Path) -> Iterator[StoreFactory]:
    """``store(prefix="", cache=True, **block_options)`` through the proxy; closed after."""
    opened: list[S3Store] = []
    proxy_call(proxy, "set", delay_ms=0, stall=0)

    def make(
        prefix: str = "", cache: bool = True, endpoint: str | None = None, **kw: Any
    ) -> S3Store:
        blocks = BlockOptions(
            **{"block_size": 64 * 1024, "cache_dir": tmp_path / "cache" if cache else None, **kw}
        )
        s = S3Store(options(endpoint or proxy.endpoint, bucket), prefix, blocks)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()
    proxy_call(proxy, "set", delay_ms=0, stall=0)


def upload_tree(s3: Any, bucket: str, prefix: str, directory: Path) -> None:
    """Every regular file under ``directory`` as ``prefix/<relative path>``."""
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink():
            key = f"{prefix}/{path.relative_to(directory).as_posix()}".lstrip("/")
            s3.upload_file(str(path), bucket, key)

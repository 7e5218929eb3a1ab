"""S3 fixtures shared by the test packages: a moto server process per test worker, the
latency proxy in front of it, a bucket per test, and the client options tests use.

Every test gets its own bucket (``bucket``), so tests never see each other's objects. Tests
always give credentials: without them a client would look for the host's instance
credentials on the network.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from filerestore.source import S3Options
from tests.s3server.servers import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    Server,
    boto_client,
    start_moto,
    start_proxy,
)

_buckets = itertools.count()


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


def upload_tree(s3: Any, bucket: str, prefix: str, directory: Path) -> None:
    """Every regular file under ``directory`` as ``prefix/<relative path>``."""
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink():
            key = f"{prefix}/{path.relative_to(directory).as_posix()}".lstrip("/")
            s3.upload_file(str(path), bucket, key)

# ruff: noqa: F811 - pytest fixtures imported from tests/s3server/fixtures.py are redefined as arguments
"""A moto S3 server process per test worker, the latency proxy in front of it, and stores.

Every test gets its own bucket (``bucket``), so tests never see each other's objects; the
``store`` factory opens an :class:`S3Store` on it through the proxy with small timeouts, so
a dead or stalled server fails a test in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from filerestore.source import BlockOptions, S3Store
from tests.s3server.fixtures import (  # noqa: F401 - pytest fixtures, and helpers tests import
    bucket,
    moto,
    options,
    proxy,
    s3,
    upload_tree,
)
from tests.s3server.servers import Server, proxy_call

StoreFactory = Callable[..., S3Store]


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

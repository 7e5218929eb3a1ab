"""An object store that goes away or stops answering: a clear error in bounded time, no hang.

The timeouts are small here (tests/source/conftest.py: 3 s a request, 2 retries); pytest's
timeout is the backstop that turns a hang into a failure.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from filerestore.errors import ObjectStoreUnavailableError, ServiceUnavailableError
from filerestore.image.disk import open_backup
from filerestore.source import BlockOptions, S3Store
from tests.imagebuild import qcow
from tests.s3server.fixtures import options, upload_tree
from tests.s3server.servers import boto_client, proxy_call, start_moto, start_proxy
from tests.source.conftest import StoreFactory


@pytest.mark.timeout(120)
def test_server_killed_mid_read_raises_unavailable(tmp_path: Path) -> None:
    server = start_moto(tmp_path)
    proxy = start_proxy(server, delay_ms=5)
    try:
        s3 = boto_client(server)
        s3.create_bucket(Bucket="dying")
        upload_tree(s3, "dying", "", qcow.chain("flat"))
        store = S3Store(
            options(proxy.endpoint, "dying", request_timeout=2.0),
            blocks=BlockOptions(block_size=64 * 1024, prefetch=2),
        )
        with store, open_backup(store, "top.qcow2") as disk:
            disk.read_at(0, 1 << 20)  # it works while the server lives
            killed = threading.Event()

            def kill_soon() -> None:
                server.kill()
                killed.set()

            threading.Timer(0.2, kill_soon).start()
            with pytest.raises(ObjectStoreUnavailableError):
                for offset in range(0, disk.size, 256 * 1024):  # 64 KiB blocks: many GETs
                    disk.read_at(offset, 256 * 1024)
            assert killed.is_set()
    finally:
        proxy.stop()
        server.stop()


@pytest.mark.timeout(120)
def test_a_stalled_server_times_out(s3: Any, bucket: str, store: StoreFactory, proxy: Any) -> None:
    upload_tree(s3, bucket, "", qcow.chain("flat"))
    repo = store(cache=False)
    with open_backup(repo, "top.qcow2") as disk:
        proxy_call(proxy, "set", stall=1)  # connections accepted, requests never answered
        with pytest.raises(ObjectStoreUnavailableError) as info:
            disk.read_at(12 << 20, 1 << 20)
    assert isinstance(info.value, ServiceUnavailableError)  # the API's 503
    assert f"s3://{bucket}/" in str(info.value)


@pytest.mark.timeout(60)
def test_nothing_listening_is_unavailable(bucket: str, tmp_path: Path) -> None:
    from tests.processes import free_port

    store = S3Store(options(f"http://127.0.0.1:{free_port()}", bucket, retries=1))
    with store, pytest.raises(ObjectStoreUnavailableError):
        store.open("top.qcow2")


def test_a_missing_bucket_is_unavailable_not_a_missing_backup(bucket: str, proxy: Any) -> None:
    store = S3Store(options(proxy.endpoint, bucket + "-absent"))
    with store, pytest.raises(ObjectStoreUnavailableError, match="does not exist"):
        store.open("top.qcow2")

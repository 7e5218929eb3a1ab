# ruff: noqa: F811 - pytest fixtures imported from tests/dbfixtures.py are redefined as arguments
"""A download that reads to its end gives its session back before its last bytes go out, so
a client holding the whole body can unmount at once.

A script's ``download; DELETE`` used to race the server's release of the download hold,
which ran only after the last chunk was written: the DELETE could find the hold and get 409
(seen once in CI). Checked in process, deterministically: an ASGI wrapper counts the
session's hold rows as the response head and each piece of the body pass by. The hold is
there at the head (so the count can fail) and gone by the last bytes.
"""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import func, select
from starlette.types import Message, Receive, Scope, Send

from filerestore.api.app import create_app
from filerestore.db.models import DownloadHold
from filerestore.service.tokens import create_token
from tests.dbfixtures import database_url, db, make_settings, pg_server_url, settings  # noqa: F401
from tests.imagebuild.catalog_repo import FILES
from tests.service.sessionsetup import backups  # noqa: F401

API = "/api/v1"


@dataclass
class Watched:
    status: int = 0
    body: bytes = b""
    #: holds of the session when the head went out, and when each non-empty piece did
    at_head: int = -1
    at_pieces: list[int] = field(default_factory=list)


def _watch(app, mount_id: str, method: str, url: str, headers: dict[str, str]) -> Watched:
    db = app.state.filerestore.db
    seen = Watched()

    def holds() -> int:
        with db.read() as s:
            query = select(func.count()).select_from(DownloadHold)
            return int(s.scalar(query.where(DownloadHold.mount_id == mount_id)) or 0)

    async def watching(scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen.at_head = holds()
            elif message["type"] == "http.response.body" and message.get("body"):
                seen.at_pieces.append(holds())
            await send(message)

        await app(scope, receive, sending)

    async def run() -> None:
        transport = httpx.ASGITransport(app=watching)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.request(method, url, headers=headers)
            seen.status, seen.body = r.status_code, r.content

    # a loop of its own on a thread of its own (the calling thread may already run one)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()
    return seen


@pytest.fixture
def served(settings, db, backups):
    app = create_app(settings, cleanup=False)
    headers = {"Authorization": f"Bearer {create_token(db, 'quick')[1]}"}
    mount = _mount(app, headers, backups["full"])
    yield app, headers, mount
    app.state.filerestore.sessions.readers.close_all()
    app.state.filerestore.db.dispose()


def _mount(app, headers: dict[str, str], backup_id: int) -> str:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(
                f"{API}/restore/mount", headers=headers, json={"backup_id": backup_id}
            )

    with ThreadPoolExecutor(1) as pool:
        r = pool.submit(asyncio.run, run()).result()
    assert r.status_code == 201, r.text
    return str(r.json()["mount_id"])


def _tar_members(body: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


#: route, extra request headers, expected status, and what the body must be
DOWNLOADS = {
    "whole file": (
        "download?path=/docs/readme.md",
        {},
        200,
        lambda b: b == FILES["docs/readme.md"],
    ),
    "range": (
        "download?path=/hello.txt",
        {"Range": "bytes=6-9"},
        206,
        lambda b: b == FILES["hello.txt"][6:10],
    ),
    "archive": (
        "download-directory?path=/docs&format=tar",
        {},
        200,
        lambda b: _tar_members(b) == {"docs/readme.md": FILES["docs/readme.md"]},
    ),
}


@pytest.mark.parametrize("kind", sorted(DOWNLOADS))
def test_the_hold_ends_before_the_last_bytes_go_out(served, kind):
    app, headers, mount = served
    route, extra, status, body_ok = DOWNLOADS[kind]
    seen = _watch(app, mount, "GET", f"{API}/restore/{mount}/{route}", {**headers, **extra})
    assert seen.status == status
    assert body_ok(seen.body)
    assert seen.at_head == 1  # the download held its session while it was answered
    assert seen.at_pieces and seen.at_pieces[-1] == 0
    unmounted = _watch(app, mount, "DELETE", f"{API}/restore/{mount}", headers)
    assert unmounted.status == 204, json.loads(unmounted.body or b"{}")

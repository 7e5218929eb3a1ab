"""Counting database transactions per request, in process: an ASGI wrapper notes how many
transactions the application's engine began before the response head went out."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event
from starlette.types import Message, Receive, Scope, Send


@dataclass
class Counted:
    status: int
    body: bytes
    #: transactions begun from the request's start to its response head
    before_head: int
    #: ... and to the end of the response (its release included)
    total: int


class TransactionCounter:
    """Counts ``begin`` events of an application's database engine per request."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.engine = app.state.filerestore.db.engine
        self.begun = 0
        event.listen(self.engine, "begin", self._on_begin)

    def _on_begin(self, conn: Any) -> None:
        self.begun += 1

    def close(self) -> None:
        event.remove(self.engine, "begin", self._on_begin)

    def request(
        self, method: str, url: str, headers: dict[str, str], json: object = None
    ) -> Counted:
        # a loop of its own on a thread of its own: the calling thread may already run one
        # (a session-wide Playwright browser of tests/web, in the same xdist worker)
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, self._request(method, url, headers, json)).result()

    async def _request(
        self, method: str, url: str, headers: dict[str, str], json: object
    ) -> Counted:
        start = self.begun
        at_head: list[int] = []

        async def counting(scope: Scope, receive: Receive, send: Send) -> None:
            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start":
                    at_head.append(self.begun - start)
                await send(message)

            await self.app(scope, receive, sending)

        transport = httpx.ASGITransport(app=counting)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            # the transport returns once the application has returned: the response's
            # release (before the last body bytes, or at its end) is counted
            response = await client.request(method, url, headers=headers, json=json)
        return Counted(response.status_code, response.content, at_head[0], self.begun - start)

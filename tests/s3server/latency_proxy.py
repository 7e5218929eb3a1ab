"""A TCP proxy for HTTP/1.1 that delays every request, counts requests, and can stall.

Run as its own process (``python -m tests.s3server.latency_proxy --target HOST:PORT``); it
prints ``port N`` once listening on 127.0.0.1. Each request read from a client connection
is held ``delay_ms`` before it is forwarded (the round trip of a distant object store,
paid once per request as on a real network), and counted by method. Responses are piped
back unchanged. Requests to ``/__proxy__/...`` are answered by the proxy itself:

- ``/__proxy__/stats``: ``{"GET": n, "HEAD": n, ...}`` since the last reset;
- ``/__proxy__/reset``: the counts, then zero them;
- ``/__proxy__/set?delay_ms=N&stall=0|1``: change the delay; with stall=1 requests are
  held for ever (an object store that accepts connections and never answers).

It needs no parsing of responses because HTTP/1.1 clients send one request at a time on a
connection (no pipelining) and wait for the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections import Counter
from urllib.parse import parse_qs, urlsplit


class Proxy:
    def __init__(self, target: tuple[str, int], delay_ms: float) -> None:
        self.target = target
        self.delay = delay_ms / 1000
        self.stall = False
        self.counts: Counter[str] = Counter()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: asyncio.StreamWriter | None = None
        pump: asyncio.Task[None] | None = None
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                if target.startswith("/__proxy__/"):
                    writer.write(self.control(target))
                    await writer.drain()
                    continue
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                body = await reader.readexactly(length) if length else b""
                self.counts[method] += 1
                while self.stall:
                    await asyncio.sleep(0.05)
                if self.delay:
                    await asyncio.sleep(self.delay)
                if upstream is None or upstream.is_closing():
                    try:
                        up_reader, upstream = await asyncio.open_connection(*self.target)
                    except OSError:
                        return  # the server is gone: the client sees its connection closed
                    pump = asyncio.create_task(self.pipe(up_reader, writer))
                upstream.write(head + body)
                await upstream.drain()
        except ConnectionError:
            return
        finally:
            if pump is not None:
                pump.cancel()
            for w in (upstream, writer):
                if w is not None:
                    w.close()

    @staticmethod
    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(1 << 20):
                writer.write(data)
                await writer.drain()
        writer.close()

    def control(self, target: str) -> bytes:
        url = urlsplit(target)
        body = json.dumps(dict(self.counts)).encode()
        if url.path == "/__proxy__/reset":
            self.counts.clear()
        elif url.path == "/__proxy__/set":
            query = parse_qs(url.query)
            if "delay_ms" in query:
                self.delay = float(query["delay_ms"][0]) / 1000
            if "stall" in query:
                self.stall = query["stall"][0] == "1"
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True, help="HOST:PORT of the S3 server")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    host, port = args.target.rsplit(":", 1)
    proxy = Proxy((host, int(port)), args.delay_ms)
    server = await asyncio.start_server(proxy.serve, "127.0.0.1", args.port)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())

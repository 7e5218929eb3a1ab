"""HTTP download mechanics: byte ranges, strong ETags, Content-Disposition, held streams.

# References: RFC 9110 section 14 (Range, Content-Range, 206 and 416, If-Range) and 8.8.3
# (ETag); RFC 6266 (Content-Disposition) with RFC 8187/5987 (``filename*``).

Backups are immutable, so an entry's identity (backup, volume, inode, size, times) makes a
strong validator. One range per request: several ranges are answered with the whole file
(RFC 9110 lets a server ignore Range), which every download manager handles.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from filerestore.errors import RangeNotSatisfiableError
from filerestore.fs.entry import Entry

# RFC 9110 14.1.2 with optional whitespace (SP, HTAB) around the tokens, as clients send it;
# ASCII digits only, and the whole value (``\s``, ``\d`` and ``$`` also took vertical tabs,
# U+00A0, other scripts' digits and a trailing newline)
_RANGE = re.compile(r"[ \t]*bytes[ \t]*=[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*", re.IGNORECASE)
MAX_DIGITS = 20  # larger numbers than any file size are not worth parsing


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int  # inclusive
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range asked for, clamped to the file; None means "send the whole file".

    Syntax that is not a single ``bytes=`` range is ignored (the whole file is sent), as RFC
    9110 says; a well-formed range wholly outside the file raises RangeNotSatisfiableError.
    """
    if header is None or "," in header:
        return None
    match = _RANGE.fullmatch(header)
    if not match:
        return None
    first, last = match.groups()
    if len(first) > MAX_DIGITS or len(last) > MAX_DIGITS or not (first or last):
        return None
    if not first:  # suffix: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiableError(f"range {header.strip()!r} selects no byte of {size}")
        return ByteRange(max(size - suffix, 0), size)
    start = int(first)
    end = size if not last else min(int(last) + 1, size)
    if last and int(last) < start:
        return None  # invalid syntax: ignored
    if start >= size:
        raise RangeNotSatisfiableError(f"range {header.strip()!r} starts past the end ({size})")
    return ByteRange(start, end)


def strong_etag(backup_id: object, volume: object, entry: Entry) -> str:
    identity = repr(
        (backup_id, volume, entry.path, entry.inode, entry.size, entry.mtime_ns, entry.ctime_ns)
    )
    return '"' + hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32] + '"'


def if_range_matches(if_range: str | None, etag: str) -> bool:
    """True when a Range may be honoured: no If-Range, or it names the current ETag (a date
    is never a strong enough validator here, so it means "send the whole file")."""
    return if_range is None or if_range.strip() == etag


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def ascii_fallback(name: str) -> str:
    """A plain ASCII file name for old clients: other characters, quotes, backslashes and
    control characters become ``_``."""
    out = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%/;' else "_" for c in name)
    out = out.strip(" .") or "download"
    return out[:200]


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII ``filename`` and the exact UTF-8 ``filename*``.

    A name that is not valid UTF-8 (surrogate escapes) gets U+FFFD in ``filename*``: the
    header must be valid UTF-8, and the client still gets a usable name.
    """
    try:
        raw = name.encode("utf-8", "surrogateescape")  # the name's own bytes
    except UnicodeEncodeError:
        raw = name.encode("utf-8", "surrogatepass")
    utf8 = raw.decode("utf-8", "replace").encode("utf-8")
    encoded = quote(utf8, safe="")
    return f"attachment; filename=\"{ascii_fallback(name)}\"; filename*=UTF-8''{encoded}"


Release = Callable[[], Awaitable[None]]


class StreamCut(Exception):
    """Raised out of a streamed body that broke off after a handled failure (logged once,
    as a warning, where it was handled). The exception is how an ASGI application tells
    the server to close the connection without the final chunk, so the client sees a
    truncated body as truncated; :class:`QuietStreamCut` keeps the server from logging it
    again as a crash."""


class QuietStreamCut(logging.Filter):
    """Drops the server's "Exception in ASGI application" record for a :class:`StreamCut`:
    the failure behind it was logged as one warning line already."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, StreamCut)


_QUIET = QuietStreamCut()


def quiet_stream_cuts(logger: str = "uvicorn.error") -> None:
    """Install :class:`QuietStreamCut` on the server's error logger (once per process)."""
    target = logging.getLogger(logger)
    if _QUIET not in target.filters:
        target.addFilter(_QUIET)


PREFETCH = 4  # chunks read ahead of the socket: reading overlaps sending


COALESCE = 1 << 20  # archive pieces are joined up to this size before they are handed over


def coalesced(chunks: Iterator[bytes], size: int = COALESCE) -> Iterator[bytes]:
    """Join small pieces (an archive writes a header, a small file, a descriptor ...) into
    chunks of about ``size`` bytes: one hand-over between threads per chunk, not per piece."""
    pending: list[bytes] = []
    held = 0
    try:
        for piece in chunks:
            if not piece:
                continue
            pending.append(piece)
            held += len(piece)
            if held >= size:
                yield b"".join(pending)
                pending.clear()
                held = 0
        if pending:
            yield b"".join(pending)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


class Prefetch:
    """A blocking iterator pulled by one producer thread, ``depth`` chunks ahead, so
    reading (and hashing) a chunk overlaps sending the previous one.

    The producer hands chunks to the event loop with ``call_soon_threadsafe``; waiting for
    a chunk is an ``await`` on the loop, so a slow download occupies no thread-pool slot
    (the pool stays free for the other requests' reads). A semaphore of ``depth`` slots
    holds the producer back when the client reads slowly.

    :meth:`stop` ends the producer and waits for it; the iterator is closed in the
    producer's own thread. The response calls it before giving the reader stack back, so
    a stack is never lent again while a producer may still read from it, however the
    response ended (done, error, or a client that went away while a chunk was in flight).
    """

    def __init__(self, chunks: Iterator[bytes], depth: int = PREFETCH) -> None:
        self._chunks = chunks
        self._slots = threading.Semaphore(depth)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._queue: asyncio.Queue[bytes | BaseException | None] | None = None

    def _hand_over(
        self, loop: asyncio.AbstractEventLoop, item: bytes | BaseException | None
    ) -> bool:
        while not self._slots.acquire(timeout=0.1):
            if self._stop.is_set():
                return False
        if self._stop.is_set():
            return False
        assert self._queue is not None
        try:
            loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: the server is shutting down
            return False
        return True

    def _produce(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            for chunk in self._chunks:
                if not self._hand_over(loop, chunk):
                    return
            self._hand_over(loop, None)
        except BaseException as exc:  # handed to the consumer, raised there
            self._hand_over(loop, exc)
        finally:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._thread = threading.Thread(
            target=self._produce, args=(loop,), name="download", daemon=True
        )
        self._thread.start()
        while True:
            item = await self._queue.get()
            self._slots.release()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(thread.join)


class HeldStreamingResponse(StreamingResponse):
    """A streamed body that runs ``release`` once the response is over, however it ends:
    sent in full, failed mid-stream, or the client went away (even before the first chunk)."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        release: Release,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__(content, status_code, headers, media_type)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):  # a disconnect cancels us: release anyway
                await self._release()

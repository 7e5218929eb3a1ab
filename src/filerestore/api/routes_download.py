"""Download routes: one file (ranges, ETag) and archives of one or several paths.

A download checks out a reader stack and a download hold before answering; both are given
back when the response ends, however it ends (sent, failed, or the client went away): see
:class:`~filerestore.api.downloads.HeldStreamingResponse`. Everything a client can get
wrong raises before the first byte, so it still gets an error status; a failure after the
first byte cuts the connection without the final chunk, so a truncated body never looks
complete.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from filerestore.api import downloads as d
from filerestore.api.auth import Caller
from filerestore.api.backend import Principal, Transfer
from filerestore.api.content_types import SNIFF_BYTES, content_type
from filerestore.api.errors import error_response
from filerestore.api.paths import display, request_path, request_paths
from filerestore.api.routes_restore import ERRORS, PathParam, PathsParam
from filerestore.api.state import AppState, app_state
from filerestore.errors import FileRestoreError, RangeNotSatisfiableError
from filerestore.restore import audit
from filerestore.restore.archive import ArchiveFormat, archive_filename, archive_stream
from filerestore.restore.file_data import open_file
from filerestore.restore.sessions import Session
from filerestore.restore.stack import Stack

router = APIRouter(prefix="/restore", tags=["download"])
log = logging.getLogger("filerestore.api")

DOWNLOAD_ERRORS = {**ERRORS, 416: ERRORS[400], 429: ERRORS[400]}
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **DOWNLOAD_ERRORS,
    200: {"description": "The file's bytes.", "content": {"application/octet-stream": {}}},
    206: {"description": "The requested byte range.", "content": {"application/octet-stream": {}}},
    304: {"description": "Not modified (If-None-Match matched the ETag)."},
}
ARCHIVE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **DOWNLOAD_ERRORS,
    200: {
        "description": "The archive, streamed as it is read.",
        "content": {f.media_type: {} for f in ArchiveFormat},
    },
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cache-Control": "private, no-transform",
}


class _Download:
    """One download's stack and hold (a :class:`Transfer`), its tally and its audit event;
    given back exactly once, when the response ends."""

    def __init__(self, st: AppState, session: Session, who: Principal, kind: str) -> None:
        self.st, self.session, self.who, self.kind = st, session, who, kind
        self.transfer: Transfer | None = None
        self.sent = 0
        self.complete = False
        self.sha256: hashlib._Hash | None = None
        self.path = ""
        self.detail: str | None = None
        self.prefetch: d.Prefetch | None = None
        self.refused = False

    def open(self) -> Stack:
        self.transfer = self.st.backend.transfer(self.session, self.who)
        self.st.metrics.downloads.inc()
        return self.transfer.stack

    def close(self) -> None:
        if self.transfer is not None:
            self.st.metrics.downloads.dec()
            self.transfer.close()
            self.transfer = None
        self.st.metrics.bytes_sent.labels(kind=self.kind).inc(self.sent)
        detail = self.detail
        if self.sha256 is not None and self.complete:
            detail = f"sha256={self.sha256.hexdigest()}" + (f"; {detail}" if detail else "")
        audit.record(
            self.st.db,
            self.who.actor,
            self.kind,
            self.outcome,
            backup_id=self.session.backup_id,
            mount_id=self.session.mount_id,
            path=self.path,
            size=self.sent,
            detail=detail,
        )

    @property
    def outcome(self) -> str:
        if self.complete:
            return "ok"
        return "failed" if self.refused else "incomplete"

    def refuse(self, exc: BaseException) -> None:
        """The download was refused before its first byte (bad path, range, limit ...)."""
        self.refused = True
        if isinstance(exc, FileRestoreError):
            self.detail = f"{exc.code}: {exc}"

    def counted(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if self.sha256 is not None:
                self.sha256.update(chunk)
            self.sent += len(chunk)
            yield chunk
        self.complete = True

    async def release(self) -> None:
        if self.prefetch is not None:
            await self.prefetch.stop()  # no reader thread left before the stack goes back
        await run_in_threadpool(self.close)


async def _body(transfer: _Download, chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    transfer.prefetch = d.Prefetch(transfer.counted(chunks))
    try:
        async for chunk in transfer.prefetch:
            yield chunk
    except FileRestoreError as exc:
        log.warning("download cut short: %s", exc)
        transfer.detail = f"{exc.code}: {exc}"
        raise


@router.get("/{mount_id}/download", responses=FILE_RESPONSES, response_class=Response)
async def download(mount_id: str, request: Request, who: Caller, path: PathParam) -> Response:
    st = app_state(request)
    guest = request_path(request, default=None)
    session = await run_in_threadpool(st.backend.opened, mount_id, who)
    transfer = _Download(st, session, who, "download")
    transfer.path = guest
    headers = dict(SECURITY_HEADERS)

    def prepare() -> tuple[int, Iterator[bytes] | None]:
        stack = transfer.open()
        f = open_file(stack.fs, guest)
        head = f.reader.read_at(0, min(SNIFF_BYTES, f.size))
        etag = d.strong_etag(session.backup_id, session.volume, f.entry)
        headers.update(
            {
                "ETag": etag,
                "Accept-Ranges": "bytes",
                "Content-Type": content_type(f.entry.name, head),
                "Content-Disposition": d.content_disposition(f.entry.name),
            }
        )
        if d.etag_matches(request.headers.get("if-none-match"), etag):
            transfer.complete = True
            return 304, None
        wanted = None
        if d.if_range_matches(request.headers.get("if-range"), etag):
            try:
                wanted = d.parse_range(request.headers.get("range"), f.size)
            except FileRestoreError:
                headers["Content-Range"] = f"bytes */{f.size}"
                raise
        if wanted is None:
            headers["Content-Length"] = str(f.size)
            transfer.sha256 = hashlib.sha256()
            return 200, f.read_range()
        headers["Content-Range"] = wanted.content_range(f.size)
        headers["Content-Length"] = str(wanted.length)
        transfer.detail = f"range {wanted.start}-{wanted.end - 1}"
        return 206, f.read_range(wanted.start, wanted.end)

    try:
        status, chunks = await run_in_threadpool(prepare)
    except RangeNotSatisfiableError as exc:
        transfer.refuse(exc)
        await transfer.release()
        response = error_response(exc)
        response.headers["Content-Range"] = headers["Content-Range"]
        return response
    except BaseException as exc:
        transfer.refuse(exc)
        await transfer.release()
        raise
    if chunks is None:
        await transfer.release()
        return Response(status_code=status, headers=_not_modified(headers))
    media = headers.pop("Content-Type")
    return d.HeldStreamingResponse(
        _body(transfer, chunks), transfer.release, status, headers, media_type=media
    )


def _not_modified(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k in ("ETag", "Cache-Control")}


@router.get("/{mount_id}/download-directory", responses=ARCHIVE_RESPONSES, response_class=Response)
async def download_directory(
    mount_id: str,
    request: Request,
    who: Caller,
    path: PathsParam,
    format: ArchiveFormat = ArchiveFormat.ZIP,
) -> Response:
    st = app_state(request)
    guests = request_paths(request)
    session = await run_in_threadpool(st.backend.opened, mount_id, who)
    transfer = _Download(st, session, who, "archive")
    transfer.path = ", ".join(display(g) for g in guests)[:4000]
    transfer.detail = f"format {format.value}"

    def prepare() -> Iterator[bytes]:
        stack = transfer.open()
        return d.coalesced(archive_stream(stack.fs, guests, format))

    try:
        chunks = await run_in_threadpool(prepare)
    except BaseException as exc:
        transfer.refuse(exc)
        await transfer.release()
        raise
    headers = {
        **SECURITY_HEADERS,
        "Content-Disposition": d.content_disposition(archive_filename(guests, format)),
    }
    return d.HeldStreamingResponse(
        _body(transfer, chunks), transfer.release, 200, headers, media_type=format.media_type
    )

"""Download routes: one file (ranges, ETag) and archives of one or several paths.

A download checks out a reader stack and a download hold before answering; both are given
back once every byte has been read, before the last chunk is sent (a client holding the
whole body may unmount at once), or when the response ends another way (failed, or the
client went away): see :class:`~filerestore.api.downloads.HeldStreamingResponse`.
Everything a client can get wrong raises before the first byte, so it still gets an error
status; a failure after the first byte cuts the connection without the final chunk, so a
truncated body never looks complete.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from filerestore import catalog
from filerestore.api import downloads as d
from filerestore.api.auth import Caller
from filerestore.api.content_types import SNIFF_BYTES, content_type
from filerestore.api.errors import error_response
from filerestore.api.paths import display, request_path, request_paths
from filerestore.api.routes_restore import ERRORS, PathParam, PathsParam
from filerestore.api.state import AppState, app_state
from filerestore.errors import DownloadTooLargeError, FileRestoreError, RangeNotSatisfiableError
from filerestore.restore.archive import (
    ArchiveFormat,
    ArchiveOptions,
    archive_filename,
    archive_stream,
)
from filerestore.restore.file_data import open_file
from filerestore.service.checkout import Checkout, Download
from filerestore.service.principal import Principal

router = APIRouter(prefix="/restore", tags=["download"])
log = logging.getLogger("filerestore.api")

DOWNLOAD_ERRORS = {**ERRORS, 413: ERRORS[400], 416: ERRORS[400]}
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


async def _check_out(st: AppState, mount_id: str, who: Principal, download: Download) -> Checkout:
    checkout = await run_in_threadpool(st.sessions.checkout, mount_id, who, download)
    st.metrics.downloads.inc()
    return checkout


def _releaser(st: AppState, checkout: Checkout, prefetch: d.Prefetch | None = None) -> d.Release:
    """What gives the download back, once: before its last bytes go out (see :func:`_streamed`),
    or when its response ends another way."""
    done = False

    async def release() -> None:
        nonlocal done
        if done:
            return
        done = True
        if prefetch is not None:
            await prefetch.stop()  # no reader thread left before the stack goes back
        await run_in_threadpool(checkout.release)
        st.metrics.downloads.dec()
        kind = checkout.download.kind if checkout.download else "download"
        tally = checkout.tally
        st.metrics.bytes_sent.labels(kind=kind).inc(tally.sent)
        if prefetch is not None and not (tally.complete or tally.broken_off):
            # the client went away (or the server is stopping): expected, one line
            path = checkout.download.path if checkout.download else "?"
            log.warning(
                "%s of %s ended after %d bytes: the connection closed", kind, path, tally.sent
            )

    return release


def _streamed(
    st: AppState,
    checkout: Checkout,
    chunks: Iterator[bytes],
    status: int,
    headers: dict[str, str],
    media_type: str,
) -> d.HeldStreamingResponse:
    prefetch = d.Prefetch(checkout.counted(chunks))
    release = _releaser(st, checkout, prefetch)

    async def body() -> AsyncIterator[bytes]:
        # one chunk behind the reader: the last one is known before it is sent, and the
        # download is given back (hold ended, audit event written) before it goes out, so a
        # client holding every byte finds the session free: an unmount right after a
        # download is never refused as "download in progress"
        last: bytes | None = None
        failure: FileRestoreError | None = None
        try:
            async for chunk in prefetch:
                if last is not None:
                    yield last
                last = chunk
        except FileRestoreError as exc:
            # handled (the audit event says "incomplete" with the reason): one warning line,
            # then the connection is closed without the final chunk
            failure = exc
            kind = checkout.download.kind if checkout.download else "download"
            path = checkout.download.path if checkout.download else "?"
            sent = checkout.tally.sent
            log.warning(
                "%s of %s cut short after %d bytes: %s: %s", kind, path, sent, exc.code, exc
            )
            checkout.failed(exc)
        else:
            await release()
        if last is not None:  # read before a failure, it still goes out
            yield last
        if failure is not None:
            raise d.StreamCut(failure.code) from None

    return d.HeldStreamingResponse(body(), release, status, headers, media_type=media_type)


@router.get("/{mount_id}/download", responses=FILE_RESPONSES, response_class=Response)
async def download(mount_id: str, request: Request, who: Caller, path: PathParam) -> Response:
    st = app_state(request)
    guest = request_path(request, default=None)
    checkout = await _check_out(st, mount_id, who, Download("download", guest))
    session = checkout.session
    headers = dict(SECURITY_HEADERS)

    def prepare() -> tuple[int, Iterator[bytes] | None]:
        f = open_file(checkout.stack.fs, guest)
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
            return 304, None
        wanted = None
        if d.if_range_matches(request.headers.get("if-range"), etag):
            try:
                wanted = d.parse_range(request.headers.get("range"), f.size)
            except FileRestoreError:
                headers["Content-Range"] = f"bytes */{f.size}"
                raise
        ceiling = st.settings.max_download_bytes
        if (f.size if wanted is None else wanted.length) > ceiling:
            shown = "the file" if wanted is None else "the range asked for"
            raise DownloadTooLargeError(
                f"{shown} is {f.size if wanted is None else wanted.length} bytes, more than "
                f"the {ceiling} bytes one download may carry (max_download_bytes)"
            )
        if wanted is None:
            headers["Content-Length"] = str(f.size)
            checkout.digest()
            return 200, f.read_range()
        headers["Content-Range"] = wanted.content_range(f.size)
        headers["Content-Length"] = str(wanted.length)
        checkout.note(f"range {wanted.start}-{wanted.end - 1}")
        return 206, f.read_range(wanted.start, wanted.end)

    try:
        status, chunks = await run_in_threadpool(prepare)
    except RangeNotSatisfiableError as exc:
        checkout.refuse(exc)
        await _releaser(st, checkout)()
        response = error_response(exc)
        response.headers["Content-Range"] = headers["Content-Range"]
        return response
    except BaseException as exc:
        checkout.refuse(exc)
        await _releaser(st, checkout)()
        raise
    if chunks is None:
        checkout.tally.complete = True  # the client's copy is current: nothing to send
        await _releaser(st, checkout)()
        return Response(status_code=status, headers=_not_modified(headers))
    media = headers.pop("Content-Type")
    return _streamed(st, checkout, chunks, status, headers, media)


def _backup_context(st: AppState, backup_id: int) -> tuple[str | None, ...]:
    """What names the backup in an archive's file name: VM, disk and the backup's date."""
    try:
        b = catalog.get_backup(st.db, backup_id)
    except FileRestoreError:  # removed from the catalog while its session is open
        return (f"backup-{backup_id}",)
    return (b.vm_name, b.disk_name, b.created_at.strftime("%Y-%m-%d"))


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
    shown = ", ".join(display(g) for g in guests)[:4000]
    download = Download("archive", shown, detail=f"format {format.value}")
    checkout = await _check_out(st, mount_id, who, download)

    def prepare() -> Iterator[bytes]:
        options = ArchiveOptions(
            max_entries=st.settings.max_archive_entries,
            max_bytes=st.settings.max_download_bytes,
        )
        return d.coalesced(archive_stream(checkout.stack.fs, guests, format, options))

    try:
        chunks = await run_in_threadpool(prepare)
    except BaseException as exc:
        checkout.refuse(exc)
        await _releaser(st, checkout)()
        raise
    context = await run_in_threadpool(_backup_context, st, checkout.session.backup_id)
    headers = {
        **SECURITY_HEADERS,
        "Content-Disposition": d.content_disposition(archive_filename(guests, format, context)),
    }
    return _streamed(st, checkout, chunks, 200, headers, format.media_type)

"""The API's one JSON error shape and its one exception handler.

Every error leaves as ``{"error": {"code": ..., "message": ...}}`` (plus ``choices`` for an
ambiguous volume). The status is the error class's own ``http_status``, inherited from its
category (see :mod:`filerestore.errors`). Request validation (FastAPI's) is a 400 with code
``invalid_parameter``. Anything else is a 500 with code ``internal``: a 500 is a bug, logged
with its traceback, never shown to the client. A ``MemoryError`` (the worker's memory limit
reached) is a 503 ``out_of_memory``, not a bug.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from filerestore import errors as e
from filerestore.api.auth import refused_anonymously
from filerestore.api.downloads import StreamCut
from filerestore.service import audit

log = logging.getLogger("filerestore.api")


def status_of(exc: e.FileRestoreError) -> int:
    return exc.http_status


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(exc: e.FileRestoreError, message: str | None = None) -> JSONResponse:
    extra: dict[str, Any] = {}
    if isinstance(exc, e.AmbiguousVolumeError):
        extra["choices"] = exc.choices
    status = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int):
        headers["Retry-After"] = str(retry_after)
    message = _printable(message if message is not None else str(exc) or type(exc).__name__)
    if isinstance(exc, e.AmbiguousVolumeError):
        message += ' (the "volume" field)'
    return JSONResponse(error_body(exc.code, message, **extra), status, headers=headers or None)


def _printable(text: str) -> str:
    # guest names may carry surrogate escapes: keep the message encodable as UTF-8
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.FileRestoreError)
    if isinstance(exc, e.RequestRefusedError | e.HostileImageError | e.PermissionDeniedError):
        await _audit_refusal(request, exc)
    state = getattr(request.app.state, "filerestore", None)
    who = getattr(request.state, "principal", None)
    if state is None or (who is not None and who.admin):
        return error_response(exc)
    # a non-admin is told no host path (see filerestore.api.redact)
    message = await run_in_threadpool(state.redact, str(exc) or type(exc).__name__)
    return error_response(exc, message)


async def _audit_refusal(request: Request, exc: e.FileRestoreError) -> None:
    """A security refusal is an audit event (auth failures are recorded where they happen);
    one without an authenticated caller is only counted and logged at a bounded rate."""
    state = getattr(request.app.state, "filerestore", None)
    if state is None:
        return
    who = getattr(request.state, "principal", None)
    if who is None:
        refused_anonymously(state, request, f"{exc.code}: {exc}")
        return
    mount_id = request.path_params.get("mount_id")
    event = audit.Event(
        who.actor,
        "refusal",
        "refused",
        mount_id=mount_id if isinstance(mount_id, str) and len(mount_id) <= 36 else None,
        path=request.url.path,
        detail=f"{exc.code}: {_printable(str(exc))}",
    )
    await run_in_threadpool(state.sessions.audit.record, event)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for item in exc.errors():
        where = ".".join(str(p) for p in item.get("loc", ()))
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    message = _printable("; ".join(parts) or "invalid request")
    return JSONResponse(error_body("invalid_parameter", message), 400)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}
    code = codes.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(code, str(exc.detail)), exc.status_code, headers=getattr(exc, "headers", None)
    )


async def _on_memory_error(request: Request, exc: Exception) -> JSONResponse:
    # the worker's address-space limit was reached: the request failed, the worker goes on
    # (its memory is freed with the request), and the client may try again
    log.warning("out of memory serving %s %s", request.method, request.url.path)
    body = error_body("out_of_memory", "the server ran out of memory for this request")
    return JSONResponse(body, 503, headers={"Retry-After": "30"})


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, StreamCut):  # a download broken off on purpose, logged already
        return JSONResponse(error_body("internal", "the response was cut short"), 500)
    log.exception("unexpected error serving %s %s", request.method, request.url.path)
    return JSONResponse(error_body("internal", "internal error (logged)"), 500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(e.FileRestoreError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(MemoryError, _on_memory_error)
    app.add_exception_handler(Exception, _on_unexpected)

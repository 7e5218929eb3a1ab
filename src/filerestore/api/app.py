"""The FastAPI application: routers under /api/v1, health, metrics, one error handler.

``create_app`` is the factory uvicorn's workers call (``factory=True``): each worker
process builds its own application from the settings (environment and config file), with
its own database pool, reader stacks, metrics and cleanup thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import filerestore
from filerestore.api import (
    errors,
    routes_catalog,
    routes_download,
    routes_index,
    routes_jobs,
    routes_restore,
)
from filerestore.api import schemas as s
from filerestore.api.auth import Caller
from filerestore.api.docs_ui import OPENAPI_URL, mount_docs
from filerestore.api.downloads import quiet_stream_cuts
from filerestore.api.metrics import CONTENT_TYPE_LATEST, Metrics
from filerestore.api.redact import Redactor
from filerestore.api.state import AppState, app_state
from filerestore.db import open_database
from filerestore.index.runner import IndexRunner
from filerestore.service.cleanup import CleanupService
from filerestore.service.index_slots import SessionSlots
from filerestore.service.job_runner import JobRunner
from filerestore.service.refusals import RefusalLog
from filerestore.service.sessions import SessionManager
from filerestore.settings import Settings, load_settings
from filerestore.web import mount_web

PREFIX = "/api/v1"
access_log = logging.getLogger("filerestore.access")

meta = APIRouter(tags=["service"])


@meta.get("/health", response_model=s.HealthOut)
async def health(request: Request) -> s.HealthOut:
    """Unauthenticated liveness: the worker answers and reaches its database."""
    st = app_state(request)
    try:
        await run_in_threadpool(st.sessions.live_count)
        ok = True
    except Exception:
        ok = False
    return s.HealthOut(
        status="ok" if ok else "degraded", database=ok, version=filerestore.__version__
    )


@meta.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request, who: Caller) -> Response:
    return Response(app_state(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)


class AccessLog:
    """Pure ASGI middleware (BaseHTTPMiddleware would buffer streams): a log line (with
    method, route, status and seconds as fields: see filerestore.logs) and metrics per
    request, timed to the response head."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                route = getattr(scope.get("route"), "path", "unmatched")
                self.metrics.latency.labels(route=route).observe(time.perf_counter() - start)
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route=route, method=scope["method"], status=status).inc()
            seconds = round(time.perf_counter() - start, 6)
            fields = {"method": scope["method"], "route": route, "status": status}
            access_log.info(
                "%s %s %s %.3fs",
                scope["method"],
                route,
                status,
                seconds,
                extra={"fields": fields | {"seconds": seconds}},
            )


def create_app(settings: Settings | None = None, *, cleanup: bool = True) -> FastAPI:
    settings = settings or load_settings()
    db = open_database(settings)
    manager = SessionManager(db, settings)
    refusals = RefusalLog(
        settings.refusal_log_rate, settings.refusal_log_burst, settings.audit_text_limit
    )
    redact = Redactor(db, settings.state_dir)
    state = AppState(
        settings,
        db,
        manager,
        Metrics(),
        CleanupService(manager),
        JobRunner(manager),
        refusals,
        redact,
    )
    # index jobs open their backups in this worker's session slots (service.index_slots)
    slots = SessionSlots(manager)
    runners = [IndexRunner(db, settings, opener=slots) for _ in range(settings.index_runners)]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if cleanup:
            state.cleanup.start()
            if settings.restore_job_runner:
                state.jobs.start()
        for runner in runners:
            runner.start()
        try:
            yield
        finally:
            for runner in runners:
                runner.stopping.set()
            for runner in runners:
                runner.stop()
            state.jobs.stop()
            state.cleanup.stop()
            manager.readers.close_all()
            manager.stores.close()
            db.dispose()
            state.metrics.stopped()

    app = FastAPI(
        title="filerestore",
        version=filerestore.__version__,
        description="File-level restore from QCOW2 VM disk backups.",
        lifespan=lifespan,
        docs_url=None,  # served from the package's own files: see docs_ui
        redoc_url=None,
        openapi_url=OPENAPI_URL,
    )
    app.state.filerestore = state
    errors.install(app)
    quiet_stream_cuts()  # a download cut short is logged once, by the route, as a warning
    app.include_router(meta)
    app.include_router(routes_jobs.router, prefix=PREFIX)
    mount_docs(app)
    app.include_router(routes_restore.router, prefix=PREFIX)
    app.include_router(routes_download.router, prefix=PREFIX)
    app.include_router(routes_catalog.router, prefix=PREFIX)
    app.include_router(routes_index.router, prefix=PREFIX)
    mount_web(app)  # the web page at "/", a client of the routes above
    app.add_middleware(AccessLog, metrics=state.metrics)
    return app

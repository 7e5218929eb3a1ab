"""The web file browser: static files (plain HTML, CSS and ES modules) served at ``/``.

The page is a client of the public REST API only (``/api/v1``, Bearer token); this module
just ships its files and mounts them on the API's application. There is no build step: what
is in ``static/`` is what the browser loads.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

STATIC_DIR: Path = Path(__file__).resolve().parent / "static"
INDEX_HTML: Path = STATIC_DIR / "index.html"
SERVICE_WORKER: Path = STATIC_DIR / "sw.js"

# The token lives in the tab's session storage, so script injection is what to shut out:
# only the page's own modules run, nothing is framed, and the API is the only connection.
# (Guest file names reach the DOM as text nodes, never as markup.)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
# The page's modules change with the package version; a revalidation each load keeps an
# upgraded server from running a stale mix of old and new modules.
_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _index() -> FileResponse:
    return FileResponse(INDEX_HTML, media_type="text/html", headers=_HEADERS)


def _service_worker() -> FileResponse:
    # served at the root so that its scope covers the API's download URLs
    return FileResponse(SERVICE_WORKER, media_type="text/javascript", headers=_HEADERS)


def mount_web(app: FastAPI) -> None:
    """Serve the page: ``/`` (and ``/index.html``) give the page, ``/static/*`` its files,
    ``/sw.js`` its service worker (streamed downloads).

    Call it after the API routes are added; the API keeps ``/api``, ``/docs`` and the rest.
    """
    app.add_api_route("/", _index, methods=["GET"], include_in_schema=False)
    app.add_api_route("/index.html", _index, methods=["GET"], include_in_schema=False)
    app.add_api_route("/sw.js", _service_worker, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="web-static")


__all__ = ["CONTENT_SECURITY_POLICY", "INDEX_HTML", "STATIC_DIR", "mount_web"]

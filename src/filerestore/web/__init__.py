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

# The page's modules change with the package version; a revalidation each load keeps an
# upgraded server from running a stale mix of old and new modules.
_NO_STALE = {"Cache-Control": "no-cache"}


def _index() -> FileResponse:
    return FileResponse(INDEX_HTML, media_type="text/html", headers=_NO_STALE)


def mount_web(app: FastAPI) -> None:
    """Serve the page: ``/`` (and ``/index.html``) give the page, ``/static/*`` its files.

    Call it after the API routes are added; the API keeps ``/api``, ``/docs`` and the rest.
    """
    app.add_api_route("/", _index, methods=["GET"], include_in_schema=False)
    app.add_api_route("/index.html", _index, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="web-static")


__all__ = ["INDEX_HTML", "STATIC_DIR", "mount_web"]

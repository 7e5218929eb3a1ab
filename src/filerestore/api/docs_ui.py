"""The API documentation page at ``/docs``: Swagger UI from files installed with the package.

FastAPI's default page loads Swagger UI from a CDN, which leaves it blank on a host without
internet (issue 14). The Swagger UI distribution comes from the ``swagger-ui-bundle-v2``
package (spec-first's packaging of the upstream ``swagger-ui-dist`` files, Apache-2.0) and
is served at ``/docs/assets``; the page itself is FastAPI's, pointed at those files.
ReDoc (``/redoc``) is not offered: it too would come from a CDN.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
OPENAPI_URL = "/openapi.json"

# Swagger UI's page is one inline script that starts the bundle: the policy allows that and
# the assets' origin only, so the page works with no network and reaches nothing else.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def mount_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and its assets. Build the app with ``docs_url=None, redoc_url=None``."""

    async def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
            oauth2_redirect_url=None,
        )
        page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        page.headers["X-Content-Type-Options"] = "nosniff"
        return page

    app.add_api_route(DOCS_URL, docs, methods=["GET"], include_in_schema=False)
    app.mount(ASSETS_URL, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

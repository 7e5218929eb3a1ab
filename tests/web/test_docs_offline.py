"""/docs in Chromium with every connection outside the server cut (issue 14, item 7): Swagger
UI comes from the package's own files and draws every operation of the server's schema."""

from __future__ import annotations

import httpx

from tests.api.conftest import Env
from tests.web.conftest import shot

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def test_api_docs_work_without_internet(page, api: Env) -> None:
    outside: list[str] = []
    failed: list[str] = []

    def only_the_server(route) -> None:  # the network cut: nothing leaves for another host
        if route.request.url.startswith(api.url + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort("internetdisconnected")

    page.context.route("**/*", only_the_server)
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.on("requestfailed", lambda r: failed.append(r.url))

    schema = httpx.get(api.url + "/openapi.json").json()
    expected = sorted(
        (method.upper(), path)
        for path, ops in schema["paths"].items()
        for method in ops
        if method in METHODS
    )
    assert len(expected) > 10  # a positive control: the schema has the API's routes

    page.goto(api.url + "/docs")
    page.wait_for_selector(".opblock .opblock-summary-path")
    shown = sorted(
        page.eval_on_selector_all(
            ".opblock",
            """els => els.map(e => [
                e.querySelector('.opblock-summary-method').textContent.trim(),
                e.querySelector('.opblock-summary-path').dataset.path,
            ])""",
        )
    )
    shot(page, "api-docs-offline")
    assert [tuple(op) for op in shown] == expected
    assert page.title().startswith("filerestore")
    assert outside == [], outside
    assert failed == [], failed


def test_no_cdn_pages_are_offered(api: Env) -> None:
    page = httpx.get(api.url + "/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    assert httpx.get(api.url + "/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert httpx.get(api.url + "/redoc").status_code == 404  # FastAPI's ReDoc page is a CDN's

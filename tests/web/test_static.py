"""The page's files: shipped in the package, served by ``mount_web``, every module present."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from filerestore.web import CONTENT_SECURITY_POLICY, STATIC_DIR, mount_web

IMPORT = re.compile(r"""^\s*import\s.*?from\s+["']\./([\w.-]+)["'];""", re.M | re.S)


def _client() -> TestClient:
    app = FastAPI()
    mount_web(app)
    return TestClient(app)


def test_index_is_served_with_a_strict_policy():
    with _client() as c:
        r = c.get("/")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
        assert '<script type="module" src="/static/app.js">' in r.text


def test_every_module_import_resolves_and_is_served_as_javascript():
    modules = sorted(STATIC_DIR.glob("*.js"))
    assert modules
    seen = set()
    with _client() as c:
        for module in modules:
            for target in IMPORT.findall(module.read_text()):
                assert (STATIC_DIR / target).is_file(), f"{module.name} imports missing {target}"
                seen.add(target)
            r = c.get(f"/static/{module.name}")
            assert r.status_code == 200
            assert r.headers["content-type"].split(";")[0] in (
                "text/javascript",
                "application/javascript",
            )
        assert c.get("/static/style.css").headers["content-type"].startswith("text/css")
        assert c.get("/static/../__init__.py").status_code == 404
    # every module but the entry points (the page's, the service worker's) is imported by
    # another one: none is dead weight
    assert {m.name for m in modules} - seen == {"app.js", "sw.js"}
    with _client() as c:
        r = c.get("/sw.js")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/javascript")

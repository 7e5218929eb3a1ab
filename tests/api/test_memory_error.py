"""A MemoryError (a worker at its address-space limit) answers 503 with the JSON error shape,
never a 500: the request failed for want of memory, not because of a bug."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from filerestore.api.errors import install


def test_memory_error_is_503_out_of_memory() -> None:
    app = FastAPI()
    install(app)

    @app.get("/boom")
    def boom() -> None:
        raise MemoryError

    @app.get("/bug")
    def bug() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/boom")
        assert r.status_code == 503
        assert r.json() == {
            "error": {
                "code": "out_of_memory",
                "message": "the server ran out of memory for this request",
            }
        }
        assert r.headers["retry-after"] == "30"
        assert client.get("/bug").status_code == 500  # anything else stays a logged 500

"""Authentication and ownership on every route, found by walking the OpenAPI schema (a new
route cannot be forgotten): no token, a malformed, unknown or revoked token -> 401; another
token's session -> 404 exactly like an unknown id; an admin token sees every session."""

from __future__ import annotations

import re
import subprocess

import httpx
import pytest

from tests.api.conftest import API, Env
from tests.api.server import CLI

PUBLIC = {("get", "/health"), ("get", "/openapi.json"), ("get", "/docs")}


def routes(api: Env) -> list[tuple[str, str]]:
    schema = httpx.get(api.url + "/openapi.json").json()
    found = [(m, p) for p, ops in schema["paths"].items() for m in ops]
    assert len(found) >= 14, found
    return found


def fill(path: str, mount_id: str, backup_id: int) -> str:
    path = path.replace("{mount_id}", mount_id).replace("{backup_id}", str(backup_id))
    path = path.replace("{old_id}", str(backup_id)).replace("{new_id}", str(backup_id))
    # a job nobody made (index jobs have numbers, restore jobs UUIDs): without a valid token
    # the answer must be 401 before any lookup
    job = "1" if "/index/" in path else "00000000-0000-4000-8000-000000000000"
    path = path.replace("{job_id}", job)
    assert not re.search(r"\{\w+\}", path), f"a path parameter this test does not know: {path}"
    return path


def call(c: httpx.Client, method: str, path: str, backup_id: int) -> httpx.Response:
    listing = path.endswith(("/files", "/download-directory"))
    params = {"path": "/docs/sub" if listing else "/hello.txt"}
    body = None
    if method == "post":
        body = (
            {"backup_id": backup_id}
            if path.endswith("/mount")
            else {
                "repository": "main",
                "path": "srv1/disk0.qcow2",
            }
        )
    return c.request(method.upper(), path, params=params, json=body)


def test_every_route_needs_a_token(api: Env) -> None:
    mount_id = api.mount("bob")
    bad = {
        "none": {},
        "wrong scheme": {"Authorization": f"Basic {api.tokens['bob']}"},
        "malformed": {"Authorization": "Bearer nonsense"},
        "unknown": {"Authorization": "Bearer fr_9999_" + "A" * 43},
        "wrong secret": {"Authorization": api.tokens["bob"][:-4].join(["Bearer ", "AAAA"])},
    }
    checked = 0
    for method, path in routes(api):
        if (method, path) in PUBLIC:
            continue
        url = fill(path, mount_id, api.backups["ext4"])
        for label, headers in bad.items():
            with httpx.Client(base_url=api.url, headers=headers) as c:
                r = call(c, method, url, api.backups["ext4"])
            assert r.status_code == 401, (label, method, path, r.text)
            assert r.json()["error"]["code"] == "unauthenticated"
            assert r.headers["www-authenticate"] == "Bearer"
            checked += 1
    assert checked >= 13 * len(bad)
    with api.client("bob") as c:  # the session is untouched by all that
        assert c.get(f"{API}/restore/{mount_id}/files").status_code == 200


def test_other_tokens_sessions_are_not_found(api: Env) -> None:
    alice = api.mount("alice")
    session_routes = [(m, p) for m, p in routes(api) if "{mount_id}" in p]
    assert len(session_routes) >= 5
    with api.client("bob") as bob, api.client("admin") as admin:
        assert alice not in [
            m["mount_id"] for m in bob.get(f"{API}/restore/mounts").json()["mounts"]
        ]
        assert alice in [m["mount_id"] for m in admin.get(f"{API}/restore/mounts").json()["mounts"]]
        for method, path in session_routes:
            if method == "delete":
                continue  # checked last, so the session survives the loop
            url = fill(path, alice, 0)
            r = call(bob, method, url, 0)
            unknown = call(bob, method, fill(path, "0" * 8 + "-0000-0000-0000-" + "0" * 12, 0), 0)
            assert r.status_code == unknown.status_code == 404, (path, r.text)
            assert r.json()["error"]["code"] == unknown.json()["error"]["code"] == "mount_not_found"
            assert call(admin, method, url, 0).status_code == 200, path
        assert bob.delete(f"{API}/restore/{alice}").status_code == 404
    with api.client("alice") as c:
        assert c.get(f"{API}/restore/{alice}/files").status_code == 200


def test_revoked_token_is_refused(api: Env, tmp_path) -> None:
    env = dict(api.server.env)
    out = subprocess.run(
        [str(CLI), "token", "create", "short-lived"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    token = out.stdout.strip()
    assert token.startswith("fr_")
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(api.url + f"{API}/restore/mounts", headers=headers).status_code == 200
    listed = subprocess.run(
        [str(CLI), "token", "list"], env=env, capture_output=True, text=True, check=True
    )
    assert "short-lived" in listed.stdout and token not in listed.stdout
    subprocess.run([str(CLI), "token", "revoke", "short-lived"], env=env, check=True)
    r = httpx.get(api.url + f"{API}/restore/mounts", headers=headers)
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_tokens_are_stored_hashed(api: Env) -> None:
    import hashlib
    import sqlite3

    with sqlite3.connect(api.state_dir / "filerestore.db") as con:
        stored = {row[0]: row[1] for row in con.execute("SELECT name, token_hash FROM api_tokens")}
    for name, token in api.tokens.items():
        secret = token.split("_", 2)[2]
        assert len(secret) >= 40 and all(secret not in h for h in stored.values())
        assert stored[name] == hashlib.sha256(token.encode()).hexdigest()


@pytest.mark.parametrize("who", ["alice", "admin"])
def test_register_needs_admin(api: Env, who: str) -> None:
    with api.client(who) as c:
        r = c.post(f"{API}/backups", json={"repository": "main", "path": "srv1/disk0.qcow2"})
    assert r.status_code == (201 if who == "admin" else 403)

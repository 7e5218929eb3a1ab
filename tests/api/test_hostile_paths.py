"""The shared hostile path list against every route that takes a path: each is refused
with 400 or resolved inside the guest, and a canary file planted on the host is never
served."""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import API, Env
from tests.api.hostile_paths import HOSTILE_PATHS

BIG = 64 << 20
PEEK = 4 << 20


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    secret = b"CANARY-" + secrets.token_hex(16).encode()
    path = tmp_path_factory.mktemp("host") / "canary.txt"
    path.write_bytes(secret)
    return path, secret


@pytest.fixture(scope="module")
def guest_hashes(api: Env) -> set[str]:
    """sha256 of every regular file of the source tree (what a guest download may hold)."""
    out = set()
    for dirpath, _, files in os.walk(api.source.tree):
        for name in files:
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink() and p.stat().st_size < BIG:
                out.add(hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def _get(c: httpx.Client, route: str, raw: str, extra: bytes = b"") -> httpx.Response:
    """GET with the raw path; a body over PEEK bytes (an archive of the whole guest, with
    its 5 GiB sparse file) is cut off after PEEK bytes: ``content`` holds the start."""
    query = b"path=" + raw.encode("utf-8", "surrogateescape") + extra
    with c.stream("GET", httpx.URL(api_url(c, route), query=query)) as r:
        body = b""
        for chunk in r.iter_raw():
            body += chunk
            if len(body) > PEEK:
                break
        r._content = body
    return r


def truncated(r: httpx.Response) -> bool:
    return len(r.content) > PEEK


def api_url(c: httpx.Client, route: str) -> str:
    return str(c.base_url).rstrip("/") + route


def _inside(tree: Path, guest: str) -> bool:
    if guest == "/lost+found":  # made by mke2fs, not in the source tree
        return True
    parts = [p for p in guest.split("/") if p]
    # a path the server reports is canonical: no "..", and it names an entry of the tree
    return ".." not in parts and "." not in parts and os.path.lexists(tree.joinpath(*parts))


@pytest.mark.parametrize("raw", HOSTILE_PATHS, ids=range(len(HOSTILE_PATHS)))
def test_hostile_path(
    api: Env, ext4_mount: str, canary: tuple[Path, bytes], guest_hashes: set[str], raw: str
) -> None:
    host_file, secret = canary
    raw = raw.replace("{canary}", str(host_file))
    passwd = Path("/etc/passwd").read_bytes()
    base = f"{API}/restore/{ext4_mount}"
    with api.client() as c:
        answers = {
            "files": _get(c, f"{base}/files", raw),
            "file-info": _get(c, f"{base}/file-info", raw),
            "download": _get(c, f"{base}/download", raw),
            "archive": _get(c, f"{base}/download-directory", raw, b"&format=zip"),
            "totals": _get(c, f"{base}/totals", raw),
        }
    for route, r in answers.items():
        assert r.status_code in (200, 400, 404), (route, r.status_code, r.text[:300])
        assert secret not in r.content, route
        if r.status_code != 200:
            assert set(r.json()) == {"error"}, (route, r.text)
            continue
        assert r.content != passwd, route
        if route == "files":
            for entry in r.json()["entries"]:
                assert _inside(api.source.tree, entry["path"]), entry
        elif route == "file-info":
            assert _inside(api.source.tree, r.json()["path"]), r.json()
        elif route == "totals":
            assert all(_inside(api.source.tree, p) for p in r.json()["paths"]), r.json()
        elif route == "download":
            assert hashlib.sha256(r.content).hexdigest() in guest_hashes
        elif not truncated(r):
            with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
                for info in zf.infolist():
                    if not info.is_dir() and (info.external_attr >> 28) != 0o12:
                        digest = hashlib.sha256(zf.read(info)).hexdigest()
                        assert digest in guest_hashes, info.filename


def test_refusals_are_specific(api: Env, ext4_mount: str) -> None:
    base = f"{API}/restore/{ext4_mount}/file-info"
    with api.client() as c:
        for raw in ("%00", "%c0%ae%c0%ae/etc", "A" * 5000):
            r = _get(c, base, raw)
            assert r.status_code == 400 and r.json()["error"]["code"] == "path_refused", raw
        loop = _get(c, f"{API}/restore/{ext4_mount}/download", "/loop-a")
        assert loop.status_code == 400 and loop.json()["error"]["code"] == "symlink_loop"

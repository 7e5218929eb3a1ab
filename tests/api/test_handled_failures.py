"""Issue 8, defect 10: failures a download handles (its image truncated while it streams, a
client that goes away) are one warning line in the server's log, never "unexpected error"
with a traceback (before: the truncated image logged three tracebacks, from our handler,
from Starlette and from uvicorn).

A real server (one worker, so the session's opened stack is the one every request uses)
over a raw copy of the restore tests' ext4 image; where ``/docs/data.bin`` lies in it comes
from debugfs, and the copy is cut at the file's second MiB once the session has it open, so
the download's first chunk is read and sent and its second read fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from filerestore import catalog
from filerestore.db.engine import Database
from filerestore.db.migrate import ensure_schema
from filerestore.service.tokens import create_token
from filerestore.settings import load_settings
from tests.api.served import OneUserSite
from tests.api.server import Server
from tests.imagebuild.restore_tree import restore_image

API = "/api/v1"
FILE = "/docs/data.bin"
CHUNK = 1 << 20  # the download's read size (restore.file_data.CHUNK_SIZE)


@dataclass
class Site(OneUserSite):
    log: Path
    image: Path
    backup_id: int

    def new_log(self, since: int, want: int, timeout: float = 30) -> list[str]:
        """What the server logged above INFO after offset ``since`` (messages, and any line
        that is not one of the service's JSON records, such as a bare traceback), once
        ``want`` of them are there (or the timeout passed; the caller checks what came)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self._loud(since)
            if len(found) >= want or time.monotonic() > deadline:
                time.sleep(1)  # and anything logged right after them
                return self._loud(since)
            time.sleep(0.1)

    def _records(self, since: int) -> list[dict[str, object] | str]:
        text = self.log.read_bytes()[since:].decode(errors="replace")
        out: list[dict[str, object] | str] = []
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            out.append(record if isinstance(record, dict) else line)
        return out

    def _loud(self, since: int) -> list[str]:
        out = []
        for record in self._records(since):
            if isinstance(record, str):
                if record:
                    out.append(record)
            elif record.get("level") != "info":
                extra = " [exception]" if "exception" in record else ""
                out.append(f"{record.get('message')}{extra}")
        return out

    def audit(self, since: int, path: str) -> list[dict[str, object]]:
        events = [r for r in self._records(since) if isinstance(r, dict) and "action" in r]
        return [e for e in events if e.get("path") == path]


def cut_offset(image: Path, path: str, at: int) -> int:
    """The byte of ``image`` holding byte ``at`` of file ``path``, from debugfs; the file's
    bytes before it must lie before it in the image (checked)."""
    stats = subprocess.run(
        ["debugfs", "-R", "stats", image], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"Block size:\s+(\d+)", stats)
    assert match is not None
    block = int(match.group(1))
    out = subprocess.run(
        ["debugfs", "-R", f"stat {path}", image], capture_output=True, text=True, check=True
    ).stdout
    first = re.search(r"\((\d+)-(\d+)\):(\d+)-(\d+)", out)
    assert first is not None, out
    lo, hi, phys = int(first.group(1)), int(first.group(2)), int(first.group(3))
    assert lo == 0 and hi >= at // block, "the file's first MiB is one extent"
    return (phys + at // block) * block


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("handled")
    repo = base / "repo"
    repo.mkdir()
    image = repo / "disk.img"  # a raw disk, named as one; a copy of its own, cut below
    subprocess.run(["cp", "--sparse=always", restore_image(), image], check=True)
    state = base / "state"
    state.mkdir()
    db = Database(load_settings(state_dir=state).effective_database_url)
    ensure_schema(db)
    catalog.add_repository(db, "main", repo)
    backup_id = catalog.register_backup(db, "main", "disk.img").id
    token = create_token(db, "user")[1]
    db.dispose()
    log = base / "server.log"
    with Server({"FILERESTORE_STATE_DIR": str(state)}, workers=1, log=log) as server:
        yield Site(server, token, log, image, backup_id)


def test_handled_download_failures_are_one_warning_line(site: Site) -> None:
    with site.client() as c:
        mount = c.post(f"{API}/restore/mount", json={"backup_id": site.backup_id})
        assert mount.status_code == 201, mount.text
        mount_id = mount.json()["mount_id"]
        url = f"{API}/restore/{mount_id}/download"
        assert c.get(f"{API}/restore/{mount_id}/file-info", params={"path": FILE}).is_success

        # a client that goes away after the first bytes of a 5 GiB file
        since = site.log.stat().st_size
        with c.stream("GET", url, params={"path": "/big-sparse.bin"}) as r:
            assert r.status_code == 200
            next(r.iter_raw(65536))
        gone = site.new_log(since, 1)
        assert len(gone) == 1, gone
        assert re.fullmatch(
            r"download of /big-sparse\.bin ended after \d+ bytes: the connection closed", gone[0]
        ), gone
        assert [e["outcome"] for e in site.audit(since, "/big-sparse.bin")] == ["incomplete"]

        # the image is cut at the file's second MiB under the open session (the download
        # reads ahead, so a cut made while it streams might come after its last read)
        since = site.log.stat().st_size
        size = int(
            c.get(f"{API}/restore/{mount_id}/file-info", params={"path": FILE}).json()["size"]
        )
        os.truncate(site.image, cut_offset(site.image, FILE, CHUNK))
        received = b""
        with c.stream("GET", url, params={"path": FILE}) as r:
            assert r.status_code == 200 and int(r.headers["content-length"]) == size
            with pytest.raises(httpx.RemoteProtocolError):  # cut, never a short "complete" body
                for part in r.iter_raw():
                    received += part
        assert len(received) == CHUNK
        cut = site.new_log(since, 1)
        assert len(cut) == 1, cut
        assert re.fullmatch(
            rf"download of {FILE} cut short after {CHUNK} bytes: corrupt_image: "
            r"disk\.img is shorter than it was when opened",
            cut[0],
        ), cut
        (event,) = site.audit(since, FILE)
        assert (event["outcome"], event["bytes"]) == ("incomplete", CHUNK)
        assert "corrupt_image" in str(event["detail"])
    whole = site.log.read_text(errors="replace")
    assert "Traceback" not in whole and "unexpected error" not in whole
    assert "Exception in ASGI application" not in whole

"""The 5 GiB sparse file: downloaded whole and hashed, read by ranges across its end, and
as a ZIP64 archive extracted by Python's zipfile; expected bytes from the host's source
tree file."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from tests.api.conftest import API, Env
from tests.api.server import streamed_archive

CHUNK = 8 << 20


@pytest.fixture(scope="module")
def big(api: Env) -> tuple[Path, int, str]:
    path = api.source.path("/big-sparse.bin")
    with path.open("rb") as fh:
        return path, path.stat().st_size, hashlib.file_digest(fh, "sha256").hexdigest()


def test_whole_download_is_byte_exact(api: Env, ext4_mount: str, big) -> None:
    _, size, digest = big
    assert size > 5 << 30
    h = hashlib.sha256()
    got = 0
    with (
        api.client() as c,
        c.stream(
            "GET", f"{API}/restore/{ext4_mount}/download", params={"path": "/big-sparse.bin"}
        ) as r,
    ):
        assert r.status_code == 200 and int(r.headers["content-length"]) == size
        for chunk in r.iter_raw(CHUNK):
            h.update(chunk)
            got += len(chunk)
    assert got == size and h.hexdigest() == digest


def test_ranges_across_the_end(api: Env, ext4_mount: str, big) -> None:
    path, size, _ = big
    url = f"{API}/restore/{ext4_mount}/download"
    with path.open("rb") as fh, api.client() as c:
        for start, end in (
            (0, 10),
            (size - 9000, size - 1),
            (5 << 30, size - 1),
            (4 << 30, (4 << 30) + 99),
        ):
            r = c.get(
                url, params={"path": "/big-sparse.bin"}, headers={"Range": f"bytes={start}-{end}"}
            )
            fh.seek(start)
            assert r.status_code == 206 and r.content == fh.read(end - start + 1)
            assert r.headers["content-range"] == f"bytes {start}-{end}/{size}"
        r = c.get(url, params={"path": "/big-sparse.bin"}, headers={"Range": f"bytes={size}-"})
        assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{size}"


def test_zip64_of_the_big_file(api: Env, ext4_mount: str, big, tmp_path: Path) -> None:
    _, size, digest = big
    out = tmp_path / "big.zip"
    zero = bytes(CHUNK)
    # written sparse (runs of zeros become holes), so the test needs no 5 GiB of disk
    with (
        out.open("wb") as fh,
        api.client() as c,
        streamed_archive(c, ext4_mount, "/big-sparse.bin", "zip") as r,
    ):
        for chunk in r.iter_raw(CHUNK):
            if chunk == zero[: len(chunk)]:
                fh.seek(len(chunk), os.SEEK_CUR)
            else:
                fh.write(chunk)
        fh.truncate()
    with zipfile.ZipFile(out) as zf:
        (info,) = zf.infolist()
        assert info.filename == "big-sparse.bin" and info.file_size == size
        h = hashlib.sha256()
        with zf.open(info) as member:  # zipfile checks the CRC at the end
            while block := member.read(CHUNK):
                h.update(block)
    assert h.hexdigest() == digest

"""Issue 8, defect 4 (restore side), against a real server: a download or an archive over
its limit is refused before its first byte with 413 and a JSON error, never cut short.

The server's limits: ``max_download_bytes`` 4 MiB, ``max_archive_entries`` 1,000. What is
over or under them comes from the source tree on the host (sizes, entry counts), never
from the server: the 5 GiB sparse file, the 10,000-entry directory ``/many``, ``/docs``.
"""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from collections.abc import Iterator

import httpx
import pytest

from tests.api.site import API, Site, running
from tests.imagebuild.restore_tree import Source, restore_image, restore_tree

CEILING = 4 << 20
MAX_ENTRIES = 1000


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    env = {
        "FILERESTORE_MAX_DOWNLOAD_BYTES": str(CEILING),
        "FILERESTORE_MAX_ARCHIVE_ENTRIES": str(MAX_ENTRIES),
    }
    with running(tmp_path_factory.mktemp("limits"), "limits", env) as site:
        yield site


@pytest.fixture(scope="module")
def source() -> Source:
    return Source(restore_tree(), restore_image())


def refused_before_the_first_byte(c: httpx.Client, url: str, **params: object) -> str:
    """The error code of a 413 answered as a whole JSON body (not a cut stream)."""
    r = c.get(url, params=params)  # type: ignore[arg-type]
    assert r.status_code == 413, r.text[:300]
    assert r.headers["content-type"].startswith("application/json")
    return str(r.json()["error"]["code"])


def test_a_file_over_the_ceiling_is_refused_a_range_under_it_served(
    site: Site, source: Source
) -> None:
    big = source.path("/big-sparse.bin")
    assert big.stat().st_size > CEILING
    mount = site.mount()
    url = f"{API}/restore/{mount}/download"
    with site.client() as c:
        code = refused_before_the_first_byte(c, url, path="/big-sparse.bin")
        assert code == "download_too_large"
        r = c.get(url, params={"path": "/big-sparse.bin"}, headers={"Range": "bytes=0-1048575"})
        assert r.status_code == 206
        with big.open("rb") as fh:
            assert r.content == fh.read(1 << 20)
        r = c.get(url, params={"path": "/big-sparse.bin"}, headers={"Range": f"bytes=0-{CEILING}"})
        assert r.status_code == 413  # one byte over
        small = source.path("/docs/readme.md")
        assert c.get(url, params={"path": "/docs/readme.md"}).content == small.read_bytes()


@pytest.mark.parametrize("fmt", ["zip", "tar", "tar.gz"])
def test_an_archive_over_a_limit_is_refused_before_its_first_byte(
    site: Site, source: Source, fmt: str
) -> None:
    entries = len(source.entries("/many")) + 1
    assert entries > MAX_ENTRIES
    files = [st for st in source.entries("/").values() if stat.S_ISREG(st.st_mode)]
    assert sum(st.st_size for st in files) > CEILING
    mount = site.mount()
    url = f"{API}/restore/{mount}/download-directory"
    with site.client() as c:
        assert refused_before_the_first_byte(c, url, path="/many", format=fmt) == (
            "archive_too_large"
        )
        assert refused_before_the_first_byte(c, url, path="/", format=fmt) == ("archive_too_large")
        # one entry, over the byte ceiling (its listed size counts, holes too)
        assert source.path("/sparse.bin").stat().st_size > CEILING
        r = c.get(url, params={"path": "/sparse.bin", "format": fmt})
        assert r.status_code == 413 and "bytes of file contents" in r.json()["error"]["message"]
        r = c.get(url, params={"path": "/docs", "format": fmt})
        assert r.status_code == 200
    names = set(source.entries("/docs"))
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(r.content)) as z:
            got = {n.rstrip("/") for n in z.namelist()}
    else:
        with tarfile.open(fileobj=io.BytesIO(r.content)) as t:
            got = set(t.getnames())
    assert got == {"docs"} | {f"docs/{n}" for n in names}

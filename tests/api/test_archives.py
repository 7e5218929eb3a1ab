"""The 10,000-file directory as ZIP and TAR.GZ, streamed over HTTP, extracted by Python's
zipfile and tarfile and compared with the source tree; the response starts before the
walk ends."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile

import pytest

from filerestore.restore.names import printable
from filerestore.restore.partial import ERRORS_FILE
from tests.api.conftest import API, Env
from tests.api.server import streamed_archive
from tests.imagebuild import broken_entries as broken


def source_many(api: Env) -> dict[str, bytes]:
    top = api.source.path("/many")
    return {f"many/{p.name}": p.read_bytes() for p in top.iterdir()}


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_ten_thousand_files(api: Env, ext4_mount: str, fmt: str) -> None:
    expected = source_many(api)
    assert len(expected) == 10_000
    with api.client() as c:
        r = c.get(
            f"{API}/restore/{ext4_mount}/download-directory",
            params={"path": "/many", "format": fmt},
        )
    assert r.status_code == 200
    assert "content-length" not in r.headers  # streamed (chunked), not built first
    got: dict[str, bytes] = {}
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
            assert zf.testzip() is None
            for info in zf.infolist():
                if not info.is_dir():
                    got[info.filename] = zf.read(info)
            assert zf.getinfo("many/").is_dir()
    else:
        with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tf:
            for member in tf:
                if member.isfile():
                    got[member.name] = tf.extractfile(member).read()  # type: ignore[union-attr]
                else:
                    assert member.isdir() and member.name == "many"
    assert got == expected


def test_archive_starts_before_the_walk_ends(api: Env, ext4_mount: str) -> None:
    """The whole guest (5 GiB sparse file included) as TAR: the first bytes arrive long
    before the archive could have been built, and closing early is fine."""
    with api.client() as c, streamed_archive(c, ext4_mount, "/", "tar") as r:
        first = next(r.iter_raw(512))
    assert len(first) > 0
    with api.client() as c:  # the session still answers
        assert c.get(f"{API}/restore/{ext4_mount}/files").status_code == 200


def test_totals_match_the_source_tree(api: Env, ext4_mount: str) -> None:
    roots = ["/docs", "/unicode", "/hello.txt"]
    files = dirs = symlinks = size = 0
    for root in roots:
        stats = [api.source.path(root).lstat(), *api.source.entries(root).values()]
        if not stat.S_ISDIR(stats[0].st_mode):
            stats = stats[:1]
        for st in stats:
            if stat.S_ISLNK(st.st_mode):
                symlinks += 1
            elif stat.S_ISDIR(st.st_mode):
                dirs += 1
            elif stat.S_ISREG(st.st_mode):
                files += 1
                size += st.st_size
    with api.client() as c:
        r = c.get(f"{API}/restore/{ext4_mount}/totals", params={"path": roots})
        missing = c.get(f"{API}/restore/{ext4_mount}/totals", params={"path": "/nope"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["files"], got["dirs"], got["symlinks"], got["bytes"]) == (
        files,
        dirs,
        symlinks,
        size,
    )
    assert got["complete"] is True
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "path_not_found"


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_entries_that_cannot_be_read_are_listed_in_the_archive(api: Env, fmt: str) -> None:
    """Issue 8, defect 13: an archive of a tree with broken entries holds every other entry
    and lists the broken ones in FILERESTORE-ERRORS.txt, its last member."""
    mount = api.mount("dave", "broken")
    with api.client("dave") as c:
        r = c.get(f"{API}/restore/{mount}/download-directory", params={"path": "/", "format": fmt})
    assert r.status_code == 200, r.text
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
            assert zf.testzip() is None
            names = zf.namelist()
            files = {n: zf.read(n) for n in names if not n.endswith("/")}
    else:
        with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tf:
            names = tf.getnames()
            files = {m.name: tf.extractfile(m).read() for m in tf if m.isreg()}  # type: ignore[union-attr]
    assert names[-1] == ERRORS_FILE
    listed = files[ERRORS_FILE].decode().splitlines()[1:]
    assert {line.split("\t")[0] for line in listed} == {printable(p) for p in broken.BROKEN}
    for rel, data in broken.GOOD.items():
        assert files[f"root/{rel}"] == data

"""Names in archives: unique root names, the root's name, the archive's file name and media
type, cleaned name components, and roots that are symbolic links."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile

import pytest

from filerestore.restore.archive import ArchiveFormat, archive_filename, archive_stream
from filerestore.restore.names import clean_component, unique, zip_component


def test_roots_get_unique_names(fs):
    roots = ["/docs/readme.md", "/docs/readme.md", "/docs/sub", "/docs/sub"]
    data = b"".join(archive_stream(fs, roots, "zip"))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        tops = {n.split("/", 1)[0] for n in zf.namelist()}
        assert zf.read("readme (2).md") == zf.read("readme.md")
    assert tops == {"readme.md", "readme (2).md", "sub", "sub (2)"}


def test_filesystem_root_is_named_root(fs):
    stream = archive_stream(fs, ["/"], "tar")
    head = next(stream)  # the first header; the rest (5 GiB) is never read
    stream.close()
    info = tarfile.TarInfo.frombuf(head[:512], "utf-8", "surrogateescape")
    assert (info.name, info.type) == ("root", tarfile.DIRTYPE)


def test_loop_and_dangling_roots_stay_symlinks(fs, source):
    data = b"".join(archive_stream(fs, ["/loop-a", "/link-dangling"], "tar"))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        links = {m.name: m.linkname for m in tar if m.issym()}
    assert links == {n: str(source.path(f"/{n}").readlink()) for n in ("loop-a", "link-dangling")}


def test_symlinks_out_of_the_guest_stay_symlinks(fs, source):
    # as roots they resolve inside the guest (where /etc/passwd does not exist), never on
    # the host; below a root they are never followed
    data = b"".join(archive_stream(fs, ["/link-etc-passwd", "/docs"], "tar"))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        links = {m.name: m.linkname for m in tar if m.issym()}
        sizes = {m.name: m.size for m in tar}
    assert links == {
        "link-etc-passwd": "/etc/passwd",
        "docs/link-escape": str(source.path("/docs/link-escape").readlink()),
    }
    assert sizes["link-etc-passwd"] == 0


def test_filename_and_media_types():
    assert archive_filename(["/docs"], "zip") == "docs.zip"
    assert archive_filename(["/"], "tar.gz") == "root.tar.gz"
    assert archive_filename(["/a", "/b"], "tar") == "root-2-items.tar"
    assert archive_filename(["/home/a", "/home/b/c"], "zip") == "home-2-items.zip"
    assert archive_filename(["/home/a", "/home/a/b"], "zip") == "home-2-items.zip"
    context = ("web01", "disk0", "2026-11-30")
    assert archive_filename(["/home/alice"], "tar", context) == "web01_disk0_2026-11-30_alice.tar"
    named = archive_filename(["/x"], "zip", (None, "d/isk", "2026-01-02"))
    assert named == "d%2Fisk_2026-01-02_x.zip"  # no VM name; a slash cannot pass
    assert ArchiveFormat("tar.gz").media_type == "application/gzip"


@pytest.mark.parametrize(
    ("name", "tar", "zipped"),
    [
        ("..", "%2E%2E", "%2E%2E"),
        (".", "%2E", "%2E"),
        ("a/b", "a%2Fb", "a%2Fb"),
        ("nul\0x", "nul%00x", "nul%00x"),
        ("..\\..\\x", "..\\..\\x", "..%5C..%5Cx"),
        (os.fsdecode(b"caf\xe9\xff"), os.fsdecode(b"caf\xe9\xff"), "caf%E9%FF"),
        ("-rf", "-rf", "-rf"),
        ("日本", "日本", "日本"),
        # an unpaired UTF-16 unit (a corrupt NTFS name can hold one) stands for no byte
        ("a\ud800b", "a\ufffdb", "a\ufffdb"),
        ("\udfff" + os.fsdecode(b"\xe9"), "\ufffd" + os.fsdecode(b"\xe9"), "\ufffd%E9"),
    ],
)
def test_name_components(name, tar, zipped):
    assert clean_component(name) == tar
    assert zip_component(name) == zipped
    zipped.encode("utf-8")  # what the ZIP writer stores
    tar.encode("utf-8", "surrogateescape")  # what the TAR writer stores


def test_unique():
    taken: set[str] = set()
    assert [unique(n, taken, False) for n in ("a.txt", "a.txt", "a.txt", ".rc", ".rc")] == [
        "a.txt",
        "a (2).txt",
        "a (3).txt",
        ".rc",
        ".rc (2)",
    ]
    assert unique("d.x", {"d.x"}, True) == "d.x (2)"

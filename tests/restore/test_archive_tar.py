"""TAR and TAR.GZ streams read back by GNU tar and by tarfile, against the source tree."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from filerestore.blockio import FileReader
from filerestore.fs import open_filesystem
from filerestore.fs.entry import Entry, EntryKind
from filerestore.restore.archive import archive_stream
from filerestore.restore.archive_members import Member
from filerestore.restore.archive_tar import tar_info
from tests.imagebuild import fs_windows
from tests.imagebuild.tree import GiB
from tests.restore.archive_checks import (
    ROOTS,
    IterFile,
    compare_extracted,
    expected_tree,
    extracted_pairs,
    member_data,
    perms,
)


@pytest.mark.parametrize("fmt", ["tar", "tar.gz"])
def test_tar_extracted_by_gnu_tar_matches_source(fs, source, tmp_path, fmt):
    dest = tmp_path / "x"
    dest.mkdir()
    flag = "-xpzf" if fmt == "tar.gz" else "-xpf"
    # piped straight from the stream into tar's stdin
    proc = subprocess.Popen(
        ["tar", flag, "-", "--numeric-owner", "-C", dest],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stderr is not None
    for chunk in archive_stream(fs, ROOTS, fmt):
        proc.stdin.write(chunk)
    proc.stdin.close()
    assert proc.wait() == 0, proc.stderr.read()
    compare_extracted(dest, expected_tree(source, ROOTS))
    # the non-UTF-8 name came through as its raw bytes
    assert (dest / "unicode" / os.fsdecode(b"latin1-caf\xe9.txt")).read_bytes() == b"latin-1 name\n"


def test_tar_headers(fs, source):
    expected = expected_tree(source, ROOTS)
    seen = set()
    with tarfile.open(fileobj=IterFile(archive_stream(fs, ROOTS, "tar")), mode="r|") as tar:
        for m in tar:
            assert m.name in expected, m.name
            assert not m.name.startswith("/") and ".." not in m.name.split("/")
            assert m.type in (tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE)
            st = expected[m.name].lstat()
            if m.issym():
                assert m.linkname == str(expected[m.name].readlink())
            else:
                assert m.mode == perms(st)
            assert int(m.mtime) == st.st_mtime_ns // 10**9
            assert (m.uid, m.gid, m.uname, m.gname) == (st.st_uid, st.st_gid, "", "")
            if m.isreg():
                assert m.size == st.st_size
                assert member_data(tar, m).read() == expected[m.name].read_bytes()
            if not m.name.encode("utf-8", "surrogateescape").isascii():
                # PAX path record; raw bytes marked as such where they are not UTF-8
                assert m.pax_headers["path"] == m.name
                binary = m.name != m.name.encode("utf-8", "replace").decode("utf-8")
                assert (m.pax_headers.get("hdrcharset") == "BINARY") == binary, m.name
            seen.add(m.name)
    assert seen == set(expected)


def test_tar_keeps_nanosecond_mtimes_and_strips_special_bits():
    # the ext4 test image holds whole seconds only, so this header is built from an Entry
    entry = Entry(
        name="f",
        path="/f",
        kind=EntryKind.FILE,
        size=3,
        mode=0o106755,
        mtime_ns=1_700_000_000_123_456_789,
    )
    buf = tar_info(Member("d/f", entry)).tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    with tarfile.open(fileobj=io.BytesIO(buf + bytes(512 + 1024)), mode="r:") as tar:
        (m,) = tar.getmembers()
    assert m.pax_headers["mtime"] == "1700000000.123456789"
    assert m.mode == 0o755
    gnu = subprocess.run(
        ["tar", "-tvf", "-", "--full-time"], input=buf + bytes(512 + 1024), capture_output=True
    )
    assert gnu.returncode == 0 and b"-rwxr-xr-x" in gnu.stdout, gnu.stdout


def test_tar_header_of_a_file_over_8_gib():
    # ustar's size field stops at 8 GiB; past it the size goes into a PAX record
    entry = Entry(name="f", path="/f", kind=EntryKind.FILE, size=9 * GiB, mode=0o100644)
    buf = tar_info(Member("f", entry)).tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    assert b" size=9663676416\n" in buf
    gnu = subprocess.run(["tar", "-tvf", "-"], input=buf, capture_output=True)
    assert b"9663676416" in gnu.stdout, gnu.stdout + gnu.stderr


@pytest.mark.parametrize("kind", ["ntfs", "fat32"])
def test_tar_from_windows_filesystems_matches_source(kind, tmp_path):
    # modes there are synthesised and owners absent: names, bytes, links and times must hold
    built = fs_windows.ntfs_image() if kind == "ntfs" else fs_windows.fat_image(32)
    roots = ["/docs", "/unicode", "/hello.txt"]
    with FileReader(built.image) as reader:
        fs = open_filesystem(reader)
        try:
            data = b"".join(archive_stream(fs, roots, "tar"))
        finally:
            fs.close()
    dest = tmp_path / "x"
    dest.mkdir()
    tar = subprocess.run(["tar", "-xpf", "-", "-C", dest], input=data, capture_output=True)
    assert tar.returncode == 0, tar.stderr
    expected: dict[str, Path] = {}
    for root in roots:
        top = built.tree / root.lstrip("/")
        expected[top.name] = top
        if top.is_dir():
            expected |= {f"{top.name}/{p.relative_to(top)}": p for p in top.rglob("*")}
    for name, src, s, d in extracted_pairs(dest, expected):
        if stat.S_ISREG(s.st_mode):
            assert src.read_bytes() == (dest / name).read_bytes(), name
            assert abs(s.st_mtime_ns - d.st_mtime_ns) <= 2 * 10**9, name  # FAT: 2 s steps
            assert not stat.S_IMODE(d.st_mode) & 0o7000

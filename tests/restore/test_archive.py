"""Archive streams round-tripped against the source tree the image was built from.

Extraction is done by tools that share no code with the writer where possible: GNU tar for
TAR and TAR.GZ, 7-Zip (``7zz t`` / ``7zz x``) for ZIP; Python's zipfile and tarfile read the
headers members by member. Expected names, bytes, modes, times and link targets come from
the source tree.
"""

from __future__ import annotations

import codecs
import io
import os
import re
import shutil
import stat
import struct
import subprocess
import tarfile
import time
import tracemalloc
import zipfile
from pathlib import Path
from typing import IO

import pytest

from filerestore.blockio import FileReader
from filerestore.errors import (
    ArchiveAbortedError,
    ArchiveTooLargeError,
    InvalidParameterError,
    PathNotFoundError,
)
from filerestore.fs import open_filesystem
from filerestore.fs.entry import Entry, EntryKind
from filerestore.restore.archive import (
    ArchiveFormat,
    ArchiveOptions,
    archive_filename,
    archive_stream,
)
from filerestore.restore.archive_members import Member
from filerestore.restore.archive_sparse import SparseLayout, sparse_info
from filerestore.restore.archive_tar import tar_info
from filerestore.restore.archive_zip import zip_info
from filerestore.restore.browse import dir_totals, read_range, walk
from filerestore.restore.names import clean_component, printable, unique, zip_component
from filerestore.restore.partial import ERRORS_FILE
from tests.imagebuild import broken_entries as broken
from tests.imagebuild import fs_linux, fs_windows
from tests.imagebuild.tree import GiB, MiB, block_content
from tests.restore.conftest import archivable, listdir

LONG = "L" * 251 + ".txt"
# roots of the main round trip; the first ones are symlinks that, as roots, are followed
FOLLOWED = {"/link-to-dir": "/docs", "/link-relative": "/docs/readme.md"}
ROOTS = [
    "/link-to-dir",
    "/link-relative",
    "/link-dangling",
    "/loop-a",
    "/docs",
    "/unicode",
    "/hostile",
    "/level00",
    "/hello.txt",
    "/empty",
    "/sparse.bin",
    f"/{LONG}",
]
# 7-Zip refuses to extract a link that climbs out (docs/link-escape), so its roots leave
# the docs directory out
ZIP_X_ROOTS = [r for r in ROOTS if r not in ("/docs", "/link-to-dir")] + ["/docs/sub"]


def _pct(err: UnicodeError) -> tuple[str, int]:
    assert isinstance(err, UnicodeDecodeError)
    return "".join(f"%{b:02X}" for b in err.object[err.start : err.end]), err.end


codecs.register_error("test-pct", _pct)


def _member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    data = tar.extractfile(member)
    assert data is not None, member.name
    return data


def zip_name(rel: str) -> str:
    """The documented ZIP name rule, written independently: undecodable bytes and
    backslashes as %XX."""
    raw = rel.encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "test-pct").replace("\\", "%5C")


def clash_contents(source) -> set[bytes]:
    """The two files whose ZIP names clash: the non-UTF-8 one and "latin1-caf%E9.txt"."""
    latin1 = source.path("/unicode") / os.fsdecode(b"latin1-caf\xe9.txt")
    both = {latin1.read_bytes(), source.path("/unicode/latin1-caf%E9.txt").read_bytes()}
    assert len(both) == 2
    return both


def expected_tree(source, roots) -> dict[str, Path]:
    """Archive name -> source path for every member ``roots`` should give."""
    out: dict[str, Path] = {}
    for root in roots:
        name = root.rsplit("/", 1)[1]
        top = source.path(FOLLOWED.get(root, root))
        out[name] = top
        if stat.S_ISDIR(top.lstat().st_mode):
            for rel, st in source.entries(FOLLOWED.get(root, root)).items():
                if archivable(st):
                    out[f"{name}/{rel}"] = top / rel
    return out


def perms(st: os.stat_result) -> int:
    return stat.S_IMODE(st.st_mode) & 0o777  # setuid, setgid and sticky are stripped


def write_stream(stream, path: Path) -> Path:
    with path.open("wb") as fh:
        for chunk in stream:
            fh.write(chunk)
    return path


def compare_extracted(dest: Path, expected: dict[str, Path], *, dirs: bool = True) -> None:
    """An extracted tree against the source: names, kinds, bytes, modes, mtimes, links."""
    got = {}
    for dirpath, dirnames, filenames in os.walk(dest):
        for n in dirnames + filenames:
            full = Path(dirpath) / n
            got[str(full.relative_to(dest))] = full
    assert set(got) == set(expected)
    for name, src in expected.items():
        s, d = src.lstat(), got[name].lstat()
        assert stat.S_IFMT(s.st_mode) == stat.S_IFMT(d.st_mode), name
        if stat.S_ISLNK(s.st_mode):
            assert src.readlink() == got[name].readlink(), name
            continue
        if stat.S_ISDIR(s.st_mode) and not dirs:
            continue
        assert perms(s) == stat.S_IMODE(d.st_mode), name
        assert s.st_mtime_ns // 10**9 == d.st_mtime_ns // 10**9, name
        if stat.S_ISREG(s.st_mode):
            assert src.read_bytes() == got[name].read_bytes(), name


# --- TAR -------------------------------------------------------------------------------------


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


class IterFile(io.RawIOBase):
    """A read-only file over an iterator of bytes, for tarfile's stream mode."""

    def __init__(self, chunks):
        self._chunks = iter(chunks)
        self._buf: bytes | None = b""

    def readable(self):
        return True

    def readinto(self, b):
        while not self._buf:
            self._buf = next(self._chunks, None)
            if self._buf is None:
                self._buf = b""
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


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
                assert _member(tar, m).read() == expected[m.name].read_bytes()
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


# --- ZIP -------------------------------------------------------------------------------------


def _ut_mtime(extra: bytes) -> int | None:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        if tag == 0x5455:
            return int(struct.unpack_from("<i", extra, pos + 5)[0])
        pos += 4 + size
    return None


@pytest.mark.parametrize("deflate", [False, True])
def test_zip_members_match_source(fs, source, deflate):
    data = b"".join(archive_stream(fs, ROOTS, "zip", ArchiveOptions(deflate=deflate)))
    expected = {zip_name(k): v for k, v in expected_tree(source, ROOTS).items()}
    # the escaped non-UTF-8 name meets the real "latin1-caf%E9.txt" beside it
    clash = "unicode/latin1-caf%E9.txt"
    contents = clash_contents(source)
    del expected[clash]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        infos = {i.filename.rstrip("/"): i for i in zf.infolist()}
        assert {zf.read(infos[n]) for n in (clash, "unicode/latin1-caf%E9 (2).txt")} == contents
        del infos[clash], infos["unicode/latin1-caf%E9 (2).txt"]
        assert set(infos) == set(expected)
        for name, info in infos.items():
            st = expected[name].lstat()
            mode = info.external_attr >> 16
            assert stat.S_IFMT(mode) == stat.S_IFMT(st.st_mode), name
            assert stat.S_IMODE(mode) == (0o777 if stat.S_ISLNK(st.st_mode) else perms(st)), name
            assert info.create_system == 3
            seconds = st.st_mtime_ns // 10**9
            assert _ut_mtime(info.extra) == seconds, name
            assert info.date_time == (*time.gmtime(seconds)[:5], time.gmtime(seconds)[5] // 2 * 2)
            if stat.S_ISLNK(st.st_mode):
                assert zf.read(info) == os.fsencode(str(expected[name].readlink()))
            elif stat.S_ISREG(st.st_mode):
                assert zf.read(info) == expected[name].read_bytes(), name
                assert info.compress_type == (
                    zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
                )
                assert info.extract_version >= 45  # ZIP64 on every file
            if not name.isascii():
                assert info.flag_bits & 0x800  # UTF-8 name


def test_zip_tested_and_extracted_by_7zip(fs, source, tmp_path):
    archive = write_stream(archive_stream(fs, ZIP_X_ROOTS, "zip"), tmp_path / "a.zip")
    test = subprocess.run(["7zz", "t", archive], capture_output=True, text=True)
    assert test.returncode == 0 and "Everything is Ok" in test.stdout, test.stdout
    dest = tmp_path / "x"
    run = subprocess.run(["7zz", "x", f"-o{dest}", archive], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    expected = {zip_name(k): v for k, v in expected_tree(source, ZIP_X_ROOTS).items()}
    # 7-Zip applies its umask to directories: their modes and times are checked in the
    # header test above, files and links here
    clash = "unicode/latin1-caf%E9.txt"
    both = clash_contents(source)
    del expected[clash]
    got = {(dest / clash).read_bytes(), (dest / "unicode/latin1-caf%E9 (2).txt").read_bytes()}
    assert got == both
    (dest / clash).unlink()
    (dest / "unicode/latin1-caf%E9 (2).txt").unlink()
    compare_extracted(dest, expected, dirs=False)


# --- many entries, big files, memory ---------------------------------------------------------


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_10000_entry_directory(fs, source, fmt):
    data = b"".join(archive_stream(fs, ["/many"], fmt))
    want = {
        f"many/{n}": (source.path("/many") / n).read_bytes() for n in listdir(source.path("/many"))
    }
    got = {}
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                got[info.filename] = None if info.is_dir() else zf.read(info)
    else:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for m in tar:
                got[m.name + ("/" if m.isdir() else "")] = (
                    _member(tar, m).read() if m.isreg() else None
                )
    assert got.pop("many/") is None
    assert got == want


def test_zip64_past_65535_entries_and_duplicate_roots(fs, tmp_path):
    archive = write_stream(archive_stream(fs, ["/many"] * 7, "zip"), tmp_path / "a.zip")
    raw = archive.read_bytes()
    assert b"PK\x06\x06" in raw[-200:]  # ZIP64 end of central directory record
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
    assert len(names) == len(set(names)) == 7 * 10_001
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"many"} | {f"many ({i})" for i in range(2, 8)}
    test = subprocess.run(["7zz", "t", archive], capture_output=True, text=True)
    assert test.returncode == 0 and "Files: 70000" in test.stdout, test.stdout


class SparseSink:
    """Writes a stream to a file, seeking over all-zero chunks so a 5 GiB ZIP costs no disk."""

    zeros = bytes(MiB)

    def __init__(self, path: Path):
        self.fh = path.open("wb")
        self.size = 0

    def write(self, chunk: bytes) -> None:
        if chunk == self.zeros or (len(chunk) < MiB and chunk.count(0) == len(chunk)):
            self.fh.seek(len(chunk), os.SEEK_CUR)
        else:
            self.fh.write(chunk)
        self.size += len(chunk)

    def close(self) -> None:
        self.fh.truncate(self.size)
        self.fh.close()


def test_zip64_file_over_4gib_streams_in_flat_memory(fs, source, tmp_path):
    big = source.path("/big-sparse.bin")
    size = big.stat().st_size
    assert size == 5 * GiB + 8192
    sink = SparseSink(tmp_path / "big.zip")
    tracemalloc.start()
    try:
        for chunk in archive_stream(fs, ["/big-sparse.bin"], "zip"):
            sink.write(chunk)
            del chunk
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        sink.close()
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB while streaming 5 GiB"
    test = subprocess.run(["7zz", "t", tmp_path / "big.zip"], capture_output=True, text=True)
    assert test.returncode == 0 and "Everything is Ok" in test.stdout, test.stdout
    with zipfile.ZipFile(tmp_path / "big.zip") as zf:
        (info,) = zf.infolist()
        assert (info.filename, info.file_size) == ("big-sparse.bin", size)
        # compared with the tree recipe: "start", zeros up to 5 GiB, then 8 KiB of
        # block_content("big-tail"); zipfile checks the CRC as it reads
        zeros = bytes(16 * MiB)
        pos = 0
        with zf.open(info) as member:
            while block := member.read(16 * MiB):
                if pos == 0:
                    assert block[:5] == b"start" and block[5:] == zeros[5:]
                elif pos + len(block) <= 5 * GiB:
                    assert block == zeros[: len(block)]
                else:
                    tail = 5 * GiB - pos
                    assert block[:tail] == zeros[:tail]
                    assert block[tail:] == block_content("big-tail", 8192)
                pos += len(block)
        assert pos == size


def test_tar_of_big_file_streams_in_flat_memory(fs, source):
    tracemalloc.start()
    total = 0
    try:
        dense = ArchiveOptions(sparse=False)  # every byte, holes as zeros
        for chunk in archive_stream(fs, ["/big-sparse.bin"], "tar", dense):
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB
    size = 5 * GiB + 8192
    # one PAX-less ustar header, data padded to 512, two zero blocks, padded to 10 KiB
    assert total == -(-(512 + size + 1024) // 10240) * 10240


SPARSE = ["/big-sparse.bin", "/sparse.bin"]


def test_tar_keeps_holes_as_holes(fs, source, tmp_path):
    """Issue 8, defect 4: a file's holes are a sparse member's holes, not zeros sent; GNU
    tar and the stdlib's tarfile (two independent readers) restore the files byte for byte,
    and GNU tar with their holes. The bound is the source files' own allocation."""
    allocated = sum(source.path(p).lstat().st_blocks * 512 for p in SPARSE)
    logical = sum(source.path(p).lstat().st_size for p in SPARSE)
    archive = tmp_path / "sparse.tar"
    with archive.open("wb") as out:
        for chunk in archive_stream(fs, SPARSE, "tar"):
            out.write(chunk)
    assert archive.stat().st_size <= allocated + 64 * 1024 < logical
    by_gnu, by_python = tmp_path / "gnu", tmp_path / "python"
    by_gnu.mkdir()
    run = subprocess.run(["tar", "-xf", archive, "-C", by_gnu], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        tar.extractall(by_python, filter="data")
    assert sorted(names) == ["big-sparse.bin", "sparse.bin"]  # the real names, no placeholder
    for path in SPARSE:
        name = path.lstrip("/")
        for dest in (by_gnu, by_python):
            same = subprocess.run(["cmp", source.path(path), dest / name], capture_output=True)
            assert same.returncode == 0, same.stdout
        restored = (by_gnu / name).lstat()
        assert restored.st_blocks * 512 <= source.path(path).lstat().st_blocks * 512 + MiB


def test_tar_sparse_member_layout():
    """The sparse map as the GNU format 1.0 defines it, built by hand from the rule."""
    layout = SparseLayout([(0, 4096), (1 << 20, 512)], 8 << 20)
    text = b"3\n0\n4096\n1048576\n512\n8388608\n0\n"  # ends in a hole: a last empty region
    assert layout.map_bytes == text + bytes(512 - len(text))
    assert layout.area == 512 + 4096 + 512
    info = tarfile.TarInfo("d/" + "\u00e9" * 3)
    sparse = sparse_info(info, layout, 7)
    assert sparse.name == "GNUSparseFile.0/7"  # no ASCII placeholder: no PAX path record
    assert sparse.pax_headers["GNU.sparse.name"] == "d/" + "\u00e9" * 3
    assert sparse.pax_headers["GNU.sparse.realsize"] == str(8 << 20)
    assert "path" not in sparse.pax_headers


# --- roots, names, errors --------------------------------------------------------------------


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


def test_errors_before_the_first_byte(fs):
    with pytest.raises(PathNotFoundError):
        archive_stream(fs, ["/docs", "/nope"], "zip")
    with pytest.raises(InvalidParameterError):
        archive_stream(fs, ["/docs"], "rar")
    with pytest.raises(InvalidParameterError):
        archive_stream(fs, [], "tar")


def test_entry_limit_refuses_before_the_first_byte(fs, source):
    count = sum(1 for _ in source.entries("/many")) + 1  # with /many itself, from the host
    assert count > 100
    with pytest.raises(ArchiveTooLargeError, match="more than 100 entries"):
        archive_stream(fs, ["/many"], "zip", ArchiveOptions(max_entries=100))
    assert len(list(archive_stream(fs, ["/many"], "tar", ArchiveOptions(max_entries=count))))
    with pytest.raises(ArchiveTooLargeError):
        archive_stream(fs, ["/many"], "tar", ArchiveOptions(max_entries=count - 1))


def test_byte_limit_refuses_before_the_first_byte(fs, source):
    total = sum(st.st_size for st in source.entries("/docs").values() if stat.S_ISREG(st.st_mode))
    with pytest.raises(ArchiveTooLargeError, match=f"more than {total - 1} bytes"):
        archive_stream(fs, ["/docs"], "tar", ArchiveOptions(max_bytes=total - 1))
    assert len(list(archive_stream(fs, ["/docs"], "tar", ArchiveOptions(max_bytes=total))))


def test_entry_limit_aborts_an_archive_not_counted_first(fs):
    options = ArchiveOptions(max_entries=100, precount=False)
    stream = archive_stream(fs, ["/many"], "tar", options)
    with pytest.raises(ArchiveTooLargeError):
        for _ in stream:
            pass


@pytest.fixture(scope="module")
def damaged_image(source, tmp_path_factory) -> Path:
    """A copy of the image whose docs/data.bin has its second extent pointing far past the
    end of the volume (set with debugfs): reads fail after its first MiB."""
    image = fs_linux.copy_image(source.image, tmp_path_factory.mktemp("bad") / "bad.img")
    # i_block words: 0-2 extent header, 3-5 first extent, 6-8 second (8: start block, low)
    fs_linux.run("debugfs", "-w", "-R", "set_inode_field /docs/data.bin block[8] 0x7ffffff0", image)
    extents = fs_linux.run("debugfs", "-R", "stat /docs/data.bin", image)
    assert "2147483632" in extents  # the damage is there
    return image


@pytest.mark.parametrize("fmt", ["zip", "tar", "tar.gz"])
def test_read_error_mid_stream_aborts_without_a_valid_archive(damaged_image, tmp_path, fmt):
    got = bytearray()
    with FileReader(damaged_image) as reader:
        fs = open_filesystem(reader)
        try:
            with pytest.raises(ArchiveAbortedError) as err:
                for chunk in archive_stream(fs, ["/docs"], fmt):
                    got += chunk
        finally:
            fs.close()
    assert "/docs/data.bin" in str(err.value) and "discarded" in str(err.value)
    partial = write_stream([bytes(got)], tmp_path / f"partial.{fmt}")
    if fmt == "zip":
        assert subprocess.run(["7zz", "t", partial], capture_output=True).returncode != 0
        with pytest.raises(zipfile.BadZipFile):
            zipfile.ZipFile(partial)
    else:
        flag = "-tzf" if fmt == "tar.gz" else "-tf"
        assert subprocess.run(["tar", flag, partial], capture_output=True).returncode != 0
        with pytest.raises((tarfile.ReadError, EOFError)), tarfile.open(partial) as tar:
            for m in tar:
                if m.isreg():
                    _member(tar, m).read()


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


def test_tools_present():
    # the round trips above rely on these; a missing tool must fail loudly, not skip
    assert shutil.which("7zz") and shutil.which("tar") and shutil.which("debugfs")


@pytest.fixture(scope="module")
def cyclic_image(source, tmp_path_factory) -> Path:
    """A copy of the image with docs/sub/loop a hard link to /docs (made by debugfs): a
    directory cycle only a corrupt image can hold."""
    image = fs_linux.copy_image(source.image, tmp_path_factory.mktemp("cyc") / "cyc.img")
    fs_linux.run("debugfs", "-w", "-R", "link /docs /docs/sub/loop", image)
    listing = fs_linux.run("debugfs", "-R", "ls -l /docs/sub", image)
    docs_inode = fs_linux.run("debugfs", "-R", "stat /docs", image).split()[1]
    assert re.search(rf"^\s*{docs_inode}\s+40755.*\sloop\s*$", listing, re.M), listing
    return image


@pytest.mark.timeout(60)
def test_directory_cycle_is_archived_once(cyclic_image, source):
    with FileReader(cyclic_image) as reader:
        fs = open_filesystem(reader)
        try:
            data = b"".join(archive_stream(fs, ["/docs"], "tar"))
            walked = [e.path for e in walk(fs, "/docs", max_depth=256)]
            totals = dir_totals(fs, ["/docs"])
        finally:
            fs.close()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = [m.name for m in tar]
    expected = {"docs"} | {f"docs/{rel}" for rel in source.entries("/docs")} | {"docs/sub/loop"}
    assert sorted(names) == sorted(expected)  # the loop is listed, never descended
    assert sorted(walked) == sorted("/" + n for n in expected - {"docs"})
    assert totals.dirs == 3 and totals.complete


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


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_closing_a_stream_early_leaves_the_filesystem_usable(fs, fmt):
    # what an HTTP adapter does when the client disconnects
    stream = archive_stream(fs, ["/docs", "/sparse.bin"], fmt)
    first = next(stream)
    assert first
    stream.close()
    assert b"".join(read_range(fs, "/hello.txt")) == b"hello, world\n"


def test_tar_header_of_a_file_over_8_gib():
    # ustar's size field stops at 8 GiB; past it the size goes into a PAX record
    entry = Entry(name="f", path="/f", kind=EntryKind.FILE, size=9 * GiB, mode=0o100644)
    buf = tar_info(Member("f", entry)).tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    assert b" size=9663676416\n" in buf
    gnu = subprocess.run(["tar", "-tvf", "-"], input=buf, capture_output=True)
    assert b"9663676416" in gnu.stdout, gnu.stdout + gnu.stderr


def test_zip_times_before_1980_keep_the_exact_time_in_the_extra_field():
    entry = Entry(name="old", path="/old", kind=EntryKind.FILE, size=0, mode=0o100600, mtime_ns=0)
    info = zip_info(Member("old", entry), deflate=False)
    assert info.date_time == (1980, 1, 1, 0, 0, 0)  # the DOS field cannot go lower
    assert _ut_mtime(info.extra) == 0
    assert info.external_attr >> 16 == 0o100600


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
    got = {str(p.relative_to(dest)): p for p in dest.rglob("*")}
    assert set(got) == set(expected)
    for name, src in expected.items():
        s, d = src.lstat(), got[name].lstat()
        assert stat.S_IFMT(s.st_mode) == stat.S_IFMT(d.st_mode), name
        if stat.S_ISLNK(s.st_mode):
            assert src.readlink() == got[name].readlink(), name
        elif stat.S_ISREG(s.st_mode):
            assert src.read_bytes() == got[name].read_bytes(), name
            assert abs(s.st_mtime_ns - d.st_mtime_ns) <= 2 * 10**9, name  # FAT: 2 s steps
            assert not stat.S_IMODE(d.st_mode) & 0o7000


# --- entries that cannot be read (issue 8, defect 13) ----------------------------------------


@pytest.mark.parametrize("fmt", ["zip", "tar", "tar.gz"])
def test_unreadable_entries_are_listed_not_fatal(fmt, tmp_path):
    with FileReader(broken.broken_entries_image()) as reader:
        fs = open_filesystem(reader)
        try:
            archive = write_stream(archive_stream(fs, ["/"], fmt), tmp_path / f"a.{fmt}")
        finally:
            fs.close()
    dest = tmp_path / "x"
    dest.mkdir()
    if fmt == "zip":  # 7-Zip tests every member's CRC, then extracts
        assert subprocess.run(["7zz", "t", archive], capture_output=True).returncode == 0
        subprocess.run(["7zz", "x", f"-o{dest}", archive], check=True, capture_output=True)
    else:
        subprocess.run(["tar", "-xf", archive, "-C", dest], check=True, capture_output=True)
    errors = (dest / ERRORS_FILE).read_text().splitlines()  # beside the root folder
    assert (
        errors[0]
        == f"{len(broken.BROKEN)} entries could not be restored and are missing from this archive:"
    )
    assert {line.split("\t")[0] for line in errors[1:]} == {printable(p) for p in broken.BROKEN}
    for rel, data in broken.GOOD.items():
        assert (dest / "root" / rel).read_bytes() == data, rel
    assert not (dest / "root" / broken.BAD_EXTENT).exists()
    for rel in broken.NUL_LINKS:
        assert not os.path.lexists(dest / "root" / rel)

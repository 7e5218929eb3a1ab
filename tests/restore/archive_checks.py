"""What the archive tests compare streams against: the roots of the main round trip, the archive
names and source paths they should give, and readers of what was written.

Extraction is done by tools that share no code with the writer where possible: GNU tar for
TAR and TAR.GZ, 7-Zip (``7zz t`` / ``7zz x``) for ZIP; Python's zipfile and tarfile read the
headers members by member. Expected names, bytes, modes, times and link targets come from
the source tree.
"""

from __future__ import annotations

import codecs
import io
import os
import stat
import struct
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from tests.restore.conftest import archivable

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


def member_data(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
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


def extracted_pairs(
    dest: Path, expected: dict[str, Path]
) -> Iterator[tuple[str, Path, os.stat_result, os.stat_result]]:
    """An extracted tree against the source: the same names, each of the same kind, links with
    the same targets; then every other name with its source and both their stats."""
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
        else:
            yield name, src, s, d


def compare_extracted(dest: Path, expected: dict[str, Path], *, dirs: bool = True) -> None:
    """An extracted tree against the source: names, kinds, bytes, modes, mtimes, links."""
    for name, src, s, d in extracted_pairs(dest, expected):
        if stat.S_ISDIR(s.st_mode) and not dirs:
            continue
        assert perms(s) == stat.S_IMODE(d.st_mode), name
        assert s.st_mtime_ns // 10**9 == d.st_mtime_ns // 10**9, name
        if stat.S_ISREG(s.st_mode):
            assert src.read_bytes() == (dest / name).read_bytes(), name


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


def ut_mtime(extra: bytes) -> int | None:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        if tag == 0x5455:
            return int(struct.unpack_from("<i", extra, pos + 5)[0])
        pos += 4 + size
    return None

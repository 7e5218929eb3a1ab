"""Content types, byte ranges and Content-Disposition, checked against independent
sources: file(1) for content sniffing of files made by real tools, Python's built-in
(not host-dependent) MIME table for extensions, RFC 9110's own examples for ranges."""

from __future__ import annotations

import bz2
import gzip
import lzma
import mimetypes
import shutil
import sqlite3
import subprocess
import tarfile
import wave
import zipfile
import zlib
from pathlib import Path
from urllib.parse import unquote

import pytest

from filerestore.api.content_types import BY_EXTENSION, content_type, sniff
from filerestore.api.downloads import ByteRange, content_disposition, parse_range
from filerestore.errors import RangeNotSatisfiableError

# where file(1) and we spell one type differently
ALIASES = {
    "application/x-pie-executable": "application/x-executable",
    "application/x-sharedlib": "application/x-executable",
    "audio/x-wav": "audio/wav",
    "text/xml": "application/xml",
    "image/x-ms-bmp": "image/bmp",
    "audio/x-flac": "audio/flac",
}


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    ihdr = (1).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0\0"))
        + chunk(b"IEND", b"")
    )


def samples(tmp: Path) -> dict[str, Path]:
    """Files without an extension, made by real tools and libraries."""
    out: dict[str, Path] = {}
    text = b"some text for the samples\n" * 200

    def put(name: str, data: bytes) -> None:
        (tmp / name).write_bytes(data)
        out[name] = tmp / name

    put("gz", gzip.compress(text))
    put("bz2", bz2.compress(text))
    put("xz", lzma.compress(text))
    put("text", text)
    put("utf8", "naïve café — 日本語\n".encode() * 20)
    put("pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
    put("png", _png())
    put("gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")
    put("elf", Path("/bin/ls").read_bytes()[:4096])
    with zipfile.ZipFile(tmp / "zip", "w") as zf:
        zf.writestr("a.txt", text)
    out["zip"] = tmp / "zip"
    with tarfile.open(tmp / "tar", "w", format=tarfile.PAX_FORMAT) as tf:
        tf.add(tmp / "text", arcname="text")
    out["tar"] = tmp / "tar"
    con = sqlite3.connect(tmp / "sqlite")
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    out["sqlite"] = tmp / "sqlite"
    with wave.open(str(tmp / "wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 800)
    out["wav"] = tmp / "wav"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", str(tmp / "qcow2"), "1M"], check=True
    )
    out["qcow2"] = tmp / "qcow2"
    if shutil.which("7zz"):
        subprocess.run(
            ["7zz", "a", "-bd", "-y", str(tmp / "7z.7z"), str(tmp / "text")],
            check=True,
            capture_output=True,
        )
        (tmp / "7z.7z").rename(tmp / "7z")
        out["7z"] = tmp / "7z"
    if shutil.which("zstd"):
        subprocess.run(["zstd", "-q", str(tmp / "text"), "-o", str(tmp / "zst")], check=True)
        out["zst"] = tmp / "zst"
    return out


def test_sniffing_agrees_with_file(tmp_path: Path) -> None:
    checked = 0
    for name, path in samples(tmp_path).items():
        theirs = subprocess.run(
            ["file", "-b", "--mime-type", str(path)], capture_output=True, text=True, check=True
        ).stdout.strip()
        head = path.read_bytes()[:512]
        if theirs in ("application/octet-stream",):
            continue  # file(1) does not know it: nothing to compare
        assert sniff(head) == ALIASES.get(theirs, theirs), (name, theirs)
        checked += 1
    assert checked >= 13


# Where we deliberately differ from Python 3.11's table, and why.
NEWER_STANDARD = {
    "js": "text/javascript",  # RFC 9239 obsoletes application/javascript
    "mjs": "text/javascript",
    "xml": "application/xml",  # RFC 7303 prefers it to text/xml
    "wav": "audio/wav",  # registered; audio/x-wav is the unregistered spelling
    "tgz": "application/gzip",  # the bytes are gzip; what they hold is a tar
    "exe": "application/vnd.microsoft.portable-executable",  # IANA-registered
    "dll": "application/vnd.microsoft.portable-executable",
    "c": "text/x-c",  # more specific than text/plain, still text
    "h": "text/x-c",
}


def test_extension_table_agrees_with_python() -> None:
    builtin = mimetypes.MimeTypes(filenames=())  # Python's own table, not the host's files
    agree = 0
    for ext, ours in BY_EXTENSION.items():
        theirs, _ = builtin.guess_type(f"x.{ext}", strict=False)
        if theirs is None or ext in NEWER_STANDARD:
            continue
        assert ours == theirs, (ext, theirs, ours)
        agree += 1
    assert {e: BY_EXTENSION[e] for e in NEWER_STANDARD} == NEWER_STANDARD
    assert len(BY_EXTENSION) >= 30 and agree >= 30


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("notes.txt", b"hello\n", "text/plain; charset=utf-8"),
        ("notes.txt", b"\xff\xfe\x00h", "text/plain"),  # UTF-16: not declared UTF-8
        ("report.PDF", b"%PDF-1.7", "application/pdf"),
        ("archive", b"PK\x03\x04rest", "application/zip"),
        ("no-extension", b"plain words", "text/plain; charset=utf-8"),
        ("binary", b"\x00\x01\x02\x03", "application/octet-stream"),
        (".bashrc", b"export A=1\n", "text/plain; charset=utf-8"),
        ("page.html", b"<html></html>", "text/html; charset=utf-8"),
        ("empty", b"", "application/octet-stream"),
    ],
)
def test_content_type(name: str, head: bytes, expected: str) -> None:
    assert content_type(name, head) == expected


def test_ranges_rfc9110_examples() -> None:
    size = 10000
    assert parse_range("bytes=0-499", size) == ByteRange(0, 500)
    assert parse_range("bytes=500-999", size) == ByteRange(500, 1000)
    assert parse_range("bytes=-500", size) == ByteRange(9500, 10000)
    assert parse_range("bytes=9500-", size) == ByteRange(9500, 10000)
    assert parse_range("bytes=9500-999999", size) == ByteRange(9500, 10000)  # clamped
    assert parse_range("bytes=-20000", size) == ByteRange(0, 10000)
    for ignored in (
        None,
        "bytes=0-1,5-6",
        "items=0-1",
        "bytes=5-1",
        "bytes=-",
        "nonsense",
        "bytes=" + "9" * 30 + "-",
        # outside RFC 9110's grammar (whitespace is SP or HTAB, digits are ASCII), found by
        # fuzzing: a newline inside made the refusal's reason two lines
        "bytes\n=10000-",
        "bytes=0-1\n",
        "bytes=\x0b0-1",
        "bytes=\xa00-1",
        "bytes=\u0660-1",
    ):
        assert parse_range(ignored, size) is None, ignored
    assert parse_range(" bytes = 0 - 1\t", size) == ByteRange(0, 2)  # SP and HTAB are allowed
    for unsatisfiable in ("bytes=10000-", "bytes=20000-30000", "bytes=-0"):
        with pytest.raises(RangeNotSatisfiableError):
            parse_range(unsatisfiable, size)
    with pytest.raises(RangeNotSatisfiableError):
        parse_range("bytes=-5", 0)
    assert ByteRange(0, 500).content_range(size) == "bytes 0-499/10000"


@pytest.mark.parametrize(
    "name",
    [
        "plain.txt",
        "naïve café.txt",
        'quote"and\\back.txt',
        "日本語.pdf",
        "semi;colon%.txt",
        "new\nline",
        "latin1-caf\udce9.txt",
        " .hidden. ",
    ],
)
def test_content_disposition(name: str) -> None:
    header = content_disposition(name)
    assert header.isascii()
    m_fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert m_fallback and all(0x20 <= ord(c) < 0x7F and c not in '"\\%/;' for c in m_fallback)
    star = header.split("filename*=UTF-8''", 1)[1]
    decoded = unquote(star, encoding="utf-8", errors="strict")
    if "\udce9" in name:
        assert decoded == "latin1-caf\ufffd.txt"
    else:
        assert decoded == name

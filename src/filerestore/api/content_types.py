"""Content-Type of a downloaded file: by extension first, else by its first bytes.

# References: IANA media types registry; WHATWG MIME Sniffing (section 7, the signature
# table for images, audio/video, archives); file(1)'s magic for the formats it omits.

The table is ours rather than the stdlib's ``mimetypes`` because that one reads the host's
/etc/mime.types, so the answer would change with the machine. Text is declared UTF-8 only
when the sniffed bytes decode as UTF-8.
"""

from __future__ import annotations

OCTET_STREAM = "application/octet-stream"
SNIFF_BYTES = 512

BY_EXTENSION: dict[str, str] = {
    "txt": "text/plain",
    "log": "text/plain",
    "conf": "text/plain",
    "ini": "text/plain",
    "cfg": "text/plain",
    "md": "text/markdown",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "html": "text/html",
    "htm": "text/html",
    "css": "text/css",
    "js": "text/javascript",
    "mjs": "text/javascript",
    "json": "application/json",
    "xml": "application/xml",
    "yaml": "application/yaml",
    "yml": "application/yaml",
    "toml": "application/toml",
    "sh": "application/x-sh",
    "py": "text/x-python",
    "c": "text/x-c",
    "h": "text/x-c",
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "ico": "image/vnd.microsoft.icon",
    "svg": "image/svg+xml",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "avi": "video/x-msvideo",
    "mkv": "video/x-matroska",
    "zip": "application/zip",
    "gz": "application/gzip",
    "tgz": "application/gzip",
    "bz2": "application/x-bzip2",
    "xz": "application/x-xz",
    "zst": "application/zstd",
    "7z": "application/x-7z-compressed",
    "tar": "application/x-tar",
    "rar": "application/vnd.rar",
    "doc": "application/msword",
    "xls": "application/vnd.ms-excel",
    "ppt": "application/vnd.ms-powerpoint",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "rtf": "application/rtf",
    "exe": "application/vnd.microsoft.portable-executable",
    "dll": "application/vnd.microsoft.portable-executable",
    "msi": "application/x-msi",
    "iso": "application/x-iso9660-image",
    "qcow2": "application/x-qemu-disk",
    "sqlite": "application/vnd.sqlite3",
    "db": "application/vnd.sqlite3",
    "deb": "application/vnd.debian.binary-package",
    "rpm": "application/x-rpm",
    "wasm": "application/wasm",
}


#: a RIFF container's form type (bytes 8-12) -> media type
RIFF_FORMS: dict[bytes, str] = {
    b"WEBP": "image/webp",
    b"WAVE": "audio/wav",
    b"AVI ": "video/x-msvideo",
}

#: (offset, magic, media type), checked in order after RIFF: the first match wins (more
#: specific signatures first)
SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"%PDF-", "application/pdf"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"BM", "image/bmp"),
    (0, b"\x00\x00\x01\x00", "image/vnd.microsoft.icon"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
    (4, b"ftyp", "video/mp4"),
    (0, b"\x1aE\xdf\xa3", "video/webm"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"PK\x05\x06", "application/zip"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"BZh", "application/x-bzip2"),
    (0, b"\xfd7zXZ\x00", "application/x-xz"),
    (0, b"(\xb5/\xfd", "application/zstd"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"Rar!\x1a\x07", "application/vnd.rar"),
    (257, b"ustar", "application/x-tar"),
    (0, b"\x7fELF", "application/x-executable"),
    (0, b"MZ", "application/vnd.microsoft.portable-executable"),
    (0, b"SQLite format 3\x00", "application/vnd.sqlite3"),
    (0, b"QFI\xfb", "application/x-qemu-disk"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
    (0, b"{\\rtf", "application/rtf"),
    (0, b"\x00asm", "application/wasm"),
    (0, b"<?xml", "application/xml"),
    (0, b"<svg", "image/svg+xml"),
)

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/yaml")


def extension_of(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    if "." not in base.lstrip("."):
        return ""
    return base.rsplit(".", 1)[-1].lower()


def sniff(head: bytes) -> str:
    """The media type the first bytes of a file show (``OCTET_STREAM`` when unknown)."""
    if head[:4] == b"RIFF" and head[8:12] in RIFF_FORMS:
        return RIFF_FORMS[head[8:12]]
    for offset, magic, media in SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return media
    if head and _looks_like_text(head):
        return "text/plain"
    return OCTET_STREAM


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut by the end of the sniffed window is still text
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def content_type(name: str, head: bytes) -> str:
    """Content-Type for a file called ``name`` whose first bytes are ``head``."""
    media = BY_EXTENSION.get(extension_of(name)) or sniff(head)
    if media.startswith(_TEXT_TYPES) and _looks_like_text(head):
        return f"{media}; charset=utf-8"
    return media

"""Entry names as they are written into archives: one clean component at a time.

A guest filesystem cannot hold a name that is empty, ``.``, ``..``, or contains ``/`` or NUL,
but a corrupt image can claim one, and an archive member built from it could climb out of the
extraction directory. Such a name is written with the offending characters as ``%XX``
escapes, so every member name stays relative, with no empty, ``.`` or ``..`` components.

Names that are not valid UTF-8 (Entry names carry those bytes as surrogate escapes):

- TAR keeps the raw bytes: PAX ``path`` records with ``hdrcharset=BINARY`` carry them, so
  GNU tar and Python's tarfile (``errors="surrogateescape"``) extract the original name.
- ZIP names are always UTF-8 here (general purpose flag bit 11 where not ASCII): ZIP has no
  standard way to mark raw bytes, and extractors would guess a code page. Each undecodable
  byte is written as ``%XX`` (``caf\\xe9`` -> ``caf%E9``). A backslash is written as ``%5C``
  too, because Windows extractors treat it as a path separator (``..\\x`` would climb).

For people (a terminal, a log, an archive's error list) :func:`printable` shows a name with
control characters and undecodable bytes as backslash escapes, so a hostile name cannot
drive a terminal.

A surrogate that stands for no byte (an unpaired UTF-16 unit a corrupt name may hold) has no
encoding in either format: it is written as U+FFFD.

Escaping can make two names equal (``caf%E9`` next to an undecodable ``caf\\xe9``); the
archive writers then add `` (2)``, `` (3)``... before the extension: see :func:`unique`.
"""

from __future__ import annotations

import re

ROOT_NAME = "root"  # the archive folder for a download of the filesystem root "/"
EMPTY_NAME = "(empty)"  # only a corrupt directory entry has no name

_FORBIDDEN = {"/": "%2F", "\x00": "%00"}
# A surrogate that is not an escaped byte (U+DC80..U+DCFF) has no encoding at all: a corrupt
# name can still claim one (an unpaired UTF-16 unit), and the writers would fail on it.
# (patterns, not compiled ones: `re` compiles each on its first use and keeps it, so
# importing this module for the CLI's `ls` compiles nothing; issue 14)
_LONE_SURROGATE = "[\ud800-\udc7f\udd00-\udfff]"
_SURROGATE = "[\udc80-\udcff]"
_ZIP_SPECIAL = "[\udc80-\udcff\\\\]"


def clean_component(name: str) -> str:
    """A name safe as one path component of a member: never empty, ``.``, ``..``, no ``/``."""
    if not name:
        return EMPTY_NAME
    if name in (".", ".."):
        return "%2E" * len(name)
    if re.search(_LONE_SURROGATE, name):
        name = re.sub(_LONE_SURROGATE, "\ufffd", name)
    if "/" in name or "\x00" in name:
        return "".join(_FORBIDDEN.get(c, c) for c in name)
    return name


def tar_component(name: str) -> str:
    """A component of a TAR member name; undecodable bytes stay raw (see module docstring)."""
    return clean_component(name)


def zip_component(name: str) -> str:
    """A component of a ZIP member name: valid UTF-8, no backslash (see module docstring)."""
    name = clean_component(name)
    if re.search(_ZIP_SPECIAL, name) is None:
        return name
    return re.sub(_ZIP_SPECIAL, _escape_char, name)


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if re.fullmatch(_SURROGATE, char):
        return f"%{ord(char) - 0xDC00:02X}"  # surrogateescape maps byte b to U+DC00 + b
    return f"%{ord(char):02X}"


def unique(name: str, taken: set[str], is_dir: bool) -> str:
    """``name``, or ``name (2)``, ``name (3)``... (before a file's extension), not in
    ``taken``; the result is added to ``taken``."""
    if name not in taken:
        taken.add(name)
        return name
    stem, dot, ext = name.rpartition(".")
    if is_dir or not dot or not stem:
        stem, dot, ext = name, "", ""
    n = 2
    while True:
        candidate = f"{stem} ({n}){dot}{ext}"
        if candidate not in taken:
            taken.add(candidate)
            return candidate
        n += 1


def printable(text: str) -> str:
    """``text`` with control characters and undecodable bytes shown as escapes."""
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return "".join(out)

"""File names written inside images (QCOW2 backing and data file names, VMDK extents and
parent hints, VHD and VHDX parent locators), turned into names the repository store may
open, or refused by name.

# References: VMware "Virtual Disk Format 1.1" ("Extent Descriptions": file names relative to
# the descriptor); Microsoft "VHD Image Format Specification" ("Parent Locator Entries":
# W2ru relative and W2ku absolute Windows paths, Mac X file URLs); [MS-VHDX] 2.6.2.6.1
# ("relative_path", "volume_path", "absolute_win32_path"); QEMU block.c path_has_protocol().

The store confines whatever name it is given to the repository root; these rules only say
which names are meaningful at all. Backslashes are Windows separators (``.\\base.vhd`` is
``base.vhd``); a drive letter, a UNC or volume path names a place on another machine and is
refused, never guessed at by its last component.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath

from filerestore.errors import BackingFileRefusedError, RepositoryEscapeError

# compiled by `re` on first use, not on import (issue 14)
_DRIVE = r"^[A-Za-z]:"
_SCHEME = r"^[A-Za-z][A-Za-z0-9+.-]*:"


def qemu_name(raw: bytes, what: str, image: str) -> str:
    """A file name a QCOW2 header stores (``what``: "backing file", "data file"): a plain
    name, no NUL byte, no protocol (anything with a ``:`` before its first ``/``, as QEMU's
    path_has_protocol() sees one: ``json:``, ``nbd:``, ``file:`` ...)."""
    if b"\0" in raw:
        raise BackingFileRefusedError(f"{image}: {what} name contains a NUL byte")
    name = os.fsdecode(raw)
    head = name.split("/", 1)[0]
    if ":" in head:
        raise BackingFileRefusedError(
            f"{image}: {what} {name!r} is a protocol name ({head.split(':', 1)[0]}:), "
            "only plain file names are allowed"
        )
    return name


def windows_name(raw: str, what: str, image: str) -> str:
    """A Windows path relative to ``image``'s directory as a POSIX name (for locators)."""
    if "\0" in raw or not raw:
        raise BackingFileRefusedError(f"{image}: {what} {raw!r} is empty or holds a NUL byte")
    if re.match(_DRIVE, raw) or raw.startswith(("\\\\", "//")):
        raise BackingFileRefusedError(
            f"{image}: {what} {raw!r} is an absolute Windows path, which names a place on "
            "another machine, not in the repository"
        )
    return plain_name(raw.replace("\\", "/"), what, image)


def plain_name(name: str, what: str, image: str) -> str:
    """A plain relative or absolute file name: no NUL, no ``scheme:`` before the first ``/``."""
    if "\0" in name or not name:
        raise BackingFileRefusedError(f"{image}: {what} {name!r} is empty or holds a NUL byte")
    head = name.split("/", 1)[0]
    if re.match(_SCHEME, head):
        raise BackingFileRefusedError(
            f"{image}: {what} {name!r} is a protocol name ({head.split(':', 1)[0]}:), only "
            "plain file names are allowed"
        )
    return name


def extent_name(raw: str, image: str) -> str:
    """A VMDK extent file name: relative to the descriptor, never climbing out of its
    directory (extents live beside their descriptor; VMware writes bare file names)."""
    name = windows_name(raw, "extent", image)
    path = PurePosixPath(name)
    if path.is_absolute():
        raise RepositoryEscapeError(
            f"{image}: extent {raw!r} is an absolute path; extents are named relative to "
            "their descriptor"
        )
    if ".." in path.parts:
        raise RepositoryEscapeError(f"{image}: extent {raw!r} climbs out of its directory (..)")
    return name


def file_url_path(raw: str, image: str) -> str:
    """The path of a Mac OS X locator's ``file://`` URL (absolute; the store confines it)."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(raw)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise BackingFileRefusedError(f"{image}: parent locator {raw!r} is not a local file URL")
    return plain_name(unquote(parts.path), "parent locator", image)

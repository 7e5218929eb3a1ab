"""Filesystems inside a volume, behind one interface (see :mod:`filerestore.fs.base`).

Detection is by on-disk signature only, never by partition type. Each backend module offers
``detect(reader) -> str | None`` (a pure signature check that imports no parsing library, so
detection works even when an optional extra is missing) and ``open_fs(reader) -> Filesystem``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import NamedTuple

from filerestore.blockio import Reader
from filerestore.errors import NoFilesystemError
from filerestore.fs.base import Filesystem
from filerestore.fs.corrupt import parse_errors
from filerestore.fs.entry import Entry, EntryKind

__all__ = [
    "Detection",
    "Entry",
    "EntryKind",
    "Filesystem",
    "detect",
    "detect_filesystem",
    "open_filesystem",
]

# Tried in this order. Signatures at fixed offsets that cannot collide come first; FAT goes
# last because its boot sector has the weakest signature (and NTFS/exFAT boot sectors also
# end in 0x55AA).
_BACKENDS = (
    "filerestore.fs.ext",
    "filerestore.fs.xfs",
    "filerestore.fs.btrfs",
    "filerestore.fs.ntfs",
    "filerestore.fs.exfat",
    "filerestore.fs.fat",
)


# A NamedTuple, not a frozen dataclass: creating a dataclass compiles its methods,
# which every CLI start-up would pay for (issue 14)
class Detection(NamedTuple):
    """A filesystem recognised on a reader: its kind, and the backend that opens it (so a
    caller that detected first does not detect again to open)."""

    kind: str
    backend: ModuleType

    def open(self, reader: Reader) -> Filesystem[object]:
        with parse_errors(self.backend.__name__.rsplit(".", 1)[1], "open the filesystem"):
            fs: Filesystem[object] = self.backend.open_fs(reader)
        return fs


def detect(reader: Reader) -> Detection | None:
    """The filesystem on ``reader``, recognised by signature, or None. Backends are imported
    in order until one recognises it (an ext4 volume loads no NTFS or FAT library)."""
    for name in _BACKENDS:
        module = importlib.import_module(name)
        with parse_errors(module.__name__.rsplit(".", 1)[1], "detect the filesystem"):
            kind: str | None = module.detect(reader)
        if kind:
            return Detection(kind, module)
    return None


def detect_filesystem(reader: Reader) -> str | None:
    """The filesystem kind on ``reader`` ("ext4", "ntfs", ...) or None."""
    found = detect(reader)
    return found.kind if found else None


def open_filesystem(reader: Reader) -> Filesystem[object]:
    """Open the filesystem on ``reader``; NoFilesystemError when none is recognised."""
    found = detect(reader)
    if found is None:
        raise NoFilesystemError(
            "no supported filesystem found (tried: ext, xfs, btrfs, ntfs, exfat, fat)"
        )
    return found.open(reader)

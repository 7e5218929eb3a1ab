"""Errors of one file of a chain, named by that file: the prefix every format reader adds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from filerestore.errors import (
    BackingFileRefusedError,
    CorruptImageError,
    ImageError,
    UnsupportedImageError,
)


@contextmanager
def naming_file(name: str, *kinds: type[ImageError]) -> Iterator[None]:
    """Re-raise an error of ``kinds`` as the same class, its message prefixed with ``name``
    (the file's path in the repository) unless the message names the file already."""
    try:
        yield
    except kinds as exc:
        if name in str(exc):
            raise
        raise type(exc)(f"{name}: {exc}") from exc


#: what opening a file of a chain refuses it with (a VHD or VHDX reader names the file)
OPEN_ERRORS: tuple[type[ImageError], ...] = (
    CorruptImageError,
    UnsupportedImageError,
    BackingFileRefusedError,
)

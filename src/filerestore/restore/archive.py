"""Archive streams of one or several paths of a guest filesystem: ZIP, TAR, TAR.GZ.

:func:`archive_stream` checks every path before it returns (a missing path raises then, so
an adapter can still answer 404), and returns an iterator of bytes that reads the tree as it
is consumed: no temporary files, memory flat in file sizes. Formats, names and metadata are
described in :mod:`~filerestore.restore.archive_zip`, :mod:`~filerestore.restore.archive_tar`
and :mod:`~filerestore.restore.names`; what goes in, in :mod:`~filerestore.restore.archive_members`.

Before the first byte the tree is counted once (metadata only, :func:`precount`): an archive
with more entries than ``max_entries`` or more bytes of file contents than ``max_bytes`` is
refused with ArchiveTooLargeError while an adapter can still answer an error status. A TAR
keeps a file's holes as holes (a PAX 1.0 sparse member, see
:mod:`~filerestore.restore.archive_tar`); a ZIP cannot.

An entry that cannot be read (an unreadable directory or file, a symlink no extractor could
create) is left out and listed in ``FILERESTORE-ERRORS.txt``, the archive's last member
(see :mod:`~filerestore.restore.archive_members`). Other errors after the first byte cannot
become an error status any more: the iterator raises
:class:`~filerestore.errors.ArchiveAbortedError` (or ArchiveTooLargeError past the entry
limit) and stops without writing the archive's end, so the client holds an archive that
every extractor rejects, never one with a silently short member. An adapter should close the
connection without the final chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from filerestore.errors import (
    ArchiveAbortedError,
    ArchiveTooLargeError,
    FileRestoreError,
    InvalidParameterError,
)
from filerestore.fs.base import Filesystem
from filerestore.fs.entry import EntryKind
from filerestore.restore.archive_members import DEFAULT_MAX_ENTRIES, Member, iter_members
from filerestore.restore.archive_tar import DEFAULT_GZIP_LEVEL, gzip_stream, tar_stream
from filerestore.restore.archive_zip import zip_stream
from filerestore.restore.browse import Root, resolve_root
from filerestore.restore.file_data import CHUNK_SIZE
from filerestore.restore.names import ROOT_NAME, clean_component, tar_component, zip_component
from filerestore.restore.partial import Failure

__all__ = ["ArchiveFormat", "ArchiveOptions", "Member", "archive_filename", "archive_stream"]

MAX_ROOTS = 1000  # paths in one multi-select download


class ArchiveFormat(StrEnum):
    ZIP = "zip"
    TAR = "tar"
    TAR_GZ = "tar.gz"

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self]


_MEDIA_TYPES = {
    ArchiveFormat.ZIP: "application/zip",
    ArchiveFormat.TAR: "application/x-tar",
    ArchiveFormat.TAR_GZ: "application/gzip",
}


@dataclass(frozen=True, slots=True)
class ArchiveOptions:
    max_entries: int | None = DEFAULT_MAX_ENTRIES
    #: bytes of file contents (as listed) the archive may hold; None: no limit
    max_bytes: int | None = None
    #: count the tree before the first byte and refuse one over a limit
    precount: bool = True
    #: TAR only: a file with holes as a sparse member (PAX 1.0), its holes not sent
    sparse: bool = True
    deflate: bool = False  # ZIP only: deflate files instead of storing them
    gzip_level: int = DEFAULT_GZIP_LEVEL  # TAR.GZ only
    chunk_size: int = CHUNK_SIZE


def archive_stream(
    fs: Filesystem[Any],
    paths: Sequence[str],
    fmt: ArchiveFormat | str,
    options: ArchiveOptions | None = None,
) -> Generator[bytes, None, None]:
    """An archive of ``paths`` (each under its own name), as a generator of bytes (close it
    to stop early)."""
    fmt = _format(fmt)
    options = options or ArchiveOptions()
    if not paths:
        raise InvalidParameterError("no path to put into the archive")
    if len(paths) > MAX_ROOTS:
        raise InvalidParameterError(f"at most {MAX_ROOTS} paths in one archive")
    if not 0 <= options.gzip_level <= 9:
        raise InvalidParameterError(f"gzip level must be 0..9, not {options.gzip_level}")
    roots = [resolve_root(fs, path) for path in paths]
    component = zip_component if fmt is ArchiveFormat.ZIP else tar_component
    failures: list[Failure] = []  # filled as the stream goes, listed at its end
    if options.precount:
        precount(fs, roots, component, options.max_entries, options.max_bytes)
    members = iter_members(fs, roots, component, options.max_entries, failures)
    if fmt is ArchiveFormat.ZIP:
        stream = zip_stream(fs, members, options.deflate, options.chunk_size, failures)
    else:
        stream = tar_stream(fs, members, options.chunk_size, failures, options.sparse)
        if fmt is ArchiveFormat.TAR_GZ:
            stream = gzip_stream(stream, options.gzip_level)
    return _aborting(stream)


def precount(
    fs: Filesystem[Any],
    roots: Sequence[Root],
    component: Callable[[str], str],
    max_entries: int | None,
    max_bytes: int | None,
) -> tuple[int, int]:
    """Walk the archive's tree once without reading a file: ArchiveTooLargeError as soon as
    it holds more than ``max_entries`` entries or ``max_bytes`` bytes of file contents (as
    listed), so an archive over a limit is refused before its first byte instead of cut
    short. Metadata only, memory as the stream's own walk; (entries, bytes) when it fits."""
    entries = size = 0
    for member in iter_members(fs, roots, component, max_entries, []):
        entries += 1
        if member.entry.kind is EntryKind.FILE:
            size += member.entry.size
            if max_bytes is not None and size > max_bytes:
                raise ArchiveTooLargeError(
                    f"the download holds more than {max_bytes} bytes of file contents (the limit)"
                )
    return entries, size


def _aborting(stream: Iterator[bytes]) -> Generator[bytes, None, None]:
    """Reraise a failure after the first byte as ArchiveAbortedError (see module docstring)."""
    try:
        yield from stream
    except (ArchiveAbortedError, ArchiveTooLargeError):
        raise
    except FileRestoreError as exc:
        raise ArchiveAbortedError(
            f"the archive is incomplete and must be discarded: {exc}"
        ) from exc


def archive_filename(
    paths: Sequence[str], fmt: ArchiveFormat | str, context: Sequence[str | None] = ()
) -> str:
    """A download file name: ``context`` (what the backup is: VM, disk, date), then the
    single root's name, or for several roots their common folder's and how many, joined by
    ``_``, each part a clean file-name component (``web01_disk0_2026-11-30_alice.zip``)."""
    fmt = _format(fmt)
    split = [[p for p in path.split("/") if p not in ("", ".")] for path in paths]
    if len(split) == 1:
        stem = clean_component(split[0][-1]) if split[0] else ROOT_NAME
    else:
        common = _common_prefix(split)
        stem = f"{clean_component(common[-1]) if common else ROOT_NAME}-{len(split)}-items"
    parts = [clean_component(c) for c in context if c] + [stem]
    return f"{'_'.join(parts)}.{fmt.value}"


def _common_prefix(paths: list[list[str]]) -> list[str]:
    out: list[str] = []
    for names in zip(*paths, strict=False):
        if any(n != names[0] for n in names):
            break
        out.append(names[0])
    return out if all(len(p) > len(out) for p in paths) else out[:-1]


def _format(fmt: ArchiveFormat | str) -> ArchiveFormat:
    try:
        return ArchiveFormat(fmt)
    except ValueError:
        choices = ", ".join(f.value for f in ArchiveFormat)
        raise InvalidParameterError(f"unknown archive format {fmt!r}; choose {choices}") from None

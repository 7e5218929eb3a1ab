"""ZIP streams of archive members, with ZIP64 on every file.

# References: PKWARE APPNOTE.TXT 6.3.10 (data descriptors 4.3.9, ZIP64 4.3.14 and 4.5.3,
# general purpose bit 11 for UTF-8 names); Info-ZIP extra field 0x5455 (extended timestamp)
# and its Unix mode convention (the upper 16 bits of external attributes hold st_mode).

Written by the stdlib's ``zipfile`` into a pipe it cannot seek: zipfile then streams each
member with a data descriptor (sizes and CRC after the data), and every file is opened with
``force_zip64`` so files over 4 GiB need no size known in advance; the end records switch to
ZIP64 by themselves past 65,535 entries or 4 GiB of offsets. After every write zipfile makes,
the generator hands the bytes on, so memory stays at one chunk plus the central directory
(one ZipInfo per member, which ZIP needs written at the end).

zipstream-ng was the first choice, but its 1.9 API cannot set a member's time or mode when the
data comes from an iterator (its issue #27), and both must be kept.

Metadata: Unix mode (type and permissions, no setuid/setgid/sticky) in the external
attributes with "made by Unix"; the modification time as a DOS time in UTC (2-second steps,
clamped to 1980..2107) plus the exact second in an extended-timestamp field, which 7-Zip and
Info-ZIP prefer. Symlinks are stored the Info-ZIP way: a member whose mode says symlink and
whose data is the link target (7-Zip and unzip recreate the link; Python's zipfile extracts a
small file holding the target). Storing is the default; deflate is optional.
"""

from __future__ import annotations

import functools
import stat
import struct
import time
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

from filerestore.fs.base import Filesystem
from filerestore.fs.entry import EntryKind
from filerestore.restore.archive_members import Member, member_chunks
from filerestore.restore.partial import Failure

UNIX = 3  # "version made by" host system: Unix, so extractors read the mode bits
MSDOS_DIRECTORY = 0x10
EXTENDED_TIMESTAMP = 0x5455  # Info-ZIP "UT" extra field
DOS_MIN = (1980, 1, 1, 0, 0, 0)
DOS_MAX = (2107, 12, 31, 23, 59, 58)

_FORMAT_BITS = {
    EntryKind.FILE: stat.S_IFREG,
    EntryKind.DIR: stat.S_IFDIR,
    EntryKind.SYMLINK: stat.S_IFLNK,
}


class _Pipe:
    """What zipfile writes into; the generator empties it after every call. No ``tell``, so
    zipfile treats it as unseekable and streams with data descriptors."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


# The ZipInfo of every member stays in memory until the central directory is written (about
# 0.7 KiB each); members mostly share times and modes, so those values are shared objects.
@functools.lru_cache(maxsize=4096)
def _times(seconds: int) -> tuple[tuple[int, ...], bytes]:
    """DOS date_time (UTC, clamped) and the extended-timestamp extra field for a time."""
    date_time = min(max(tuple(time.gmtime(max(seconds, 0))[:6]), DOS_MIN), DOS_MAX)
    extra = b""
    if -(2**31) <= seconds < 2**31:  # the UT field holds a signed 32-bit time
        extra = struct.pack("<HHBi", EXTENDED_TIMESTAMP, 5, 1, seconds)
    return date_time, extra


@functools.lru_cache(maxsize=256)
def _external_attr(kind: EntryKind, permissions: int) -> int:
    attr = (_FORMAT_BITS[kind] | permissions) << 16
    return attr | MSDOS_DIRECTORY if kind is EntryKind.DIR else attr


def zip_info(member: Member, deflate: bool) -> zipfile.ZipInfo:
    """The ZIP header of a member (a pure transform)."""
    entry = member.entry
    date_time, extra = _times((entry.mtime_ns or 0) // 1_000_000_000)
    is_dir = entry.kind is EntryKind.DIR
    info = zipfile.ZipInfo(member.name + ("/" if is_dir else ""), date_time)  # type: ignore[arg-type]
    info.create_system = UNIX
    info.external_attr = _external_attr(entry.kind, member.permissions)
    info.extra = extra
    if is_dir:
        info.CRC = info.compress_size = info.file_size = 0  # zipfile.mkdir expects them set
    elif deflate and entry.kind is EntryKind.FILE:
        info.compress_type = zipfile.ZIP_DEFLATED
    if entry.kind is EntryKind.FILE:
        info.file_size = entry.size
    return info


def zip_stream(
    fs: Filesystem[Any],
    members: Iterable[Member],
    deflate: bool = False,
    chunk_size: int = 1 << 20,
    failures: list[Failure] | None = None,
) -> Iterator[bytes]:
    """A ZIP of ``members``, yielded as it is read; a file that cannot be read is left out
    and appended to ``failures``."""
    failures = [] if failures is None else failures
    pipe = _Pipe()
    archive = zipfile.ZipFile(pipe, "w", allowZip64=True)  # type: ignore[call-overload]
    try:
        for member in members:
            info = zip_info(member, deflate)
            if member.entry.kind is EntryKind.DIR:
                archive.mkdir(info)
                archive.NameToInfo.clear()
                yield pipe.drain()
                continue
            chunks = None
            if member.entry.kind is EntryKind.FILE:
                chunks = member_chunks(fs, member, failures, chunk_size)
                if chunks is None:
                    continue
            with archive.open(info, "w", force_zip64=True) as out:
                if chunks is None:  # a symlink: its target is its data
                    out.write((member.entry.target or "").encode("utf-8", "surrogateescape"))
                else:
                    for chunk in chunks:
                        out.write(chunk)
                        data = pipe.drain()
                        if data:
                            yield data
            # zipfile keeps a name index only to warn about duplicates (names here are
            # unique); dropping it saves about a tenth of the per-member memory
            archive.NameToInfo.clear()
            yield pipe.drain()
        archive.close()
        yield pipe.drain()
    finally:
        # an aborted stream must not end with a central directory: drop what zipfile keeps
        archive.filelist.clear()
        archive.fp = None

"""TAR (POSIX.1-2001 PAX) and TAR.GZ streams of archive members.

# References: POSIX.1-2001 pax interchange format (IEEE Std 1003.1, "pax"), as written by
# the stdlib's tarfile (TarInfo.tobuf); RFC 1952 (gzip) as written by zlib with wbits=31.

Each header (with its PAX extended header when a name, link target, size or time needs one)
comes from ``tarfile.TarInfo.tobuf``; this module only frames the stream around it, as
``TarFile`` does: file data padded to 512-byte blocks, then two zero blocks, then zeros to a
whole record. ``TarFile.addfile`` is not used because it copies a whole file in one call, and
a generator cannot hand out bytes from inside that call.

Times: ``mtime`` goes into the PAX header exactly (``seconds.nanoseconds``) when it has a
fraction. Owners: numeric uid/gid, no user or group names (the guest's names mean nothing
on the host). Undecodable name bytes are kept raw with ``hdrcharset=BINARY``. A file with
holes is a sparse member, its holes not sent (:mod:`~filerestore.restore.archive_sparse`).
"""

from __future__ import annotations

import itertools
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from filerestore.fs.base import Filesystem
from filerestore.fs.entry import EntryKind
from filerestore.restore.archive_members import (
    Member,
    member_chunks,
    primed,
    rest_chunks,
    unless_skipped,
)
from filerestore.restore.archive_sparse import (
    SparseLayout,
    region_chunks,
    sparse_info,
    sparse_layout,
)
from filerestore.restore.partial import Failure

BLOCK = tarfile.BLOCKSIZE  # 512
RECORD = tarfile.RECORDSIZE  # 20 blocks, what GNU tar and tarfile pad the end to
ENCODING = "utf-8"
ERRORS = "surrogateescape"  # undecodable names: surrogate escapes back to their raw bytes
GZIP_WBITS = 31  # zlib: deflate inside a gzip wrapper
DEFAULT_GZIP_LEVEL = 6

_TYPES = {EntryKind.FILE: tarfile.REGTYPE, EntryKind.DIR: tarfile.DIRTYPE}


def tar_info(member: Member) -> tarfile.TarInfo:
    """The TAR header of a member (a pure transform)."""
    entry = member.entry
    info = tarfile.TarInfo(member.name)
    if entry.kind is EntryKind.SYMLINK:
        info.type = tarfile.SYMTYPE
        info.linkname = entry.target or ""
    else:
        info.type = _TYPES[entry.kind]
    info.size = entry.size if entry.kind is EntryKind.FILE else 0
    info.mode = member.permissions
    info.uid = entry.uid or 0
    info.gid = entry.gid or 0
    info.uname = info.gname = ""
    mtime = entry.mtime_ns or 0
    seconds, nanos = divmod(mtime, 1_000_000_000)
    if nanos:
        info.mtime = mtime / 1e9  # rounded into the ustar field; exact in the PAX record
        info.pax_headers = {"mtime": f"{seconds}.{nanos:09d}"}
    else:
        info.mtime = seconds
    return info


def tar_stream(
    fs: Filesystem[Any],
    members: Iterable[Member],
    chunk_size: int = 1 << 20,
    failures: list[Failure] | None = None,
    sparse: bool = True,
) -> Iterator[bytes]:
    """An uncompressed PAX TAR of ``members``, yielded as it is read; a file that cannot be
    read is left out and appended to ``failures``. With ``sparse``, a file with holes is a
    sparse member (:mod:`~filerestore.restore.archive_sparse`)."""
    failures = [] if failures is None else failures
    written = 0
    for index, member in enumerate(members):
        info = tar_info(member)
        chunks: Iterator[bytes] | None = None
        area = 0
        if member.entry.kind is EntryKind.FILE and member.entry.size:
            prepared = _file_data(fs, member, info, index, failures, chunk_size, sparse)
            if prepared is None:
                continue
            info, chunks, area = prepared
        header = info.tobuf(tarfile.PAX_FORMAT, ENCODING, ERRORS)
        written += len(header)
        yield header
        if chunks is not None:
            for chunk in chunks:
                written += len(chunk)
                yield chunk
            pad = -area % BLOCK
            if pad:
                written += pad
                yield bytes(pad)
    end = 2 * BLOCK
    end += -(written + end) % RECORD
    yield bytes(end)


def _file_data(
    fs: Filesystem[Any],
    member: Member,
    info: tarfile.TarInfo,
    index: int,
    failures: list[Failure],
    chunk_size: int,
    sparse: bool,
) -> tuple[tarfile.TarInfo, Iterator[bytes], int] | None:
    """A file member's header, data area and the area's length; None (the failure recorded)
    when the file cannot be read, which is known before its header is written."""
    size = member.entry.size
    if sparse and member.data is None:
        path = member.entry.path

        def read() -> tuple[SparseLayout | None, Iterator[bytes]]:
            reader = fs.open(path)
            layout = sparse_layout(reader, size) if reader.size == size else None
            if layout is None:
                return None, iter(())
            return layout, primed(region_chunks(reader, path, layout, chunk_size))

        opened = unless_skipped(path, failures, read)
        if opened is None:
            return None
        layout, regions = opened
        if layout is not None:
            data = itertools.chain((layout.map_bytes,), rest_chunks(path, size, regions))
            return sparse_info(info, layout, index), data, layout.area
    chunks = member_chunks(fs, member, failures, chunk_size)
    return None if chunks is None else (info, chunks, size)


def gzip_stream(data: Iterable[bytes], level: int = DEFAULT_GZIP_LEVEL) -> Iterator[bytes]:
    """``data`` compressed as one gzip member, yielded as compressed output appears."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, GZIP_WBITS)
    for chunk in data:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()

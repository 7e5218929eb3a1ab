"""The one read interface every layer composes: ``size`` and ``read_at(offset, length)``.

Contract (for every :class:`Reader`):

- ``read_at`` is positional: there is no shared seek position, so one reader is safe to use
  from many threads at once.
- It returns exactly ``min(length, size - offset)`` bytes for ``0 <= offset <= size`` and
  ``b""`` at or past the end; a negative offset or length raises ``ValueError``.
- A reader that cannot fulfil a read because the data behind it is corrupt raises
  :class:`filerestore.errors.CorruptImageError`, never returns short data silently.
"""

from __future__ import annotations

import os
import stat
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol, Self, runtime_checkable

from filerestore.errors import (
    CorruptImageError,
    ImageError,
    ImageNotFoundError,
    RepositoryIOError,
)


@runtime_checkable
class Reader(Protocol):
    """A read-only, random-access byte source of a fixed size."""

    @property
    def size(self) -> int: ...

    def read_at(self, offset: int, length: int) -> bytes: ...


def clamp(size: int, offset: int, length: int) -> int:
    """Bytes a read of ``length`` at ``offset`` returns from a source of ``size`` bytes."""
    if offset < 0 or length < 0:
        raise ValueError(f"negative offset or length: {offset}, {length}")
    return max(0, min(length, size - offset))


class Closing:
    """Base of what holds host resources until ``close()``: ``with x:`` closes x at its end."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SizedReader:
    """Base of readers of a fixed size: keeps the :class:`Reader` contract once.

    ``read_at`` refuses negative arguments, clips a read at the end, and answers an empty
    read itself; a subclass sets ``_size`` and implements ``_read(offset, n)``, which is
    only called with ``0 < n <= size - offset``.
    """

    _size: int

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        n = clamp(self._size, offset, length)
        return self._read(offset, n) if n else b""

    def _read(self, offset: int, n: int) -> bytes:
        raise NotImplementedError


class FileReader(SizedReader, Closing):
    """A regular host file read with ``os.pread``. Owns its descriptor; close it when done.

    ``pread`` and ``pread_into`` name what is being read, so a file too short for a
    structure it should hold is reported as corrupt with that name, never read as zeros.
    """

    OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd = self._open(self.path)
        st = os.fstat(self._fd)
        if not stat.S_ISREG(st.st_mode):
            self.close()
            raise ImageNotFoundError(f"not a regular file: {self.path}")
        self._size = st.st_size

    def _open(self, path: Path) -> int:
        try:
            return os.open(path, self.OPEN_FLAGS)
        except FileNotFoundError as exc:
            raise ImageNotFoundError(f"no such file: {path}") from exc
        except OSError as exc:
            raise ImageNotFoundError(f"cannot open {path}: {exc.strerror}") from exc

    @property
    def fd(self) -> int:
        return self._fd

    def pread_into(self, buffer: memoryview, offset: int, what: str) -> None:
        """Fill ``buffer`` from ``offset``; a file too short for it is corrupt, not zeros."""
        want = len(buffer)
        if offset + want > self._size:
            raise CorruptImageError(
                f"{self.path}: {what} at {offset:#x} (+{want}) is past the end of the file "
                f"({self._size} bytes)"
            )
        got = 0
        while got < want:
            try:
                n = os.preadv(self._fd, [buffer[got:]], offset + got)
            except OSError as exc:
                raise self._host_error(exc, what) from exc
            if n == 0:
                raise CorruptImageError(f"{self.path} is shorter than it was when opened")
            got += n

    def pread(self, offset: int, length: int, what: str) -> bytes:
        if offset + length <= self._size:
            try:
                data = os.pread(self._fd, length, offset)
            except OSError as exc:
                raise self._host_error(exc, what) from exc
            if len(data) == length:
                return data
        buf = bytearray(length)
        self.pread_into(memoryview(buf), offset, what)
        return bytes(buf)

    def read_into(self, dst: memoryview, offset: int) -> None:
        self.pread_into(dst, offset, "data")

    def _host_error(self, exc: OSError, what: str) -> RepositoryIOError:
        # EIO, a stale NFS handle, ...: the storage failed, which is neither corrupt data
        # nor a missing file (and a bare OSError would reach the API as a 500)
        return RepositoryIOError(f"{self.path}: reading the {what} failed: {exc.strerror}")

    def _read(self, offset: int, n: int) -> bytes:
        return self.pread(offset, n, "data")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class BytesReader(SizedReader):
    """A reader over bytes held in memory (small structures, tests)."""

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._size = len(self._data)

    def _read(self, offset: int, n: int) -> bytes:
        return self._data[offset : offset + n]


class ZeroReader(SizedReader):
    """``size`` bytes of zeros (an empty backing, a hole)."""

    def __init__(self, size: int) -> None:
        self._size = size

    def _read(self, offset: int, n: int) -> bytes:
        return bytes(n)


class SliceReader(SizedReader):
    """``size`` bytes of ``parent`` starting at ``offset`` (a partition, an extent)."""

    def __init__(self, parent: Reader, offset: int, size: int) -> None:
        if offset < 0 or size < 0:
            raise ValueError("negative slice")
        if offset + size > parent.size:
            raise CorruptImageError(
                f"slice {offset}+{size} ends past its source ({parent.size} bytes)"
            )
        self.parent = parent
        self.offset = offset
        self._size = size

    def _read(self, offset: int, n: int) -> bytes:
        return self.parent.read_at(self.offset + offset, n)


class ReaderFile:
    """A file object over a reader (``read``, ``seek``, ``tell``, and ``get_size`` and
    ``get_offset``, which libyal's file-object bridge calls), for parsing libraries.

    It has a position, so it has exactly one user: one library handle, only ever called
    under its Filesystem's lock. It takes no lock of its own and is not an ``io.RawIOBase``:
    libraries call it for every MFT record or inode they read, and a lock, the io machinery
    and a trip through the reader stack per call cost a sixth of an NTFS listing.
    """

    #: small reads (MFT records, inodes, directory entries) are served from the last
    #: aligned chunk read, without a call into the reader stack for each
    CHUNK = 64 * 1024
    SMALL_READ = 4096

    def __init__(self, reader: Reader) -> None:
        self._read_at = reader.read_at
        self._size = reader.size
        self._pos = 0
        self._chunk_start = -1
        self._chunk = b""
        self.closed = False

    def read(self, size: int | None = -1) -> bytes:
        pos = self._pos
        if size is None or size < 0:
            size = max(0, self._size - pos)
        elif size <= self.SMALL_READ:
            offset = pos - self._chunk_start
            if offset < 0 or offset + size > len(self._chunk):
                start = pos - pos % self.CHUNK
                self._chunk_start, self._chunk = start, self._read_at(start, self.CHUNK)
                offset = pos - start
            if offset + size <= len(self._chunk):  # else: the end of the volume, below
                self._pos = pos + size
                return self._chunk[offset : offset + size]
        data = self._read_at(pos, size)
        self._pos = pos + len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        memoryview(buffer)[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            pos = offset
        elif whence == 1:
            pos = self._pos + offset
        elif whence == 2:
            pos = self._size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        if pos < 0:
            raise OSError("seek before start")
        self._pos = pos
        return pos

    def tell(self) -> int:
        return self._pos

    def get_offset(self) -> int:
        return self._pos

    def get_size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


class CachedReader(SizedReader):
    """Small reads of ``parent`` served from an LRU of aligned blocks; large reads pass through.

    Filesystem libraries read metadata (inodes, directory blocks, MFT records) in many small
    calls, often the same block again and again; each call otherwise walks every layer below
    (volume slice, qcow2 chain) in Python. Reads of at least two blocks (file data) skip the
    cache, so they neither evict metadata nor pay for a copy. Safe from several threads.
    """

    def __init__(self, parent: Reader, block_size: int = 64 * 1024, blocks: int = 64) -> None:
        self.parent = parent
        self._block_size = block_size
        self._blocks = blocks
        self._lru: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._size = parent.size

    def _read(self, offset: int, n: int) -> bytes:
        bs = self._block_size
        if n >= 2 * bs:
            return self.parent.read_at(offset, n)
        first, last = offset // bs, (offset + n - 1) // bs
        start = offset - first * bs
        try:
            with self._lock:
                if first == last:
                    return self._block(first)[start : start + n]
                data = b"".join(self._block(i) for i in range(first, last + 1))
        except ImageError:
            # the damage may lie in the rest of the block: the bytes asked for decide
            return self.parent.read_at(offset, n)
        return data[start : start + n]

    def _block(self, index: int) -> bytes:
        data = self._lru.get(index)
        if data is not None:
            self._lru.move_to_end(index)
            return data
        data = self.parent.read_at(index * self._block_size, self._block_size)
        self._lru[index] = data
        if len(self._lru) > self._blocks:
            self._lru.popitem(last=False)
        return data

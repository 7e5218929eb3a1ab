"""An image file on the host, read with ``os.pread``; as a layer it is a raw disk image.

# References: none (a raw image is the guest disk byte for byte).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from filerestore.blockio import SizedReader
from filerestore.errors import BackingFileRefusedError, CorruptImageError, ImageNotFoundError

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_CLOEXEC", 0)
    # the path was resolved and checked before: a symlink swapped in since is not followed,
    # and a FIFO swapped in does not block the open
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
)


class ImageFile(SizedReader):
    """One file of a chain: owns its descriptor. Also the reader of a raw image."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd = os.open(path, _OPEN_FLAGS)
        except FileNotFoundError as exc:
            raise ImageNotFoundError(f"image file not found: {path}") from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise BackingFileRefusedError(f"image file became a symlink: {path}") from exc
            raise ImageNotFoundError(f"cannot open image file {path}: {exc.strerror}") from exc
        st = os.fstat(self._fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(self._fd)
            self._fd = -1
            raise ImageNotFoundError(f"not a regular file: {path}")
        self._size = st.st_size

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
            n = os.preadv(self._fd, [buffer[got:]], offset + got)
            if n == 0:
                raise CorruptImageError(f"{self.path} is shorter than it was when opened")
            got += n

    def pread(self, offset: int, length: int, what: str) -> bytes:
        if offset + length <= self._size:
            data = os.pread(self._fd, length, offset)
            if len(data) == length:
                return data
        buf = bytearray(length)
        self.pread_into(memoryview(buf), offset, what)
        return bytes(buf)

    def read_into(self, dst: memoryview, offset: int) -> None:
        self.pread_into(dst, offset, "data")

    def _read(self, offset: int, n: int) -> bytes:
        return self.pread(offset, n, "data")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

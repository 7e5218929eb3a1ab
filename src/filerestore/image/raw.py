"""An image file on the host, read with ``os.pread``; as a layer it is a raw disk image.

# References: none (a raw image is the guest disk byte for byte).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from filerestore.blockio import FileReader
from filerestore.errors import BackingFileRefusedError, ImageNotFoundError


class ImageFile(FileReader):
    """One file of a chain: owns its descriptor. Also the reader of a raw image."""

    OPEN_FLAGS = (
        FileReader.OPEN_FLAGS
        # the path was resolved and checked before: a symlink swapped in since is not
        # followed, and a FIFO swapped in does not block the open
        | getattr(os, "O_NOFOLLOW", 0)
        | getattr(os, "O_NONBLOCK", 0)
    )

    def _open(self, path: Path) -> int:
        try:
            return os.open(path, self.OPEN_FLAGS)
        except FileNotFoundError as exc:
            raise ImageNotFoundError(f"image file not found: {path}") from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise BackingFileRefusedError(f"image file became a symlink: {path}") from exc
            raise ImageNotFoundError(f"cannot open image file {path}: {exc.strerror}") from exc

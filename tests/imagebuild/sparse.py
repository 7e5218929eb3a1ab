"""Copies of test images that keep their holes.

A test that needs an image in a repository of its own copies one from the cache. The images
are mostly holes (a 320 MiB XFS image holds 70 MiB of data), and ``shutil.copyfile`` writes
the holes out as zeros: a few such copies filled a CI machine's disk. These copy only the
data runs the source file has (``SEEK_DATA``/``SEEK_HOLE``) and set the length, so a copy
takes the space its source takes.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

_CHUNK = 8 << 20


def copy_sparse(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> str:
    """Copy the contents of ``src`` to ``dst`` (as ``shutil.copyfile``), keeping its holes."""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        size = os.fstat(fin.fileno()).st_size
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fin.fileno(), pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # nothing but a hole up to the end
                    break
                raise
            end = os.lseek(fin.fileno(), start, os.SEEK_HOLE)
            _copy_range(fin.fileno(), fout.fileno(), start, end)
            pos = end
        fout.truncate(size)
    return os.fspath(dst)


def copy_sparse_with_mode(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> str:
    """``copy_sparse`` plus the permission bits and times, as ``shutil.copy2`` would."""
    copy_sparse(src, dst)
    shutil.copystat(src, dst)
    return os.fspath(dst)


def copytree_sparse(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """``shutil.copytree`` whose files keep their holes."""
    return Path(shutil.copytree(src, dst, copy_function=copy_sparse_with_mode))


def _copy_range(fin: int, fout: int, start: int, end: int) -> None:
    pos = start
    while pos < end:
        count = min(_CHUNK, end - pos)
        try:
            done = os.copy_file_range(fin, fout, count, pos, pos)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            done = os.pwrite(fout, os.pread(fin, count, pos), pos)
        if done <= 0:
            raise OSError(errno.EIO, f"copy stopped at byte {pos} of {end}")
        pos += done

"""The one table from filerestore's error categories to the errno a FUSE request fails with.

Like the CLI's exit codes, a class inherits the errno of the nearest class listed here.
"""

from __future__ import annotations

import errno

from filerestore import errors

ERRNOS: dict[type[errors.FileRestoreError], int] = {
    errors.FileRestoreError: errno.EIO,
    errors.NotFoundError: errno.ENOENT,
    errors.NotADirectoryError_: errno.ENOTDIR,
    errors.IsADirectoryError_: errno.EISDIR,
    errors.NotASymlinkError: errno.EINVAL,
    errors.UsageError: errno.EINVAL,
    errors.SymlinkLoopError: errno.ELOOP,
    errors.PathRefusedError: errno.EINVAL,
    errors.RequestRefusedError: errno.EACCES,
    errors.HostileImageError: errno.EACCES,
    # a corrupt or unsupported structure (or an EFS-encrypted file): the data is unreadable
    errors.ImageError: errno.EIO,
}


def errno_of(exc: errors.FileRestoreError) -> int:
    for cls in type(exc).__mro__:
        code = ERRNOS.get(cls)
        if code is not None:
            return code
    return errno.EIO

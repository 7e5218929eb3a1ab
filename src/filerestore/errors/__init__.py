"""The one error tree of filerestore, arranged by who is at fault.

Every error a user can meet is a subclass of :class:`FileRestoreError`. Each class names its
``code`` (a stable machine-readable name) in its ``class`` line, with the HTTP status the API
answers with and the exit code the CLI ends with where they differ from its category's: a
subclass inherits both unless it says otherwise.
Adapters read these attributes and never inspect messages. ``docs/errors.md`` is generated
from this tree (``python -m filerestore.docgen``; a test keeps it current).

::

    FileRestoreError
    ├── RequestError                    the request is at fault
    │   ├── UsageError                  incomplete, ambiguous or out-of-range (400, exit 2)
    │   │   ├── AmbiguousVolumeError (409)
    │   │   ├── NotADirectoryError_, IsADirectoryError_, NotASymlinkError
    │   │   ├── InvalidParameterError, InvalidRepositoryError
    │   │   ├── InvalidCursorError
    │   │   │   └── StaleCursorError
    │   │   ├── RangeNotSatisfiableError (416)
    │   │   └── DownloadTooLargeError (413)
    │   │       └── ArchiveTooLargeError
    │   ├── NotFoundError               something named does not exist (404, exit 3)
    │   │   ├── ImageNotFoundError, VolumeNotFoundError, PathNotFoundError
    │   │   ├── RepositoryNotFoundError, BackupNotFoundError, BackupFileMissingError
    │   │   ├── MountNotFoundError, TokenNotFoundError
    │   │   └── TargetNotFoundError, JobNotFoundError
    │   ├── RequestRefusedError         reaches outside what it may (400, exit 5)
    │   │   ├── PathRefusedError, SymlinkLoopError
    │   │   └── DestinationEscapeError, DestinationExistsError
    │   ├── ConflictError               the current state does not allow it (409, exit 1)
    │   │   ├── RepositoryExistsError, RepositoryInUseError, TokenExistsError
    │   │   ├── MountStateError, SessionLimitError (429), SessionQuotaError (429)
    │   │   ├── JobStateError
    │   │   └── DownloadLimitError (429)
    │   ├── AuthenticationError (401, exit 1)
    │   └── PermissionDeniedError (403, exit 1)
    ├── ImageError                      the image is at fault (422, exit 4)
    │   ├── CorruptImageError
    │   │   └── PartitionTableError, LvmMetadataError
    │   ├── UnsupportedImageError
    │   │   └── MissingExtraError
    │   ├── FilesystemError
    │   │   └── ShortReadError
    │   ├── NoFilesystemError, NotAnImageError, MetadataBudgetError, DataNotInImageError
    │   ├── VolumeUnavailableError, ArchiveAbortedError
    │   └── HostileImageError           reaches outside its repository (422, exit 5)
    │       ├── BackingFileRefusedError, RepositoryEscapeError
    │       └── BackingChainLoopError, BackingChainTooDeepError
    └── ServiceUnavailableError         the host or a service is at fault (503, exit 6)
        ├── RepositoryUnavailableError
        │   └── RepositoryIOError, ObjectStoreUnavailableError
        ├── ObjectChangedError
        ├── DatabaseUnavailableError, DatabaseLockedError
        ├── StateDiskFullError (507)
        ├── FuseUnavailableError
        ├── TargetUnavailableError
        │   └── HostKeyRefusedError
        └── PortInUseError (exit 8)

"Not found" is only ever a name that does not exist. A repository the host cannot read
(permission denied, an I/O error, a stale NFS handle) is *unavailable*: the request may
succeed later, unchanged, and the answer must not tell the client its backup is gone.

One module a branch: :mod:`.request`, :mod:`.image` and :mod:`.host`; :mod:`.base` holds the
root and the exit codes.
"""

from __future__ import annotations

from filerestore.errors.base import ExitCode, FileRestoreError
from filerestore.errors.host import (
    DatabaseLockedError,
    DatabaseUnavailableError,
    FuseUnavailableError,
    HostKeyRefusedError,
    ObjectChangedError,
    ObjectStoreUnavailableError,
    PortInUseError,
    RepositoryIOError,
    RepositoryUnavailableError,
    ServiceUnavailableError,
    StateDiskFullError,
    TargetUnavailableError,
)
from filerestore.errors.image import (
    ArchiveAbortedError,
    BackingChainLoopError,
    BackingChainTooDeepError,
    BackingFileRefusedError,
    CorruptImageError,
    DataNotInImageError,
    FilesystemError,
    HostileImageError,
    ImageError,
    LvmMetadataError,
    MetadataBudgetError,
    MissingExtraError,
    NoFilesystemError,
    NotAnImageError,
    PartitionTableError,
    RepositoryEscapeError,
    ShortReadError,
    UnsupportedImageError,
    VolumeUnavailableError,
)
from filerestore.errors.request import (
    AmbiguousVolumeError,
    ArchiveTooLargeError,
    AuthenticationError,
    BackupFileMissingError,
    BackupNotFoundError,
    ConflictError,
    DestinationEscapeError,
    DestinationExistsError,
    DownloadLimitError,
    DownloadTooLargeError,
    ImageNotFoundError,
    InvalidCursorError,
    InvalidParameterError,
    InvalidRepositoryError,
    IsADirectoryError_,
    JobNotFoundError,
    JobStateError,
    MountNotFoundError,
    MountpointError,
    MountStateError,
    NotADirectoryError_,
    NotASymlinkError,
    NotFoundError,
    PathNotFoundError,
    PathRefusedError,
    PermissionDeniedError,
    RangeNotSatisfiableError,
    RepositoryExistsError,
    RepositoryInUseError,
    RepositoryNotFoundError,
    RequestError,
    RequestRefusedError,
    SessionLimitError,
    SessionQuotaError,
    StaleCursorError,
    SymlinkLoopError,
    TargetNotFoundError,
    TokenExistsError,
    TokenNotFoundError,
    UsageError,
    VolumeNotFoundError,
)

__all__ = [
    "AmbiguousVolumeError",
    "ArchiveAbortedError",
    "ArchiveTooLargeError",
    "AuthenticationError",
    "BackingChainLoopError",
    "BackingChainTooDeepError",
    "BackingFileRefusedError",
    "BackupFileMissingError",
    "BackupNotFoundError",
    "ConflictError",
    "CorruptImageError",
    "DataNotInImageError",
    "DatabaseLockedError",
    "DatabaseUnavailableError",
    "DestinationEscapeError",
    "DestinationExistsError",
    "DownloadLimitError",
    "DownloadTooLargeError",
    "ExitCode",
    "FileRestoreError",
    "FilesystemError",
    "FuseUnavailableError",
    "HostKeyRefusedError",
    "HostileImageError",
    "ImageError",
    "ImageNotFoundError",
    "InvalidCursorError",
    "InvalidParameterError",
    "InvalidRepositoryError",
    "IsADirectoryError_",
    "JobNotFoundError",
    "JobStateError",
    "LvmMetadataError",
    "MetadataBudgetError",
    "MissingExtraError",
    "MountNotFoundError",
    "MountStateError",
    "MountpointError",
    "NoFilesystemError",
    "NotADirectoryError_",
    "NotASymlinkError",
    "NotAnImageError",
    "NotFoundError",
    "ObjectChangedError",
    "ObjectStoreUnavailableError",
    "PartitionTableError",
    "PathNotFoundError",
    "PathRefusedError",
    "PermissionDeniedError",
    "PortInUseError",
    "RangeNotSatisfiableError",
    "RepositoryEscapeError",
    "RepositoryExistsError",
    "RepositoryIOError",
    "RepositoryInUseError",
    "RepositoryNotFoundError",
    "RepositoryUnavailableError",
    "RequestError",
    "RequestRefusedError",
    "ServiceUnavailableError",
    "SessionLimitError",
    "SessionQuotaError",
    "ShortReadError",
    "StaleCursorError",
    "StateDiskFullError",
    "SymlinkLoopError",
    "TargetNotFoundError",
    "TargetUnavailableError",
    "TokenExistsError",
    "TokenNotFoundError",
    "UnsupportedImageError",
    "UsageError",
    "VolumeNotFoundError",
    "VolumeUnavailableError",
    "error_classes",
]


def error_classes() -> list[type[FileRestoreError]]:
    """Every class of the tree, parents before children: the root, then the request's, the
    image's and the host's branches, siblings in the order of their module."""
    found: list[type[FileRestoreError]] = [FileRestoreError]

    def visit(cls: type[FileRestoreError]) -> None:
        found.append(cls)
        for sub in cls.__subclasses__():
            if sub.__module__.startswith(__name__ + "."):
                visit(sub)

    for branch in (RequestError, ImageError, ServiceUnavailableError):
        visit(branch)
    return found

"""The one error tree of filerestore, arranged by who is at fault.

Every error a user can meet is a subclass of :class:`FileRestoreError`. Each class carries its
``code`` (a stable machine-readable name), the HTTP status the API answers with and the exit
code the CLI ends with; a subclass inherits both from its category unless it says otherwise.
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
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    """The CLI's exit codes (the errors' ``exit_code`` values, and the two that are not errors)."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    NOT_FOUND = 3
    BAD_IMAGE = 4
    REFUSED = 5
    UNAVAILABLE = 6
    #: a restore finished, but skipped entries it could not read or write (listed on stderr)
    PARTIAL = 7
    #: ``serve`` cannot listen: another program holds the address and port
    PORT_IN_USE = 8
    INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class FileRestoreError(Exception):
    """Base of all errors filerestore reports to its users."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[ExitCode] = ExitCode.FAILURE


# === the request is at fault ===================================================================


class RequestError(FileRestoreError):
    """The request is at fault; the same request will fail the same way."""

    code = "bad_request"
    http_status = 400
    exit_code = ExitCode.FAILURE


class UsageError(RequestError):
    """The request is well-formed but incomplete, ambiguous or out of range."""

    code = "usage"
    http_status = 400
    exit_code = ExitCode.USAGE


class AmbiguousVolumeError(UsageError):
    """Several filesystems are in the image and none was chosen."""

    code = "ambiguous_volume"
    http_status = 409

    def __init__(self, choices: list[str]) -> None:
        self.choices = choices
        # the CLI adds its option's name (--volume), the API its field's ("volume")
        super().__init__("the image holds several filesystems, choose one: " + ", ".join(choices))


class NotADirectoryError_(UsageError):  # trailing _: the builtin name stays usable
    """A directory operation was asked of something that is not a directory."""

    code = "not_a_directory"


class IsADirectoryError_(UsageError):
    """A file operation was asked of a directory."""

    code = "is_a_directory"


class NotASymlinkError(UsageError):
    """read_link was asked of something that is not a symbolic link."""

    code = "not_a_symlink"


class InvalidParameterError(UsageError):
    """A listing, range or archive parameter is out of its allowed range (named in the message)."""

    code = "invalid_parameter"


class InvalidRepositoryError(UsageError):
    """A repository definition is invalid: unknown kind, or a root that is not a directory."""

    code = "invalid_repository"


class MountpointError(UsageError):
    """The mount point is not an empty directory, or something is already mounted there."""

    code = "bad_mountpoint"


class InvalidCursorError(UsageError):
    """A listing cursor is malformed, or was issued for another directory or sort order."""

    code = "invalid_cursor"


class StaleCursorError(InvalidCursorError):
    """The directory is not the one the cursor was issued for (it changed, or is another
    backup's): start the listing again without a cursor."""

    code = "stale_cursor"


class RangeNotSatisfiableError(UsageError):
    """A byte range lies outside the file."""

    code = "range_not_satisfiable"
    http_status = 416


class DownloadTooLargeError(UsageError):
    """A download would carry more bytes than ``max_download_bytes`` (a file, or the range of
    it asked for): refused before its first byte. A range under the limit is served."""

    code = "download_too_large"
    http_status = 413


class ArchiveTooLargeError(DownloadTooLargeError):
    """An archive would hold more entries than ``max_archive_entries`` or more bytes of file
    contents than ``max_download_bytes``: refused before its first byte (its tree is counted
    first)."""

    code = "archive_too_large"
    http_status = 413


class NotFoundError(RequestError):
    """Something the user named does not exist."""

    code = "not_found"
    http_status = 404
    exit_code = ExitCode.NOT_FOUND


class ImageNotFoundError(NotFoundError):
    """The image file (or a file of its backing chain) does not exist."""

    code = "image_not_found"


class VolumeNotFoundError(NotFoundError):
    """No volume with that id is in the image."""

    code = "volume_not_found"


class PathNotFoundError(NotFoundError):
    """No entry at that path in the guest filesystem."""

    code = "path_not_found"


class RepositoryNotFoundError(NotFoundError):
    """No repository with that name is configured."""

    code = "repository_not_found"


class BackupNotFoundError(NotFoundError):
    """No backup with that id is in the catalog."""

    code = "backup_not_found"


class BackupFileMissingError(NotFoundError):
    """The catalog lists the backup, but its image file is gone from the repository."""

    code = "backup_file_missing"


class MountNotFoundError(NotFoundError):
    """No session (mount) with that id exists; it may have expired or been unmounted."""

    code = "mount_not_found"


class TokenNotFoundError(NotFoundError):
    """No API token with that name or id exists."""

    code = "token_not_found"


class TargetNotFoundError(NotFoundError):
    """No restore target with that name is configured."""

    code = "target_not_found"


class JobNotFoundError(NotFoundError):
    """No restore job with that id exists (or it belongs to another principal)."""

    code = "job_not_found"


class RequestRefusedError(RequestError):
    """Refused for safety: the request tries to reach outside what it may reach."""

    code = "refused"
    http_status = 400
    exit_code = ExitCode.REFUSED


class PathRefusedError(RequestRefusedError):
    """A path holds a NUL byte or another component that is never valid."""

    code = "path_refused"


class SymlinkLoopError(RequestRefusedError):
    """Resolving a path took more symbolic-link hops than allowed (a loop, or too deep)."""

    code = "symlink_loop"


class DestinationEscapeError(RequestRefusedError):
    """Writing an entry would leave the destination directory."""

    code = "destination_escape"


class DestinationExistsError(RequestRefusedError):
    """Writing an entry would overwrite something already in the destination directory."""

    code = "destination_exists"


class ConflictError(RequestError):
    """The request conflicts with the current state: a limit is reached or a state is wrong."""

    code = "conflict"
    http_status = 409
    exit_code = ExitCode.FAILURE


class RepositoryExistsError(ConflictError):
    """A repository with that name is already configured."""

    code = "repository_exists"


class RepositoryInUseError(ConflictError):
    """The repository cannot be removed while sessions of its backups are open (the message
    lists them; ``repo remove --force`` ends them first)."""

    code = "repository_in_use"


class TokenExistsError(ConflictError):
    """An API token with that name already exists."""

    code = "token_exists"


class MountStateError(ConflictError):
    """The session is in a state that does not allow the operation (named in the message)."""

    code = "mount_state"


class SessionLimitError(ConflictError):
    """The host's session limit is reached (after waiting ``mount_wait_timeout`` for a slot):
    429 with ``Retry-After``. The message lists the caller's own sessions (an admin's: all
    of them), never another user's."""

    code = "session_limit"
    http_status = 429

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        #: seconds after which a retry may find a slot (the ``Retry-After`` header)
        self.retry_after = retry_after


class SessionQuotaError(SessionLimitError):
    """The caller already holds ``max_sessions_per_owner`` sessions: 429 with
    ``Retry-After``; one of its own sessions must end first."""

    code = "session_quota"


class JobStateError(ConflictError):
    """The restore job is in a state that does not allow the operation (named in the message)."""

    code = "job_state"


class DownloadLimitError(ConflictError):
    """The session already serves as many concurrent downloads as the limit allows."""

    code = "download_limit"
    http_status = 429


class AuthenticationError(RequestError):
    """No valid API token was given (missing, malformed, unknown or revoked)."""

    code = "unauthenticated"
    http_status = 401
    exit_code = ExitCode.FAILURE


class PermissionDeniedError(RequestError):
    """The token is valid but may not do this (an admin token is needed)."""

    code = "forbidden"
    http_status = 403
    exit_code = ExitCode.FAILURE


# === the image is at fault =====================================================================


class ImageError(FileRestoreError):
    """An image, partition table or filesystem cannot be read: corrupt or unsupported."""

    code = "image_error"
    http_status = 422
    exit_code = ExitCode.BAD_IMAGE


class CorruptImageError(ImageError):
    """The image's structures are inconsistent or point outside the file."""

    code = "corrupt_image"


class PartitionTableError(CorruptImageError):
    """A GPT or MBR partition table is inconsistent: bad checksums on every copy, a partition
    past the end of the disk, overlapping partitions, an extended-partition chain that loops,
    or a protective MBR with no valid GPT behind it."""

    code = "corrupt_partition_table"


class LvmMetadataError(CorruptImageError):
    """An LVM2 physical-volume label, metadata area or metadata text is corrupt or inconsistent."""

    code = "corrupt_lvm_metadata"


class UnsupportedImageError(ImageError):
    """The image uses a feature filerestore does not read (named in the message)."""

    code = "unsupported_image"


class MissingExtraError(UnsupportedImageError):
    """The filesystem is recognised but its reader is an optional extra that is not installed."""

    code = "missing_extra"


class NoFilesystemError(ImageError):
    """No supported filesystem was recognised on a volume."""

    code = "no_filesystem"


class FilesystemError(ImageError):
    """The filesystem library failed to read a structure (corrupt or unsupported)."""

    code = "filesystem_error"


class ShortReadError(FilesystemError):
    """Reading a file returned fewer bytes than its size says (a truncated image, or a
    reader that broke its contract): the restore of that file is refused, never cut short
    silently."""

    code = "short_read"


class DataNotInImageError(ImageError):
    """A file is listed but its data is not in the image: it is kept elsewhere (a cloud
    service, a deduplication chunk store, an external WIM; named in the message)."""

    code = "data_not_in_image"


class NotAnImageError(ImageError):
    """The file is not a disk image: empty, or without a known image signature and not
    named as a raw disk image (``*.raw``, ``*.img``)."""

    code = "not_an_image"


class MetadataBudgetError(ImageError):
    """Reading the image's backing chain needs more table memory at once than the metadata
    budget of one open allows (the ``image_metadata_budget`` setting)."""

    code = "metadata_budget"


class VolumeUnavailableError(ImageError):
    """A volume is listed but cannot be read: an LVM2 logical volume whose physical volumes are
    not all on this disk, or whose segment type filerestore does not read."""

    code = "volume_unavailable"


class ArchiveAbortedError(ImageError):
    """Reading a member failed mid-stream; the archive was cut short and must be discarded."""

    code = "archive_aborted"


class HostileImageError(ImageError):
    """Refused for safety: the image tries to reach outside its repository."""

    code = "hostile_image"
    exit_code = ExitCode.REFUSED


class BackingFileRefusedError(HostileImageError):
    """A backing file name is a protocol, or resolves outside the repository root."""

    code = "backing_file_refused"


class RepositoryEscapeError(HostileImageError):
    """A file of a backup (its image, a backing file, an extent) resolves outside its
    repository, through a name or a symbolic link, or is not a regular file."""

    code = "outside_repository"


class BackingChainLoopError(HostileImageError):
    """The backing chain refers back to an image already in it."""

    code = "backing_chain_loop"


class BackingChainTooDeepError(HostileImageError):
    """The backing chain is deeper than the configured limit."""

    code = "backing_chain_too_deep"


# === the host or a service is at fault =========================================================


class ServiceUnavailableError(FileRestoreError):
    """Something filerestore depends on (a repository share, the database) cannot be reached;
    the same request may succeed later."""

    code = "unavailable"
    http_status = 503
    exit_code = ExitCode.UNAVAILABLE


class RepositoryUnavailableError(ServiceUnavailableError):
    """A repository's share is not mounted (or not as the expected filesystem type)."""

    code = "repository_unavailable"


class RepositoryIOError(RepositoryUnavailableError):
    """The host failed to read a repository (permission denied, an I/O error, a stale NFS
    handle): the repository is unreachable, which is not the same as a missing file."""

    code = "repository_io"


class ObjectStoreUnavailableError(RepositoryUnavailableError):
    """An S3-compatible object store did not answer in time (refused connections, timeouts,
    server errors after every retry) or refused the credentials: the repository is
    unreachable, which is not the same as a missing object."""

    code = "object_store_unavailable"


class ObjectChangedError(ServiceUnavailableError):
    """An object of an S3 repository was replaced while a backup of it was open (its ETag
    changed): its bytes can no longer be combined with what was read before. Opening the
    backup again reads the new version."""

    code = "object_changed"


class DatabaseUnavailableError(ServiceUnavailableError):
    """The database cannot be opened or reached."""

    code = "database_unavailable"


class DatabaseLockedError(ServiceUnavailableError):
    """The database stayed locked by another writer for longer than the busy timeout."""

    code = "database_locked"


class StateDiskFullError(ServiceUnavailableError):
    """The state directory's filesystem has less free space than ``min_free_state_bytes``, or
    the database could not write for want of space: new sessions, and downloads whose audit
    row cannot be written, are refused until space is freed. 507 (Insufficient Storage, RFC
    4918) rather than 503: an operator must act, waiting alone does not help."""

    code = "state_disk_full"
    http_status = 507


class FuseUnavailableError(ServiceUnavailableError):
    """FUSE cannot be used here: no /dev/fuse, no permission to open it, or the mount failed."""

    code = "fuse_unavailable"


class TargetUnavailableError(ServiceUnavailableError):
    """A restore target cannot be written now: its root directory is missing or unreadable,
    or its SSH host cannot be reached or refused the login."""

    code = "target_unavailable"


class HostKeyRefusedError(TargetUnavailableError):
    """The SSH host's key is not the one the target's known_hosts file holds (or none is
    listed for it): the connection is refused before anything is sent."""

    code = "host_key_refused"


class PortInUseError(ServiceUnavailableError):
    """``serve`` cannot listen on its address and port: another program (another
    ``filerestore serve``?) holds them. Choose another port, or stop that program."""

    code = "address_in_use"
    exit_code = ExitCode.PORT_IN_USE


def error_classes() -> list[type[FileRestoreError]]:
    """Every class of the tree, parents before children, siblings in the order above."""
    found: list[type[FileRestoreError]] = []

    def visit(cls: type[FileRestoreError]) -> None:
        found.append(cls)
        for sub in cls.__subclasses__():
            if sub.__module__ == __name__:
                visit(sub)

    visit(FileRestoreError)
    return found

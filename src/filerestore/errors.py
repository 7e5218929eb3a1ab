"""The one error tree of filerestore.

Every error a user can cause (a bad path, a hostile image, a missing backup) is a subclass
of :class:`FileRestoreError`. Adapters translate these classes to exit codes (CLI) or HTTP
status codes (API) in one table each, keyed on the categories below; no adapter inspects
messages. ``code`` is a stable machine-readable name for each class.
"""

from __future__ import annotations

from typing import ClassVar


class FileRestoreError(Exception):
    """Base of all errors filerestore reports to its users."""

    code: ClassVar[str] = "error"


# --- categories (the adapters' tables map these) -------------------------------------------


class UsageError(FileRestoreError):
    """The request is well-formed but incomplete or ambiguous."""

    code = "usage"


class NotFoundError(FileRestoreError):
    """Something the user named does not exist."""

    code = "not_found"


class ImageError(FileRestoreError):
    """An image, partition table or filesystem cannot be read: corrupt or unsupported."""

    code = "image_error"


class SafetyError(FileRestoreError):
    """Refused for safety: the input tries to reach outside what it may reach."""

    code = "refused"


# --- usage ---------------------------------------------------------------------------------


class AmbiguousVolumeError(UsageError):
    """Several filesystems are in the image and none was chosen."""

    code = "ambiguous_volume"

    def __init__(self, choices: list[str]) -> None:
        self.choices = choices
        super().__init__(
            "the image holds several filesystems, choose one with --volume: " + ", ".join(choices)
        )


class NotADirectoryError_(UsageError):  # trailing _: the builtin name stays usable
    """A directory operation was asked of something that is not a directory."""

    code = "not_a_directory"


class IsADirectoryError_(UsageError):
    """A file operation was asked of a directory."""

    code = "is_a_directory"


class NotASymlinkError(UsageError):
    """read_link was asked of something that is not a symbolic link."""

    code = "not_a_symlink"


# --- not found -----------------------------------------------------------------------------


class ImageNotFoundError(NotFoundError):
    """The image file (or a file of its backing chain) does not exist."""

    code = "image_not_found"


class VolumeNotFoundError(NotFoundError):
    """No volume with that id is in the image."""

    code = "volume_not_found"


class PathNotFoundError(NotFoundError):
    """No entry at that path in the guest filesystem."""

    code = "path_not_found"


# --- corrupt or unsupported ----------------------------------------------------------------


class CorruptImageError(ImageError):
    """The image's structures are inconsistent or point outside the file."""

    code = "corrupt_image"


class UnsupportedImageError(ImageError):
    """The image uses a feature filerestore does not read (named in the message)."""

    code = "unsupported_image"


class NoFilesystemError(ImageError):
    """No supported filesystem was recognised on a volume."""

    code = "no_filesystem"


class FilesystemError(ImageError):
    """The filesystem library failed to read a structure (corrupt or unsupported)."""

    code = "filesystem_error"


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


class MissingExtraError(ImageError):
    """The filesystem is recognised but its reader is an optional extra that is not installed."""

    code = "missing_extra"


# --- refused for safety --------------------------------------------------------------------


class BackingFileRefusedError(SafetyError):
    """A backing file name is a protocol, or resolves outside the repository root."""

    code = "backing_file_refused"


class RepositoryEscapeError(SafetyError):
    """A file of a backup (its image, a backing file, an extent) resolves outside its
    repository, through a name or a symbolic link, or is not a regular file."""

    code = "outside_repository"


class BackingChainLoopError(SafetyError):
    """The backing chain refers back to an image already in it."""

    code = "backing_chain_loop"


class BackingChainTooDeepError(SafetyError):
    """The backing chain is deeper than the configured limit."""

    code = "backing_chain_too_deep"


class PathRefusedError(SafetyError):
    """A path holds a NUL byte or another component that is never valid."""

    code = "path_refused"


class SymlinkLoopError(SafetyError):
    """Resolving a path took more symbolic-link hops than allowed (a loop, or too deep)."""

    code = "symlink_loop"


class DestinationEscapeError(SafetyError):
    """Writing an entry would leave the destination directory."""

    code = "destination_escape"


# --- catalog, sessions and database (issue 3) ----------------------------------------------


class ConflictError(FileRestoreError):
    """The request conflicts with the current state: a limit is reached or a state is wrong."""

    code = "conflict"


class ServiceUnavailableError(FileRestoreError):
    """Something filerestore depends on (a repository share, the database) cannot be reached."""

    code = "unavailable"


class InvalidRepositoryError(UsageError):
    """A repository definition is invalid: unknown kind, or a root that is not a directory."""

    code = "invalid_repository"


class RepositoryNotFoundError(NotFoundError):
    """No repository with that name is configured."""

    code = "repository_not_found"


class RepositoryExistsError(ConflictError):
    """A repository with that name is already configured."""

    code = "repository_exists"


class RepositoryUnavailableError(ServiceUnavailableError):
    """A repository's share is not mounted (or not as the expected filesystem type)."""

    code = "repository_unavailable"


class RepositoryIOError(ServiceUnavailableError):
    """The host failed to read a repository (permission denied, an I/O error, a stale NFS
    handle): the repository is unreachable, which is not the same as a missing file."""

    code = "repository_io"


class ObjectStoreUnavailableError(ServiceUnavailableError):
    """An S3-compatible object store did not answer in time (refused connections, timeouts,
    server errors after every retry) or refused the credentials: the repository is
    unreachable, which is not the same as a missing object."""

    code = "object_store_unavailable"


class ObjectChangedError(ServiceUnavailableError):
    """An object of an S3 repository was replaced while a backup of it was open (its ETag
    changed): its bytes can no longer be combined with what was read before. Opening the
    backup again reads the new version."""

    code = "object_changed"


class BackupNotFoundError(NotFoundError):
    """No backup with that id is in the catalog."""

    code = "backup_not_found"


class BackupFileMissingError(NotFoundError):
    """The catalog lists the backup, but its image file is gone from the repository."""

    code = "backup_file_missing"


class MountNotFoundError(NotFoundError):
    """No session (mount) with that id exists; it may have expired or been unmounted."""

    code = "mount_not_found"


class SessionLimitError(ConflictError):
    """The concurrent session limit is reached; the message lists the sessions holding it."""

    code = "session_limit"


class DownloadLimitError(ConflictError):
    """The session already serves as many concurrent downloads as the limit allows."""

    code = "download_limit"


class MountStateError(ConflictError):
    """The session is in a state that does not allow the operation (named in the message)."""

    code = "mount_state"


class DatabaseUnavailableError(ServiceUnavailableError):
    """The database cannot be opened or reached."""

    code = "database_unavailable"


class DatabaseLockedError(ServiceUnavailableError):
    """The database stayed locked by another writer for longer than the busy timeout."""

    code = "database_locked"


# --- volumes: partition tables and LVM2 (issue 2) --------------------------------------------


class PartitionTableError(CorruptImageError):
    """A GPT or MBR partition table is inconsistent: bad checksums on every copy, a partition
    past the end of the disk, overlapping partitions, an extended-partition chain that loops,
    or a protective MBR with no valid GPT behind it."""

    code = "corrupt_partition_table"


class LvmMetadataError(CorruptImageError):
    """An LVM2 physical-volume label, metadata area or metadata text is corrupt or inconsistent."""

    code = "corrupt_lvm_metadata"


class VolumeUnavailableError(ImageError):
    """A volume is listed but cannot be read: an LVM2 logical volume whose physical volumes are
    not all on this disk, or whose segment type filerestore does not read."""

    code = "volume_unavailable"


class DestinationExistsError(SafetyError):
    """Writing an entry would overwrite something already in the destination directory."""

    code = "destination_exists"


# --- browsing and archive streams (issue 3, item 4) ------------------------------------------


class InvalidParameterError(UsageError):
    """A listing, range or archive parameter is out of its allowed range (named in the message)."""

    code = "invalid_parameter"


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


class ArchiveTooLargeError(UsageError):
    """An archive would hold more entries than the configured limit."""

    code = "archive_too_large"


class ArchiveAbortedError(ImageError):
    """Reading a member failed mid-stream; the archive was cut short and must be discarded."""

    code = "archive_aborted"


# --- REST API authentication (issue 4) --------------------------------------------------------


class AuthenticationError(FileRestoreError):
    """No valid API token was given (missing, malformed, unknown or revoked)."""

    code = "unauthenticated"


class PermissionDeniedError(FileRestoreError):
    """The token is valid but may not do this (an admin token is needed)."""

    code = "forbidden"


class TokenNotFoundError(NotFoundError):
    """No API token with that name or id exists."""

    code = "token_not_found"


class TokenExistsError(ConflictError):
    """An API token with that name already exists."""

    code = "token_exists"


# --- the FUSE view ---------------------------------------------------------------------------


class MountpointError(UsageError):
    """The mount point is not an empty directory, or something is already mounted there."""

    code = "bad_mountpoint"


class FuseUnavailableError(ServiceUnavailableError):
    """FUSE cannot be used here: no /dev/fuse, no permission to open it, or the mount failed."""

    code = "fuse_unavailable"

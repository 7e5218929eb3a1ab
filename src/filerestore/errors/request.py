"""Refusals caused by the request: the same request will fail the same way (4xx).

Usage errors (400, exit 2), names that do not exist (404, exit 3), requests that reach
outside what they may (400, exit 5), conflicts with the current state (409/429, exit 1),
and authentication (401) and permission (403).
"""

from __future__ import annotations

from filerestore.errors.base import ExitCode, FileRestoreError


class RequestError(
    FileRestoreError, code="bad_request", http_status=400, exit_code=ExitCode.FAILURE
):
    """The request is at fault; the same request will fail the same way."""


class UsageError(RequestError, code="usage", http_status=400, exit_code=ExitCode.USAGE):
    """The request is well-formed but incomplete, ambiguous or out of range."""


class AmbiguousVolumeError(UsageError, code="ambiguous_volume", http_status=409):
    """Several filesystems are in the image and none was chosen."""

    def __init__(self, choices: list[str]) -> None:
        self.choices = choices
        # the CLI adds its option's name (--volume), the API its field's ("volume")
        super().__init__("the image holds several filesystems, choose one: " + ", ".join(choices))


# trailing _ (here and below): the builtin name stays usable
class NotADirectoryError_(UsageError, code="not_a_directory"):
    """A directory operation was asked of something that is not a directory."""


class IsADirectoryError_(UsageError, code="is_a_directory"):
    """A file operation was asked of a directory."""


class NotASymlinkError(UsageError, code="not_a_symlink"):
    """read_link was asked of something that is not a symbolic link."""


class InvalidParameterError(UsageError, code="invalid_parameter"):
    """A listing, range or archive parameter is out of its allowed range (named in the message)."""


class InvalidRepositoryError(UsageError, code="invalid_repository"):
    """A repository definition is invalid: unknown kind, or a root that is not a directory."""


class MountpointError(UsageError, code="bad_mountpoint"):
    """The mount point is not an empty directory, or something is already mounted there."""


class InvalidCursorError(UsageError, code="invalid_cursor"):
    """A listing cursor is malformed, or was issued for another directory or sort order."""


class StaleCursorError(InvalidCursorError, code="stale_cursor"):
    """The directory is not the one the cursor was issued for (it changed, or is another
    backup's): start the listing again without a cursor."""


class RangeNotSatisfiableError(UsageError, code="range_not_satisfiable", http_status=416):
    """A byte range lies outside the file."""


class DownloadTooLargeError(UsageError, code="download_too_large", http_status=413):
    """A download would carry more bytes than ``max_download_bytes`` (a file, or the range of
    it asked for): refused before its first byte. A range under the limit is served."""


class ArchiveTooLargeError(DownloadTooLargeError, code="archive_too_large", http_status=413):
    """An archive would hold more entries than ``max_archive_entries`` or more bytes of file
    contents than ``max_download_bytes``: refused before its first byte (its tree is counted
    first)."""


class NotFoundError(RequestError, code="not_found", http_status=404, exit_code=ExitCode.NOT_FOUND):
    """Something the user named does not exist."""


class ImageNotFoundError(NotFoundError, code="image_not_found"):
    """The image file (or a file of its backing chain) does not exist."""


class VolumeNotFoundError(NotFoundError, code="volume_not_found"):
    """No volume with that id is in the image."""


class PathNotFoundError(NotFoundError, code="path_not_found"):
    """No entry at that path in the guest filesystem."""


class RepositoryNotFoundError(NotFoundError, code="repository_not_found"):
    """No repository with that name is configured."""


class BackupNotFoundError(NotFoundError, code="backup_not_found"):
    """No backup with that id is in the catalog."""


class BackupFileMissingError(NotFoundError, code="backup_file_missing"):
    """The catalog lists the backup, but its image file is gone from the repository."""


class MountNotFoundError(NotFoundError, code="mount_not_found"):
    """No session (mount) with that id exists; it may have expired or been unmounted."""


class TokenNotFoundError(NotFoundError, code="token_not_found"):
    """No API token with that name or id exists."""


class TargetNotFoundError(NotFoundError, code="target_not_found"):
    """No restore target with that name is configured."""


class JobNotFoundError(NotFoundError, code="job_not_found"):
    """No restore job with that id exists (or it belongs to another principal)."""


class RequestRefusedError(
    RequestError, code="refused", http_status=400, exit_code=ExitCode.REFUSED
):
    """Refused for safety: the request tries to reach outside what it may reach."""


class PathRefusedError(RequestRefusedError, code="path_refused"):
    """A path holds a NUL byte or another component that is never valid."""


class SymlinkLoopError(RequestRefusedError, code="symlink_loop"):
    """Resolving a path took more symbolic-link hops than allowed (a loop, or too deep)."""


class DestinationEscapeError(RequestRefusedError, code="destination_escape"):
    """Writing an entry would leave the destination directory."""


class DestinationExistsError(RequestRefusedError, code="destination_exists"):
    """Writing an entry would overwrite something already in the destination directory."""


class ConflictError(RequestError, code="conflict", http_status=409, exit_code=ExitCode.FAILURE):
    """The request conflicts with the current state: a limit is reached or a state is wrong."""


class RepositoryExistsError(ConflictError, code="repository_exists"):
    """A repository with that name is already configured."""


class RepositoryInUseError(ConflictError, code="repository_in_use"):
    """The repository cannot be removed while sessions of its backups are open (the message
    lists them; ``repo remove --force`` ends them first)."""


class TokenExistsError(ConflictError, code="token_exists"):
    """An API token with that name already exists."""


class MountStateError(ConflictError, code="mount_state"):
    """The session is in a state that does not allow the operation (named in the message)."""


class SessionLimitError(ConflictError, code="session_limit", http_status=429):
    """The host's session limit is reached (after waiting ``mount_wait_timeout`` for a slot):
    429 with ``Retry-After``. The message lists the caller's own sessions (an admin's: all
    of them), never another user's."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        #: seconds after which a retry may find a slot (the ``Retry-After`` header)
        self.retry_after = retry_after


class SessionQuotaError(SessionLimitError, code="session_quota"):
    """The caller already holds ``max_sessions_per_owner`` sessions: 429 with
    ``Retry-After``; one of its own sessions must end first."""


class JobStateError(ConflictError, code="job_state"):
    """The restore job is in a state that does not allow the operation (named in the message)."""


class DownloadLimitError(ConflictError, code="download_limit", http_status=429):
    """The session already serves as many concurrent downloads as the limit allows."""


class AuthenticationError(
    RequestError, code="unauthenticated", http_status=401, exit_code=ExitCode.FAILURE
):
    """No valid API token was given (missing, malformed, unknown or revoked)."""


class PermissionDeniedError(
    RequestError, code="forbidden", http_status=403, exit_code=ExitCode.FAILURE
):
    """The token is valid but may not do this (an admin token is needed)."""

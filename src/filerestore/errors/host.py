"""Failures of the host or of a service filerestore depends on (503, exit 6): the same
request may succeed later, unchanged. A repository the host cannot read is *unavailable*,
never "not found".
"""

from __future__ import annotations

from filerestore.errors.base import ExitCode, FileRestoreError


class ServiceUnavailableError(
    FileRestoreError, code="unavailable", http_status=503, exit_code=ExitCode.UNAVAILABLE
):
    """Something filerestore depends on (a repository share, the database) cannot be reached;
    the same request may succeed later."""


class RepositoryUnavailableError(ServiceUnavailableError, code="repository_unavailable"):
    """A repository's share is not mounted (or not as the expected filesystem type)."""


class RepositoryIOError(RepositoryUnavailableError, code="repository_io"):
    """The host failed to read a repository (permission denied, an I/O error, a stale NFS
    handle): the repository is unreachable, which is not the same as a missing file."""


class ObjectStoreUnavailableError(RepositoryUnavailableError, code="object_store_unavailable"):
    """An S3-compatible object store did not answer in time (refused connections, timeouts,
    server errors after every retry) or refused the credentials: the repository is
    unreachable, which is not the same as a missing object."""


class ObjectChangedError(ServiceUnavailableError, code="object_changed"):
    """An object of an S3 repository was replaced while a backup of it was open (its ETag
    changed): its bytes can no longer be combined with what was read before. Opening the
    backup again reads the new version."""


class DatabaseUnavailableError(ServiceUnavailableError, code="database_unavailable"):
    """The database cannot be opened or reached."""


class DatabaseLockedError(ServiceUnavailableError, code="database_locked"):
    """The database stayed locked by another writer for longer than the busy timeout."""


class StateDiskFullError(ServiceUnavailableError, code="state_disk_full", http_status=507):
    """The state directory's filesystem has less free space than ``min_free_state_bytes``, or
    the database could not write for want of space: new sessions, and downloads whose audit
    row cannot be written, are refused until space is freed. 507 (Insufficient Storage, RFC
    4918) rather than 503: an operator must act, waiting alone does not help."""


class FuseUnavailableError(ServiceUnavailableError, code="fuse_unavailable"):
    """FUSE cannot be used here: no /dev/fuse, no permission to open it, or the mount failed."""


class TargetUnavailableError(ServiceUnavailableError, code="target_unavailable"):
    """A restore target cannot be written now: its root directory is missing or unreadable,
    or its SSH host cannot be reached or refused the login."""


class HostKeyRefusedError(TargetUnavailableError, code="host_key_refused"):
    """The SSH host's key is not the one the target's known_hosts file holds (or none is
    listed for it): the connection is refused before anything is sent."""


class PortInUseError(
    ServiceUnavailableError, code="address_in_use", exit_code=ExitCode.PORT_IN_USE
):
    """``serve`` cannot listen on its address and port: another program (another
    ``filerestore serve``?) holds them. Choose another port, or stop that program."""

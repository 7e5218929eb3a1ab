"""Where a restore job writes: a local directory under an admin's target root, or a remote
host over SFTP. Both implement :class:`~filerestore.restore.targets.base.Target`; the copy
itself (walk, conflicts, hashing, resume) is :mod:`filerestore.restore.transfer`."""

from filerestore.restore.targets.base import (
    Capabilities,
    Existing,
    FileWrite,
    Meta,
    Target,
    WriteFailure,
    destination_parts,
)

__all__ = [
    "Capabilities",
    "Existing",
    "FileWrite",
    "Meta",
    "Target",
    "WriteFailure",
    "destination_parts",
]

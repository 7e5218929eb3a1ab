"""Refusals caused by the image: corrupt, unsupported, or hostile (422, exit 4 or 5).

The same image fails the same way whoever asks; a hostile image, one that tries to reach
outside its repository, is refused for safety (exit 5).
"""

from __future__ import annotations

from filerestore.errors.base import ExitCode, FileRestoreError


class ImageError(
    FileRestoreError, code="image_error", http_status=422, exit_code=ExitCode.BAD_IMAGE
):
    """An image, partition table or filesystem cannot be read: corrupt or unsupported."""


class CorruptImageError(ImageError, code="corrupt_image"):
    """The image's structures are inconsistent or point outside the file."""


class PartitionTableError(CorruptImageError, code="corrupt_partition_table"):
    """A GPT or MBR partition table is inconsistent: bad checksums on every copy, a partition
    past the end of the disk, overlapping partitions, an extended-partition chain that loops,
    or a protective MBR with no valid GPT behind it."""


class LvmMetadataError(CorruptImageError, code="corrupt_lvm_metadata"):
    """An LVM2 physical-volume label, metadata area or metadata text is corrupt or inconsistent."""


class UnsupportedImageError(ImageError, code="unsupported_image"):
    """The image uses a feature filerestore does not read (named in the message)."""


class MissingExtraError(UnsupportedImageError, code="missing_extra"):
    """The filesystem is recognised but its reader is an optional extra that is not installed."""


class NoFilesystemError(ImageError, code="no_filesystem"):
    """No supported filesystem was recognised on a volume."""


class FilesystemError(ImageError, code="filesystem_error"):
    """The filesystem library failed to read a structure (corrupt or unsupported)."""


class ShortReadError(FilesystemError, code="short_read"):
    """Reading a file returned fewer bytes than its size says (a truncated image, or a
    reader that broke its contract): the restore of that file is refused, never cut short
    silently."""


class DataNotInImageError(ImageError, code="data_not_in_image"):
    """A file is listed but its data is not in the image: it is kept elsewhere (a cloud
    service, a deduplication chunk store, an external WIM; named in the message)."""


class NotAnImageError(ImageError, code="not_an_image"):
    """The file is not a disk image: empty, or without a known image signature and not
    named as a raw disk image (``*.raw``, ``*.img``)."""


class MetadataBudgetError(ImageError, code="metadata_budget"):
    """Reading the image's backing chain needs more table memory at once than the metadata
    budget of one open allows (the ``image_metadata_budget`` setting)."""


class VolumeUnavailableError(ImageError, code="volume_unavailable"):
    """A volume is listed but cannot be read: an LVM2 logical volume whose physical volumes are
    not all on this disk, or whose segment type filerestore does not read."""


class ArchiveAbortedError(ImageError, code="archive_aborted"):
    """Reading a member failed mid-stream; the archive was cut short and must be discarded."""


class HostileImageError(ImageError, code="hostile_image", exit_code=ExitCode.REFUSED):
    """Refused for safety: the image tries to reach outside its repository."""


class BackingFileRefusedError(HostileImageError, code="backing_file_refused"):
    """A backing file name is a protocol, or resolves outside the repository root."""


class RepositoryEscapeError(HostileImageError, code="outside_repository"):
    """A file of a backup (its image, a backing file, an extent) resolves outside its
    repository, through a name or a symbolic link, or is not a regular file."""


class BackingChainLoopError(HostileImageError, code="backing_chain_loop"):
    """The backing chain refers back to an image already in it."""


class BackingChainTooDeepError(HostileImageError, code="backing_chain_too_deep"):
    """The backing chain is deeper than the configured limit."""

"""The opened reader stack of one backup: image -> volumes -> the chosen volume's filesystem.

The CLI and the session layer both open backups through :func:`open_stack`, so choosing a
volume (and the errors when the choice is missing or wrong) behaves the same everywhere.
:func:`filerestore.restore.describe.describe_image` is the read-only overview behind
``filerestore inspect``.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from typing import Any

from filerestore.blockio import CachedReader
from filerestore.errors import (
    AmbiguousVolumeError,
    FileRestoreError,
    NoFilesystemError,
    ObjectChangedError,
    VolumeUnavailableError,
)
from filerestore.fs import Detection, Filesystem, detect, open_filesystem
from filerestore.image import (
    DEFAULT_MAX_CHAIN_DEPTH,
    DEFAULT_METADATA_BUDGET,
    DiskImage,
    open_image,
)
from filerestore.image.disk import open_backup
from filerestore.source import Store
from filerestore.volume import Volume, find_volume, list_volumes


class Stack:
    """An opened backup: its disk image, all its volumes, the chosen volume and its filesystem.

    Owns every handle in it; close it (or use it as a context manager) when done. Like the
    filesystem handles it holds, a Stack is for one thread at a time.
    """

    def __init__(
        self, image: DiskImage, volumes: list[Volume], volume: Volume, fs: Filesystem[Any]
    ) -> None:
        self.image = image
        self.volumes = volumes
        self.volume = volume
        self.fs = fs

    def close(self) -> None:
        try:
            self.fs.close()
        finally:
            self.image.close()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_stack(
    image_path: str | os.PathLike[str],
    *,
    repository: str | os.PathLike[str] | None = None,
    volume_id: str | None = None,
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
    metadata_budget: int = DEFAULT_METADATA_BUDGET,
) -> Stack:
    """Open the image, choose a volume and open its filesystem.

    With ``volume_id`` that volume is used (VolumeNotFoundError if the image has none by that
    id). Without it, the one volume holding a recognised filesystem is used; several give an
    AmbiguousVolumeError listing them, none a NoFilesystemError.
    """
    image = open_image(image_path, repository, max_chain_depth, metadata_budget)
    return _stack_on(image, volume_id)


def open_backup_stack(
    store: Store,
    name: str,
    *,
    volume_id: str | None = None,
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
    metadata_budget: int = DEFAULT_METADATA_BUDGET,
) -> Stack:
    """:func:`open_stack` for the backup ``name`` of a repository's ``store`` (local or S3).

    An S3 store opening a backup it has cached checks each object's ETag in the
    background; those checks overlap reading the partition table and opening the
    filesystem, and the stack is returned without waiting for them (a warm open costs no
    round trip): an object found replaced makes every later read of it raise
    ObjectChangedError, and the next open reads the new version. A failure to open is
    first blamed on a changed object (waiting for the checks); a backup changed since it
    was cached is then opened once more, from the new objects.
    """
    args = (store, name, volume_id, max_chain_depth, metadata_budget)
    try:
        return _confirmed_stack(*args)
    except ObjectChangedError:
        return _confirmed_stack(*args)


def _confirmed_stack(
    store: Store, name: str, volume_id: str | None, max_chain_depth: int, metadata_budget: int
) -> Stack:
    image = open_backup(store, name, max_chain_depth, metadata_budget, confirm=False)
    try:
        stack = _stack_on(image, volume_id)  # closes the image if it fails
    except FileRestoreError:
        image.confirm()  # read from a changed object: ObjectChangedError says so instead
        raise
    try:
        image.confirm(wait=False)
    except BaseException:
        stack.close()
        raise
    return stack


def _stack_on(image: DiskImage, volume_id: str | None) -> Stack:
    with ExitStack() as guard:
        guard.callback(image.close)
        volumes = list_volumes(image)
        volume, detected = _choose_volume(volumes, volume_id)
        reader = CachedReader(volume.reader)
        fs = detected.open(reader) if detected is not None else open_filesystem(reader)
        guard.pop_all()
    return Stack(image, volumes, volume, fs)


def _choose_volume(volumes: list[Volume], volume_id: str | None) -> tuple[Volume, Detection | None]:
    """The volume to open, and its filesystem when choosing it took a detection (which the
    caller then opens without detecting again)."""
    if volume_id is not None:
        volume = find_volume(volumes, volume_id)
        if volume.error:
            raise VolumeUnavailableError(f"volume {volume.id}: {volume.error}")
        return volume, None
    # extended partitions hold partitions, not filesystems; unreadable LVs cannot be probed
    readable = [v for v in volumes if not v.is_container and not v.error]
    with_fs = [(v, found) for v in readable if (found := detect(v.reader))]
    if len(with_fs) == 1:
        return with_fs[0]
    if not with_fs:
        known = ", ".join(v.id for v in volumes) or "none"
        raise NoFilesystemError(f"no supported filesystem on any volume (volumes: {known})")
    raise AmbiguousVolumeError([_choice(v, found.kind) for v, found in with_fs])


def _choice(volume: Volume, kind: str) -> str:
    details = [kind, format_size(volume.size)]
    label = volume.label or _filesystem_label(volume)
    if label:
        details.append(repr(label))
    return f"{volume.id} ({', '.join(details)})"


def _filesystem_label(volume: Volume) -> str | None:
    """The label inside the filesystem, best effort: it only helps the user choose."""
    try:
        fs = open_filesystem(volume.reader)
    except FileRestoreError:
        return None
    try:
        return fs.label
    finally:
        fs.close()


def format_size(size: int) -> str:
    """A size for people: 1.5 GiB, 200 MiB, 512 B."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}".replace(".0 ", " ")
        value /= 1024
    raise AssertionError("unreachable")

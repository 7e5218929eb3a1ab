"""The read-only overview of a backup behind ``filerestore inspect`` and ``GET /backups/{id}``:
its backing chain, and every volume with the filesystem recognised on it.

Apart from :mod:`filerestore.restore.stack` so that opening a backup (``filerestore ls``)
does not create these records' classes (start-up time, issue 14).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from filerestore.errors import FileRestoreError
from filerestore.fs import detect
from filerestore.image import (
    DEFAULT_MAX_CHAIN_DEPTH,
    DEFAULT_METADATA_BUDGET,
    DiskImage,
    open_image,
)
from filerestore.records import same_fields
from filerestore.volume import Volume, list_volumes


@dataclass(frozen=True, slots=True)
class ChainFile:
    """One file of the backing chain, top image first."""

    path: str
    format: str
    virtual_size: int
    backing_name: str | None


@dataclass(frozen=True, slots=True)
class VolumeDescription:
    """A volume and what filesystem (if any) was recognised on it."""

    id: str
    scheme: str
    offset: int | None  # None for a logical volume that is not one contiguous range
    size: int
    type: str
    type_name: str
    label: str | None
    uuid: str | None
    #: the kind of filesystem recognised on it (the name a session's record uses too)
    filesystem_type: str | None
    filesystem_label: str | None
    #: why the volume or its recognised filesystem cannot be read (None when it can)
    filesystem_error: str | None


@dataclass(frozen=True, slots=True)
class ImageDescription:
    """The backing chain and the volumes of one backup image."""

    path: str
    virtual_size: int
    chain: tuple[ChainFile, ...]
    volumes: tuple[VolumeDescription, ...]

    def to_dict(self) -> dict[str, Any]:
        """As JSON has it: the chain's and the volumes' records as objects in arrays."""
        data = asdict(self)
        return {**data, "chain": list(data["chain"]), "volumes": list(data["volumes"])}


def describe_image(
    image_path: str | os.PathLike[str],
    repository: str | os.PathLike[str] | None = None,
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
    metadata_budget: int = DEFAULT_METADATA_BUDGET,
) -> ImageDescription:
    """The backing chain and every volume with its filesystem kind and label.

    A volume whose filesystem is recognised but fails to open is still described, with the
    reason in ``filesystem_error``: one damaged partition must not hide the others.
    """
    image = open_image(image_path, repository, max_chain_depth, metadata_budget)
    try:
        return describe_disk(image)
    finally:
        image.close()


def describe_disk(image: DiskImage) -> ImageDescription:
    """The description of an opened image (see :func:`describe_image`)."""
    chain = tuple(
        ChainFile(
            path=link.location,
            format=link.format,
            virtual_size=link.virtual_size,
            backing_name=link.backing_name,
        )
        for link in image.chain
    )
    volumes = tuple(_describe_volume(v) for v in list_volumes(image))
    return ImageDescription(
        path=image.chain[0].location, virtual_size=image.size, chain=chain, volumes=volumes
    )


def _describe_volume(volume: Volume) -> VolumeDescription:
    kind: str | None = None
    label: str | None = None
    error = volume.error
    detected = None if error or volume.is_container else detect(volume.reader)
    if detected is not None:
        kind = detected.kind
        try:
            fs = detected.open(volume.reader)
        except FileRestoreError as exc:
            error = str(exc)
        else:
            try:
                kind = fs.kind or kind
                label = fs.label
            finally:
                fs.close()
    return VolumeDescription(
        **same_fields(
            VolumeDescription,
            volume,
            filesystem_type=kind,
            filesystem_label=label,
            filesystem_error=error,
        )
    )

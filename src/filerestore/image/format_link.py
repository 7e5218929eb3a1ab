"""What a format's opener says about one file of a chain (shared by vmdk, vhd, vhdx)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from filerestore.image.mapped import Layer
from filerestore.image.metadata import MetadataCache
from filerestore.source import SourceFile

# (backing layer or None, the open's table cache) -> the layer of this file
LayerBuilder = Callable[[Layer | None, MetadataCache], Layer]


@dataclass
class FormatLink:
    """What a format's opener found in one file of a chain."""

    format: str  # QEMU's driver name: "vmdk" | "vpc" | "vhdx"
    subformat: str  # "monolithicSparse", "dynamic", "differencing", ...
    virtual_size: int
    build: LayerBuilder
    cluster_size: int | None = None  # grain or block size
    backing_name: str | None = None  # already mapped to a POSIX name, not yet opened
    backing_format: str | None = None
    identity: str | None = None  # VMDK CID, VHD unique id, VHDX data write GUID
    parent_identity: str | None = None  # what the parent's identity must be
    #: files this disk is made of beside itself (VMDK extents), repository names, and open
    files: list[SourceFile] = field(default_factory=list)
    #: the least bytes of its tables one read needs in the cache at once (image.metadata)
    working_set: int = 0

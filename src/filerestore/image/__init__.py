"""The image layer: a QCOW2, VMDK, VHD, VHDX or raw image and its parent chain as one disk.

``open_image(path, repository)`` returns a :class:`DiskImage`, a blockio Reader of the guest
disk; ``probe_chain`` describes the chain from headers alone (the catalog derives full or
incremental and the parent from it). Modules: ``qcow2_header`` (header layout, limits),
``qcow2_entries`` (address arithmetic, L2 entries), ``qcow2`` (the cluster reader),
``qcow2_data_file`` (external data files),
``compression``, ``metadata`` (the per-open table cache and its budget), ``chain``
(backing-name rules, the one chain walker), ``disk`` (the public objects); ``formats``
(detection and openers of the others), ``vmdk`` + ``vmdk_descriptor`` + ``vmdk_extents``,
``vhd``, ``vhdx`` + ``vhdx_headers``, ``mapped`` (their shared read path and tables),
``names`` (file names written by other systems).
"""

from filerestore.image.chain import RAW_SUFFIXES, ChainLink
from filerestore.image.disk import (
    DEFAULT_MAX_CHAIN_DEPTH,
    DiskImage,
    open_backup,
    open_image,
    probe_backup,
    probe_chain,
)
from filerestore.image.formats import is_image_file
from filerestore.image.metadata import DEFAULT_METADATA_BUDGET

__all__ = [
    "DEFAULT_MAX_CHAIN_DEPTH",
    "DEFAULT_METADATA_BUDGET",
    "RAW_SUFFIXES",
    "ChainLink",
    "DiskImage",
    "is_image_file",
    "open_backup",
    "open_image",
    "probe_backup",
    "probe_chain",
]

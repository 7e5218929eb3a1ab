"""The image layer: a QCOW2, VMDK, VHD, VHDX or raw image and its parent chain as one disk.

``open_image(path, repository)`` returns a :class:`DiskImage`, a blockio Reader of the guest
disk; ``probe_chain`` describes the chain from headers alone (the catalog derives full or
incremental and the parent from it). Modules: ``qcow2_header`` (header layout, limits),
``qcow2_entries`` (address arithmetic, L2 entries), ``qcow2`` (the cluster reader),
``compression``, ``chain`` (backing-name rules, the one chain walker), ``disk`` (the public
objects); ``formats`` (detection and openers of the others), ``vmdk`` + ``vmdk_descriptor``,
``vhd``, ``vhdx`` + ``vhdx_headers``, ``mapped`` (their shared read path and table cache),
``names`` (file names written by other systems).
"""

from filerestore.image.chain import ChainLink
from filerestore.image.disk import DEFAULT_MAX_CHAIN_DEPTH, DiskImage, open_image, probe_chain
from filerestore.image.formats import is_image_file

__all__ = [
    "DEFAULT_MAX_CHAIN_DEPTH",
    "ChainLink",
    "DiskImage",
    "is_image_file",
    "open_image",
    "probe_chain",
]

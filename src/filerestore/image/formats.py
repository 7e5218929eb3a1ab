"""The image formats beside QCOW2 and raw, as the chain walker sees them: detection by magic,
and one opener per format that says what the file is and who its parent is.

# References: the per-format modules (vmdk.py, vhd.py, vhdx.py) name their specifications.

The chain walker (chain.py) is the one place that follows parents, confines them to the
repository and refuses loops and depth, for every format. A format only answers:

- ``detect``: is this file mine (by magic, in the order below)?
- ``open``: parse and validate the headers, open the extra files it is made of (VMDK
  extents, each through the repository store), and return a :class:`FormatLink`: sizes, the
  parent's name and format, the identity the parent must have, and how to build the layer.
"""

from __future__ import annotations

import importlib
import struct
from typing import TYPE_CHECKING

from filerestore.errors import CorruptImageError

if TYPE_CHECKING:
    from filerestore.image.format_link import FormatLink
    from filerestore.source import SourceFile, Store

# The format modules are imported when a file of theirs is met, not with the image layer:
# opening a QCOW2 backup (the common case, and `filerestore ls`'s start-up time) never
# loads the VMDK, VHD and VHDX readers.

QCOW2_MAGIC = b"QFI\xfb"  # QEMU docs/interop/qcow2.txt, header byte 0
VMDK_MAGICS = (b"KDMV", b"COWD")  # vmdk.SPARSE_MAGIC, vmdk.COWD_MAGIC (a test checks)
VMDK_DESCRIPTOR = b"# Disk DescriptorFile"  # vmdk.DESCRIPTOR_MAGIC
VHDX_SIGNATURE = b"vhdxfile"  # vhdx.SIGNATURE
VHD_COOKIE = b"conectix"  # vhd.COOKIE


def is_vmdk(head: bytes) -> bool:
    return head[:4] in VMDK_MAGICS or head.startswith(VMDK_DESCRIPTOR)


def is_vhdx(head: bytes) -> bool:
    return head[:8] == VHDX_SIGNATURE


def detect(file: SourceFile, head: bytes) -> str | None:
    """The format of ``file`` from its first bytes (and, for a fixed VHD, its last sector).

    Order: the magic numbers at offset 0 first (they cannot be mistaken for one another);
    the VHD footer at the end last, because a fixed VHD is a raw disk with a trailer, and
    only a valid footer (cookie, checksum, type) makes it one.
    """
    if is_vmdk(head):
        return "vmdk"
    if is_vhdx(head):
        return "vhdx"
    from filerestore.image import vhd  # its footer check reads the file's end

    if vhd.is_vhd(file, head):
        return "vpc"
    return None


def is_image_file(head: bytes, tail: bytes) -> bool:
    """Whether a file whose first bytes are ``head`` and last 512 ``tail`` is an image of a
    known format (QCOW2 or the ones here): what a repository scan registers."""
    if head[:4] == QCOW2_MAGIC or is_vmdk(head) or is_vhdx(head):
        return True
    if head[:8] == VHD_COOKIE:
        return True
    if tail[:8] != VHD_COOKIE:
        return False
    from filerestore.image import vhd

    try:
        return tail[:8] == vhd.COOKIE and vhd.parse_footer(tail).disk_type == vhd.FIXED
    except (CorruptImageError, struct.error):  # a short tail: a file under 85 bytes
        return False


def open_format(store: Store, file: SourceFile, fmt: str, head: bytes) -> FormatLink:
    module, opener = OPENERS[fmt]
    link: FormatLink = getattr(importlib.import_module(module), opener)(store, file, head)
    return link


#: format (QEMU's driver name) -> the module and function that open it
OPENERS: dict[str, tuple[str, str]] = {
    "vmdk": ("filerestore.image.vmdk", "open_vmdk"),
    "vpc": ("filerestore.image.vhd", "open_vhd"),
    "vhdx": ("filerestore.image.vhdx", "open_vhdx"),
}

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

import struct
from collections.abc import Callable

from filerestore.errors import CorruptImageError
from filerestore.image import vhd, vhdx, vmdk
from filerestore.image.format_link import FormatLink
from filerestore.source import SourceFile, Store

QCOW2_MAGIC = b"QFI\xfb"  # QEMU docs/interop/qcow2.txt, header byte 0


def detect(file: SourceFile, head: bytes) -> str | None:
    """The format of ``file`` from its first bytes (and, for a fixed VHD, its last sector).

    Order: the magic numbers at offset 0 first (they cannot be mistaken for one another);
    the VHD footer at the end last, because a fixed VHD is a raw disk with a trailer, and
    only a valid footer (cookie, checksum, type) makes it one.
    """
    if vmdk.is_vmdk(head):
        return "vmdk"
    if vhdx.is_vhdx(head):
        return "vhdx"
    if vhd.is_vhd(file, head):
        return "vpc"
    return None


def is_image_file(head: bytes, tail: bytes) -> bool:
    """Whether a file whose first bytes are ``head`` and last 512 ``tail`` is an image of a
    known format (QCOW2 or the ones here): what a repository scan registers."""
    if head[:4] == QCOW2_MAGIC or vmdk.is_vmdk(head) or vhdx.is_vhdx(head):
        return True
    if head[:8] == vhd.COOKIE:
        return True
    try:
        return tail[:8] == vhd.COOKIE and vhd.parse_footer(tail).disk_type == vhd.FIXED
    except (CorruptImageError, struct.error):  # a short tail: a file under 85 bytes
        return False


def open_format(store: Store, file: SourceFile, fmt: str, head: bytes) -> FormatLink:
    return OPENERS[fmt](store, file, head)


OPENERS: dict[str, Callable[[Store, SourceFile, bytes], FormatLink]] = {
    "vmdk": vmdk.open_vmdk,
    "vpc": vhd.open_vhd,
    "vhdx": vhdx.open_vhdx,
}

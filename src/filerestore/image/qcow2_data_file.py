"""QCOW2 external data files: where a qcow2 file's guest clusters live when it has one.

# References: QEMU docs/interop/qcow2.txt (incompatible feature bit 2 "External data file
# bit", autoclear bit 1 "Raw external data bit", header extension 0x44415441 "External data
# file name string", "Standard Cluster Descriptor" and "L2 table entry" bit 63); QEMU
# block/qcow2.c (qcow2_read_extensions(), qcow2_do_open(), qcow2_co_create()), block/qcow2.h
# (qcow2_get_cluster_type()) and block/qcow2-cluster.c (qcow2_get_host_offset(),
# qcow2_subcluster_zeroize()).

The rules, each from the references:

- The data file is named by the header extension (``qcow2_read_extensions``). With the bit
  set and no name QEMU needs ``data-file=`` on its command line (``qcow2_do_open``: "'data-file'
  is required for this image"), which a backup cannot carry: refused by name
  (:func:`~filerestore.image.qcow2_header.parse_first_cluster`). A name without the bit
  names nothing: QEMU opens no data file then, nor does this reader.
- The name is opened like a backing file (:mod:`filerestore.image.chain`): through the
  repository's store, relative to the directory of the image naming it, absolute only under
  the root; protocols and NUL bytes refused by name; a link or ``..`` out of the root, a
  FIFO or a device refused. (QEMU 7.2 resolves a relative data file name from its own
  working directory, so ``qemu-img`` must be run from the image's directory to find it; a
  service has no meaningful working directory, and a backup's files move together.)
- Without the raw bit, guest data lives where the L2 entries say, in the data file instead
  of the image file. The host offset of an allocated cluster must equal its guest offset
  (qcow2.txt bit 2; ``qcow2_get_host_offset``: "External data file host cluster offset ...
  does not match guest cluster offset"), and since 0 is then a valid offset, an entry with
  offset 0 is allocated when its bit 63 (``QCOW_OFLAG_COPIED``, refcount exactly one) is
  set (qcow2.txt "L2 table entry"; ``qcow2_get_cluster_type``). Zero clusters read zeros and
  unallocated ones read the backing file (an image with a data file may have one) or zeros,
  as in any qcow2 file. Compressed clusters are not supported with a data file (qcow2.txt
  bit 2; ``qcow2_get_host_offset``: "Compressed cluster entry found in image with external
  data file"): refused as corrupt. Reads past the data file's end are corrupt, never zeros.
- With the raw bit the data file "can be read as a consistent standalone raw image without
  looking at the qcow2 metadata" (qcow2.txt autoclear bit 1), and this reader does exactly
  that: the guest disk is the data file's first ``size`` bytes, and no L1 or L2 table is
  read. The L2 entries cannot say otherwise in an image QEMU keeps: ``qcow2_co_create``
  preallocates the metadata of a raw data file (every cluster mapped to its own offset),
  and ``qcow2_subcluster_zeroize`` writes zeros into the data file before it marks clusters
  zero, so a zero cluster is zeros in the data file too, and no cluster is unallocated
  (there is no backing file to fall through to: the raw bit "conflicts with backing files",
  so an image with both is refused as corrupt). A raw data file shorter than the virtual
  disk cannot be the guest disk and is refused as corrupt.
- One way QEMU breaks that promise itself: a guest discard with ``pass-discard-request=off``
  turns clusters into zero clusters and leaves the data file's bytes, so ``qemu-img
  convert`` reads zeros where this reader reads the data file (tested). Such a range is
  one the guest discarded: it holds none of its files.
"""

from __future__ import annotations

from filerestore.blockio import SizedReader
from filerestore.errors import CorruptImageError
from filerestore.image.qcow2_header import Qcow2Header
from filerestore.source import SourceFile


def check_data_file(header: Qcow2Header, data_file: SourceFile, image: str) -> None:
    """What can be checked of an opened data file before any read."""
    if header.data_file_is_raw and data_file.size < header.size:
        raise CorruptImageError(
            f"{image}: raw external data file {data_file.name} is {data_file.size} bytes, "
            f"shorter than the virtual disk ({header.size} bytes)"
        )


class RawDataFile(SizedReader):
    """The guest disk of a qcow2 file whose data file is raw: the data file's first ``size``
    bytes, read with no table in between."""

    def __init__(self, data_file: SourceFile, size: int) -> None:
        self.file = data_file
        self._size = size

    def read_into(self, dst: memoryview, offset: int) -> None:
        self.file.pread_into(dst, offset, "raw external data")

    def _read(self, offset: int, n: int) -> bytes:
        return self.file.pread(offset, n, "raw external data")

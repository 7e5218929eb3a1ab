"""QCOW2 address arithmetic and L1/L2 entry decoding (pure functions).

# References: QEMU docs/interop/qcow2.txt ("Cluster mapping", "Compressed Clusters
# Descriptor", "Extended L2 Entries", incompatible bit 2 for external data files); names
# follow QEMU block/qcow2.h (offset_into_cluster, offset_to_l1_index, offset_to_l2_index,
# qcow2_get_cluster_type, qcow2_get_subcluster_type, qcow2_parse_compressed_l2_entry) and
# block/qcow2-cluster.c (qcow2_get_host_offset's checks for external data files).
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from filerestore.errors import CorruptImageError

L1E_OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00
L2E_OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00
QCOW_OFLAG_COPIED = 1 << 63
QCOW_OFLAG_COMPRESSED = 1 << 62
QCOW_OFLAG_ZERO = 1 << 0
SECTOR_SIZE = 512  # compressed sizes count 512-byte sectors whatever the cluster size


# A NamedTuple, not a frozen dataclass: creating a dataclass compiles its methods,
# which every CLI start-up would pay for (issue 14)
class Geometry(NamedTuple):
    """The address split of one image: guest offset -> (L1 index, L2 index, in-cluster)."""

    cluster_bits: int
    extended_l2: bool = False

    @property
    def cluster_size(self) -> int:
        return 1 << self.cluster_bits

    @property
    def l2_bits(self) -> int:
        return self.cluster_bits - 3 - int(self.extended_l2)  # 8-byte entries, or 16

    @property
    def subcluster_bits(self) -> int:
        return self.cluster_bits - 5  # 32 subclusters per cluster

    @property
    def l2_size(self) -> int:
        return 1 << self.l2_bits

    @property
    def csize_shift(self) -> int:
        return 62 - (self.cluster_bits - 8)

    @property
    def csize_mask(self) -> int:
        return (1 << (self.cluster_bits - 8)) - 1

    @property
    def cluster_offset_mask(self) -> int:
        return (1 << self.csize_shift) - 1


def offset_into_cluster(g: Geometry, offset: int) -> int:
    return offset & (g.cluster_size - 1)


def offset_to_l1_index(g: Geometry, offset: int) -> int:
    return offset >> (g.l2_bits + g.cluster_bits)


def offset_to_l2_index(g: Geometry, offset: int) -> int:
    return (offset >> g.cluster_bits) & (g.l2_size - 1)


def l2_table_offset(g: Geometry, l1_entry: int) -> int:
    """Host offset of the L2 table an L1 entry names (0: none), checked for alignment."""
    offset = l1_entry & L1E_OFFSET_MASK
    if offset_into_cluster(g, offset):
        raise CorruptImageError(f"L2 table offset {offset:#x} is not cluster-aligned")
    return offset


class ClusterType(enum.IntEnum):
    UNALLOCATED = 0  # read from the backing file, or zeros
    ZERO = 1  # reads as zeros, never from the backing file
    NORMAL = 2
    COMPRESSED = 3


def has_host_cluster(l2_entry: int, has_data_file: bool) -> bool:
    """Whether a non-compressed entry names a host cluster. Offset 0 means none, except in
    an image with an external data file, where 0 is a valid offset: there every cluster has
    refcount 1, so QCOW_OFLAG_COPIED tells cluster 0 from none (qcow2_get_cluster_type)."""
    if l2_entry & L2E_OFFSET_MASK:
        return True
    return has_data_file and bool(l2_entry & QCOW_OFLAG_COPIED)


def get_cluster_type(l2_entry: int, has_data_file: bool = False) -> ClusterType:
    if l2_entry & QCOW_OFLAG_COMPRESSED:
        return ClusterType.COMPRESSED
    if l2_entry & QCOW_OFLAG_ZERO:
        return ClusterType.ZERO
    if not has_host_cluster(l2_entry, has_data_file):
        return ClusterType.UNALLOCATED
    return ClusterType.NORMAL


def get_subcluster_type(
    l2_entry: int, l2_bitmap: int, sc_index: int, has_data_file: bool = False
) -> ClusterType:
    """The type of one subcluster of a non-compressed extended L2 entry.

    Bit 0 of the entry is not a zero flag here; the bitmap says allocated (bits 0-31) or
    reads-as-zero (bits 32-63) per subcluster, and never both.
    """
    alloc = l2_bitmap >> sc_index & 1
    zero = l2_bitmap >> (32 + sc_index) & 1
    if alloc and zero:
        raise CorruptImageError(f"subcluster {sc_index} is marked both allocated and zero")
    if alloc:
        if not has_host_cluster(l2_entry, has_data_file):
            raise CorruptImageError(f"subcluster {sc_index} is allocated in an unallocated cluster")
        return ClusterType.NORMAL
    return ClusterType.ZERO if zero else ClusterType.UNALLOCATED


def data_file_host_cluster(g: Geometry, l2_entry: int, guest_cluster: int) -> int:
    """The host cluster of a non-compressed entry of an image with an external data file:
    its guest offset, which the entry must repeat (qcow2.txt incompatible bit 2: "The offset
    field in the Standard Cluster Descriptor must match the guest offset"; QEMU
    qcow2_get_host_offset refuses a mismatch). A compressed entry is refused: "neither
    compressed clusters nor internal snapshots are supported" with a data file."""
    if l2_entry & QCOW_OFLAG_COMPRESSED:
        raise CorruptImageError(
            f"compressed cluster at guest offset {guest_cluster:#x} in an image with an "
            "external data file (compressed clusters are not allowed there)"
        )
    host = normal_host_offset(g, l2_entry)
    if host != guest_cluster:
        raise CorruptImageError(
            f"external data file host cluster offset {host:#x} does not match guest "
            f"cluster offset {guest_cluster:#x}"
        )
    return host


def normal_host_offset(g: Geometry, l2_entry: int) -> int:
    offset = l2_entry & L2E_OFFSET_MASK
    if offset_into_cluster(g, offset):
        raise CorruptImageError(f"data cluster offset {offset:#x} is not cluster-aligned")
    return offset


def parse_compressed_l2_entry(g: Geometry, l2_entry: int) -> tuple[int, int]:
    """(host offset, byte length) of a compressed cluster's data, as QEMU computes them."""
    coffset = l2_entry & g.cluster_offset_mask
    nb_csectors = ((l2_entry >> g.csize_shift) & g.csize_mask) + 1
    return coffset, nb_csectors * SECTOR_SIZE - (coffset & (SECTOR_SIZE - 1))


def data_file_cluster(g: Geometry, l2_entry: int, guest_cluster: int) -> tuple[ClusterType, int]:
    """Type and host cluster offset of a standard (8-byte) L2 entry of an image with an
    external data file. Every entry naming a host cluster is checked, zero ones too, as
    qcow2_get_host_offset checks QCOW2_CLUSTER_ZERO_ALLOC; a zero entry without an offset
    names none (the zero flag is tested first, as in qcow2_get_cluster_type)."""
    kind = get_cluster_type(l2_entry, has_data_file=True)
    if kind == ClusterType.UNALLOCATED or (
        kind == ClusterType.ZERO and not l2_entry & L2E_OFFSET_MASK
    ):
        return kind, 0
    return kind, data_file_host_cluster(g, l2_entry, guest_cluster)

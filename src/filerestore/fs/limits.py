# References: the Linux kernel's fs/ext4/super.c (ext4_max_size, ext4_max_bitmap_size) and
# include/linux/fs.h (MAX_LFS_FILESIZE); "XFS Algorithms & Data Structures" (xfs_fsize_t,
# XFS_DIR2_LEAF_OFFSET); Microsoft "exFAT file system specification" 7.6.5-7.6.6 (DataLength);
# Microsoft fatgen103 section 6 (DIR_FileSize); ntfs-3g's layout.h (ATTR_RECORD data_size);
# btrfs on-disk format (btrfs_inode_item.size, u64, and the kernel's
# s_maxbytes = MAX_LFS_FILESIZE).
"""The largest file (and directory) each format can hold: a larger size is corrupt.

A size is taken from the image, so a few flipped bits make a file claim exabytes; a reader
that believed it would stream zeros for ever. Every backend refuses, on open, a size past its
format's limit (``Filesystem._max_file_size``), and reads directories no larger than their
format allows, in bounded pieces.
"""

from __future__ import annotations

#: include/linux/fs.h MAX_LFS_FILESIZE on 64-bit hosts (LLONG_MAX): the kernel's s_maxbytes
#: for XFS and Btrfs, and the largest offset any Linux file can have
MAX_LFS_FILESIZE = (1 << 63) - 1

# --- ext2/3/4 -------------------------------------------------------------------------------

EXT_DIRECT_BLOCKS = 12  # i_block[0..11], then single, double, triple indirect
EXT_SECTOR = 512  # i_blocks counts 512-byte sectors unless the inode has HUGE_FILE_FL


def _i_blocks_limit(block_bits: int, huge_file: bool) -> int:
    """Blocks i_blocks can count: 32 bits of sectors, or 48 with huge_file (ext4_max_size)."""
    sectors = (1 << 48) - 1 if huge_file else (1 << 32) - 1
    return sectors >> (block_bits - 9)


def ext4_extent_max_size(block_bits: int, huge_file: bool) -> int:
    """ext4_max_size: an extent's first block (ee_block) is 32 bits, less one block so
    that ee_len still covers the last one; without huge_file i_blocks bounds it too."""
    res = ((1 << 32) - 1) << block_bits
    if not huge_file:
        res = min(res, _i_blocks_limit(block_bits, huge_file) << block_bits)
    return min(res, MAX_LFS_FILESIZE)


def ext_block_map_max_size(block_bits: int, huge_file: bool) -> int:
    """ext4_max_bitmap_size: 12 direct blocks and single, double and triple indirect trees,
    bounded by what i_blocks can count (an upper bound: the kernel also subtracts the
    indirect blocks themselves, which only makes its limit a little smaller)."""
    per_block = 1 << (block_bits - 2)  # 32-bit block numbers per indirect block
    blocks = EXT_DIRECT_BLOCKS + per_block + per_block**2 + per_block**3
    blocks = min(blocks, _i_blocks_limit(block_bits, huge_file))
    return min(blocks << block_bits, MAX_LFS_FILESIZE)


# --- XFS ------------------------------------------------------------------------------------

#: di_size is an xfs_fsize_t (signed 64 bits); the kernel's s_maxbytes is MAX_LFS_FILESIZE
XFS_MAX_FILE_SIZE = MAX_LFS_FILESIZE

# --- Btrfs ----------------------------------------------------------------------------------

#: btrfs_inode_item.size is a u64, but the kernel sets s_maxbytes = MAX_LFS_FILESIZE and so
#: never writes a larger one
BTRFS_MAX_FILE_SIZE = MAX_LFS_FILESIZE
#: the kernel refuses a symlink target longer than a page (fs/btrfs/inode.c btrfs_symlink:
#: name_len > BTRFS_MAX_INLINE_DATA_SIZE, which is below 4 KiB)
BTRFS_MAX_SYMLINK = 4095

# --- FAT and exFAT ----------------------------------------------------------------------------

#: fatgen103 section 6: DIR_FileSize is 32 bits, so 4 GiB - 1
FAT_MAX_FILE_SIZE = (1 << 32) - 1
#: exFAT spec 7.6.6: a directory's DataLength is at most 256 MiB
EXFAT_MAX_DIRECTORY_SIZE = 256 << 20


def exfat_max_file_size(cluster_count: int, cluster_size: int) -> int:
    """exFAT spec 7.6.6: a file's DataLength is at most ClusterCount * cluster size."""
    return cluster_count * cluster_size


# --- NTFS -------------------------------------------------------------------------------------

#: an attribute's data size is a signed 64-bit count (ntfs-3g include/ntfs-3g/layout.h,
#: ``sle64 data_size``). Windows stops at 2^32 clusters (Microsoft "NTFS overview"), but
#: ntfs-3g writes sparse files up to 2^63 - 1 bytes (checked with truncate), so only the
#: field's range is a format limit
NTFS_MAX_FILE_SIZE = MAX_LFS_FILESIZE

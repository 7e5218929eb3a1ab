"""NTFS, read through libfsntfs (pyfsntfs).

# References: libfsntfs "New Technologies File System (NTFS)" format documentation
# (github.com/libyal/libfsntfs/blob/main/documentation); MS-FSCC 2.1.2 (reparse tags and
# buffers) and 2.6 (file attributes); ntfs-3g's "Interix" special files (ntfs-3g
# src/lib/reparse.c and efs.c, "IntxLNK" symlinks).

Decisions, so every caller sees the same thing:

- The NTFS metadata files at the root (``$MFT``, ``$Bitmap``, ... ``$Extend``: MFT records
  below 24, the range NTFS reserves for them) are not listed and cannot be opened by path.
- Kinds: a reparse point tagged symlink or mount point (junction) is a symlink; a file with
  the system attribute whose data starts ``IntxLNK\\1`` (how ntfs-3g stores ``ln -s``) is a
  symlink; ``IntxCHR``/``IntxBLK`` files (ntfs-3g devices) are "other"; anything with a
  directory index is a directory; the rest are files. Other reparse points keep their kind.
- Data kept elsewhere (ntfs_reparse.py): a file whose reparse point hands its data to a
  cloud-files provider, Data Deduplication, a WIMBoot WIM, an HSM ... and whose own $DATA
  does not hold every byte is listed with ``data_location`` saying where, and refused on
  open (DataNotInImageError), never read as the zeros its sparse $DATA holds. WOF-compressed
  files (file provider) are read, decompressed by libfsntfs from ``WofCompressedData``.
- Link targets: Windows targets are mapped to guest paths: ``\\??\\C:\\dir\\f`` becomes
  ``/dir/f`` (the drive is taken to be this volume), backslashes become slashes.
- ``mode`` is synthesised (no Unix permissions in NTFS): the read-only attribute drops the
  write bits. ``ctime`` is the MFT entry change time, ``btime`` the creation time, both from
  ``$STANDARD_INFORMATION``. ``nlink`` counts the entry's non-DOS ``$FILE_NAME`` attributes.
- Only the unnamed data stream is read; alternate data streams are not listed.
- An EFS-encrypted file is listed but refused on open (UnsupportedImageError).
- Data is read off the volume through the data runs unless the file is compressed,
  resident (kept in the MFT record) or has uninitialised data past its valid
  length; those read through the library (which decompresses LZNT1).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterator

import pyfsntfs

from filerestore.blockio import Reader
from filerestore.errors import DataNotInImageError, FilesystemError, UnsupportedImageError
from filerestore.fs.contents import FileContents
from filerestore.fs.corrupt import parse_errors
from filerestore.fs.entry import DATA_LOCATIONS, Entry, EntryKind, synthetic_mode
from filerestore.fs.libyal import (
    EXTENT_FLAG_SPARSE,
    LIBRARY_ERRORS,
    Extent,
    LibyalFilesystem,
    LibyalNode,
    extents_from_library,
    filetime_to_ns,
)
from filerestore.fs.limits import NTFS_MAX_FILE_SIZE
from filerestore.fs.ntfs_lazy import LazyEntry, PlainDirectory, plain_directory
from filerestore.fs.ntfs_reparse import (
    IO_REPARSE_TAG_WOF,
    WOF_ALGORITHMS,
    WOF_STREAM,
    apply_fixups,
    data_location,
    reparse_data,
    wof_provider,
)

OEM_ID = b"NTFS    "  # boot sector offset 3

MFT_INDEX_MASK = (1 << 48) - 1  # a file reference is 48 bits of MFT index, 16 of sequence
ROOT_MFT_INDEX = 5
FIRST_USER_MFT_INDEX = 24  # records 0..23 are reserved for metadata files

# MS-FSCC 2.6 file attributes
ATTR_READ_ONLY = 0x0001
ATTR_SYSTEM = 0x0004
ATTR_REPARSE_POINT = 0x0400
ATTR_COMPRESSED = 0x0800
ATTR_ENCRYPTED = 0x4000

# NTFS attribute types (libfsntfs documentation, "The attribute types")
TYPE_FILE_NAME = 0x30
TYPE_DATA = 0x80
TYPE_REPARSE_POINT = 0xC0
NAMESPACE_DOS = 2  # a DOS 8.3 alias of a Win32 name: not a link of its own

# MS-FSCC 2.1.2.1 reparse tags
IO_REPARSE_TAG_MOUNT_POINT = 0xA0000003
IO_REPARSE_TAG_SYMLINK = 0xA000000C
LINK_TAGS = (IO_REPARSE_TAG_MOUNT_POINT, IO_REPARSE_TAG_SYMLINK)

# ntfs-3g Interix special files: an 8-byte magic, then (for links) the UTF-16LE target
INTERIX_SYMLINK = b"IntxLNK\x01"
INTERIX_DEVICES = (b"IntxCHR\x00", b"IntxBLK\x00")
INTERIX_MAX_SIZE = 8 + 2 * 4096  # PATH_MAX UTF-16 units

# synthetic_mode for every kind, read-only or not; and filetime_to_ns's epoch, inlined in
# _entry (both run once per listed entry)
_MODES = {(k, ro): synthetic_mode(k, read_only=ro) for k in EntryKind for ro in (False, True)}
_FILETIME_EPOCH_OFFSET = 116_444_736_000_000_000  # 1601-01-01 to 1970-01-01 in 100 ns

_DRIVE_PREFIX = re.compile(r"^(?:\\\?\?\\|\\\\\?\\)?[A-Za-z]:\\?")


def detect(reader: Reader) -> str | None:
    return "ntfs" if reader.read_at(3, 8) == OEM_ID else None


def open_fs(reader: Reader) -> NtfsFilesystem:
    with parse_errors("ntfs", "open the filesystem"):
        return NtfsFilesystem(reader)


def windows_target_to_posix(target: str) -> str:
    """A reparse point's substitute name as a guest path (see the module docstring)."""
    match = _DRIVE_PREFIX.match(target)
    if match:
        return "/" + target[match.end() :].replace("\\", "/")
    if target.startswith("\\??\\"):  # \??\UNC\server\share, \??\Volume{...}: kept, unresolvable
        target = target[4:]
    return target.replace("\\", "/")


def mft_entry_size(boot: bytes) -> int:
    """Bytes per MFT entry from the boot sector (libfsntfs documentation, "Boot record"):
    byte 0x40 counts clusters, or if negative is -log2 of the size in bytes."""
    if len(boot) < 0x41:
        raise FilesystemError("ntfs: boot sector too short")
    sector = int.from_bytes(boot[0x0B:0x0D], "little")
    spc = boot[0x0D]
    cluster = sector * (spc if spc <= 0x80 else 1 << (256 - spc))
    raw = boot[0x40] - 256 if boot[0x40] > 0x7F else boot[0x40]
    size = 1 << -raw if raw < 0 else raw * cluster
    if not 256 <= size <= 65536:
        raise FilesystemError(f"ntfs: MFT entry size {size} is out of range (corrupt)")
    return size


def cluster_size(boot: bytes) -> int:
    """Bytes per cluster: bytes per sector (0x0B) times sectors per cluster (0x0D; above 0x80
    a negative power of two, 2 ** (256 - value), as mkntfs writes for clusters > 64 KiB)."""
    sector = int.from_bytes(boot[0x0B:0x0D], "little")
    per = boot[0x0D]
    return sector * (1 << (256 - per) if per > 0x80 else per)


def mft_index(node: LibyalNode) -> int:
    return int(node.get_file_reference()) & MFT_INDEX_MASK


class NtfsFilesystem(LibyalFilesystem):
    kind = "ntfs"
    case_insensitive = True  # Windows looks names up through $UpCase
    library = pyfsntfs

    def __init__(self, reader: Reader) -> None:
        self._kinds: dict[int, EntryKind] = {}
        self._plain: dict[int, PlainDirectory] = {}  # directories reached through an index
        self._locations: dict[int, str | None] = {}
        boot = reader.read_at(0, 512)
        self._entry_size = mft_entry_size(boot)
        self._cluster = cluster_size(boot)
        super().__init__(reader)
        with self._library_errors("open the MFT"):
            self._mft = self._volume.get_file_entry(0)

    def _read_label(self) -> str | None:
        with self._library_errors("read the volume name"):
            name = self._volume.get_name()
        return str(name) if name else None

    def _time_ns(self, raw: int) -> int | None:
        return filetime_to_ns(raw)

    # --- listing and kinds ---------------------------------------------------------------

    def _children(self, node: LibyalNode) -> Iterator[tuple[str, LibyalNode]]:
        at_root = mft_index(node) == ROOT_MFT_INDEX
        for name, child in super()._children(node):
            if at_root and name.startswith("$") and mft_index(child) < FIRST_USER_MFT_INDEX:
                continue
            yield name, child

    # --- a page of a large directory: names and kinds from its $I30 index (ntfs_index.py) ---

    def _located(self, node: LibyalNode) -> list[tuple[str, tuple[int, bool]]] | None:
        from filerestore.fs.ntfs_index import Unhandled, i30_names

        index = mft_index(node)
        try:
            raw = self._raw_entry(index)
        except LIBRARY_ERRORS:
            return None  # an MFT the library cannot read there: its listing says why
        if raw is None or self._cluster <= 0:
            return None
        try:
            named = i30_names(raw, self.reader.read_at, self._cluster, LINK_TAGS)
        except Unhandled:
            return None  # the library lists it (or refuses it)
        if index == ROOT_MFT_INDEX:  # the metadata files are not listed
            named = [
                n for n in named
                if not (n[0].startswith("$") and n[2] & MFT_INDEX_MASK < FIRST_USER_MFT_INDEX)
            ]  # fmt: skip
        return [(name, (ref, is_dir)) for name, is_dir, ref in named]

    def _located_dirs(self, named: dict[str, tuple[int, bool]]) -> list[tuple[str, bool]]:
        return [(name, where[1]) for name, where in named.items()]

    def _nodes_at(self, node: LibyalNode, wheres: list[tuple[int, bool]]) -> list[LibyalNode]:
        with self._library_errors("read an MFT entry"):
            return [self._volume.get_file_entry(ref & MFT_INDEX_MASK) for ref, _ in wheres]

    def _key(self, node: LibyalNode) -> Hashable:
        with self._library_errors("read an MFT entry"):
            return mft_index(node)

    def _iter_all(self) -> Iterator[tuple[Entry, list[Entry]]]:
        from filerestore.fs.ntfs_walk import iter_all  # the MFT scan's own module

        return iter_all(self)

    def _kind(self, node: LibyalNode) -> EntryKind:
        try:
            index = node.get_file_reference() & MFT_INDEX_MASK
            kind = self._kinds.get(index)
            if kind is None:
                plain = index in self._plain and isinstance(node, LazyEntry)
                kind = EntryKind.DIR if plain else self._read_kind(node)
                self._kinds[index] = kind
        except LIBRARY_ERRORS as exc:
            raise self._library_error("read an MFT entry", exc) from exc
        return kind

    # --- a path through the $I30 indexes (ntfs_lazy.py) ---------------------------------

    def _child(self, node: LibyalNode, name: str) -> tuple[str, LibyalNode] | None:
        named = self._paged(node)
        if named is None:
            return super()._child(node, name)
        stored = self._stored_name(node, named, name)
        if stored is None:
            return None
        ref = named[stored][0]
        index = ref & MFT_INDEX_MASK
        try:
            raw = self._raw_entry(index)
        except LIBRARY_ERRORS:
            raw = None
        if raw is None or int.from_bytes(raw[0x10:0x12], "little") != ref >> 48:
            return super()._child(node, name)  # not the entry the index names: the library's
        plain = plain_directory(raw)
        if plain is not None:
            self._plain[index] = plain
        return stored, LazyEntry(ref, self._volume.get_file_entry)

    def _plain_entry(self, name: str, path: str, node: LibyalNode) -> Entry | None:
        """A plain directory's Entry from its MFT entry (no library file entry made)."""
        if not isinstance(node, LazyEntry):
            return None
        index = node.get_file_reference() & MFT_INDEX_MASK
        plain = self._plain.get(index)
        if plain is None or self._kind(node) is not EntryKind.DIR:
            return None
        m, a, c, b = (
            (t - _FILETIME_EPOCH_OFFSET) * 100 if t else None
            for t in (plain.modification, plain.access, plain.entry_modification, plain.creation)
        )
        mode = _MODES[EntryKind.DIR, bool(plain.flags & ATTR_READ_ONLY)]
        return Entry(
            name, path, EntryKind.DIR, 0, mode, None, None, m, a, c, b, index, plain.links or 1
        )

    def _read_kind(self, node: LibyalNode) -> EntryKind:
        flags = int(node.get_file_attribute_flags())
        if flags & ATTR_REPARSE_POINT and self._reparse_link(node) is not None:
            return EntryKind.SYMLINK
        if node.has_directory_entries_index():
            return EntryKind.DIR
        if flags & ATTR_SYSTEM and 8 <= int(node.get_size()) <= INTERIX_MAX_SIZE:
            magic = bytes(node.read_buffer_at_offset(8, 0))
            if magic == INTERIX_SYMLINK:
                return EntryKind.SYMLINK
            if magic in INTERIX_DEVICES:
                return EntryKind.OTHER
        return EntryKind.FILE

    def _reparse_tag(self, node: LibyalNode) -> int | None:
        for i in range(int(node.get_number_of_attributes())):
            attr = node.get_attribute(i)
            if attr.get_attribute_type() == TYPE_REPARSE_POINT:
                return int(attr.get_tag())
        return None

    def _raw_entry(self, index: int) -> bytes | None:
        """MFT entry ``index`` as stored, update sequence applied (None if unreadable)."""
        size = self._entry_size
        data = bytes(self._mft.read_buffer_at_offset(size, index * size))
        return apply_fixups(data) if len(data) == size else None

    def _all_here(self, node: LibyalNode) -> bool:
        """Whether the unnamed $DATA has every byte allocated (resident data counts)."""
        size = int(node.get_size())
        count = int(node.get_number_of_extents())
        if size == 0 or count == 0:
            return True
        extents = (node.get_extent(i) for i in range(count))
        return sum(int(n) for _, n, f in extents if not int(f) & EXTENT_FLAG_SPARSE) >= size

    def _data_location(self, node: LibyalNode, flags: int) -> str | None:
        """Where the file's data is when it is not on this volume (ntfs_reparse.py)."""
        if not flags & ATTR_REPARSE_POINT:
            return None
        index = mft_index(node)
        if index not in self._locations:
            tag = self._reparse_tag(node)
            if tag is None:
                self._locations[index] = None
            else:
                data = reparse_data(self._raw_entry, index)
                self._locations[index] = data_location(tag, data, lambda: self._all_here(node))
        return self._locations[index]

    def _reparse_link(self, node: LibyalNode) -> str | None:
        """The substitute name of a symlink or junction reparse point, else None."""
        for i in range(int(node.get_number_of_attributes())):
            attr = node.get_attribute(i)
            if attr.get_attribute_type() == TYPE_REPARSE_POINT:
                if int(attr.get_tag()) not in LINK_TAGS:
                    return None
                name = attr.get_substitute_name()
                return str(name) if name else None
        return None

    # --- metadata ------------------------------------------------------------------------

    def _entry(self, name: str, path: str, node: LibyalNode) -> Entry:
        # called once per listed entry: one try block instead of a context manager per call,
        # library values used as the ints they are, the Entry built positionally
        plain = self._plain_entry(name, path, node)
        if plain is not None:
            return plain
        kind = self._kind(node)
        target = self._link_target(node) if kind is EntryKind.SYMLINK else None
        try:
            flags = node.get_file_attribute_flags()
            if kind is EntryKind.FILE:
                size = node.get_size()
            elif target is not None:
                size = len(target.encode("utf-8", "surrogateescape"))
            else:
                size = 0
            mtime = node.get_modification_time_as_integer()
            atime = node.get_access_time_as_integer()
            ctime = node.get_entry_modification_time_as_integer()
            btime = node.get_creation_time_as_integer()
            index = node.get_file_reference() & MFT_INDEX_MASK
            location = self._data_location(node, flags) if kind is EntryKind.FILE else None
            # nlink: the entry's $FILE_NAME attributes, not counting DOS 8.3 aliases
            links = 0
            get_attribute = node.get_attribute
            for i in range(node.get_number_of_attributes()):
                attr = get_attribute(i)
                if (
                    attr.get_attribute_type() == TYPE_FILE_NAME
                    and attr.get_name_space() != NAMESPACE_DOS
                ):
                    links += 1
        except LIBRARY_ERRORS as exc:
            raise self._library_error(f"read the metadata of {path}", exc) from exc
        return Entry(
            name,
            path,
            kind,
            int(size),
            _MODES[kind, bool(flags & ATTR_READ_ONLY)],
            None,
            None,
            (mtime - _FILETIME_EPOCH_OFFSET) * 100 if mtime else None,
            (atime - _FILETIME_EPOCH_OFFSET) * 100 if atime else None,
            (ctime - _FILETIME_EPOCH_OFFSET) * 100 if ctime else None,
            (btime - _FILETIME_EPOCH_OFFSET) * 100 if btime else None,
            index,
            links or 1,
            target,
            location,
        )

    def _link_target(self, node: LibyalNode) -> str:
        with self._library_errors("read a symbolic link"):
            if int(node.get_file_attribute_flags()) & ATTR_REPARSE_POINT:
                target = self._reparse_link(node)
                if target is not None:
                    return windows_target_to_posix(target)
            size = int(node.get_size())
            if not 8 <= size <= INTERIX_MAX_SIZE:
                raise FilesystemError("ntfs: symbolic link without a target")
            data = bytes(node.read_buffer_at_offset(size, 0))
        if not data.startswith(INTERIX_SYMLINK) or len(data) % 2:
            raise FilesystemError("ntfs: symbolic link without a target")
        return data[8:].decode("utf-16-le", "replace")

    # --- data ----------------------------------------------------------------------------

    def _max_file_size(self, node: LibyalNode) -> int:
        return NTFS_MAX_FILE_SIZE

    def _open(self, node: LibyalNode) -> FileContents:
        with self._library_errors("read an MFT entry"):
            flags = int(node.get_file_attribute_flags())
            location = self._data_location(node, flags)
            wof = flags & ATTR_REPARSE_POINT and self._reparse_tag(node) == IO_REPARSE_TAG_WOF
            if wof and location is None:
                self._check_wof(node)
        if flags & ATTR_ENCRYPTED:
            # EFS data is ciphertext keyed by the user's certificate: never hand it out as
            # the file's contents
            raise UnsupportedImageError("ntfs: the file is EFS-encrypted; it cannot be read")
        if location is not None:
            raise DataNotInImageError(
                f"ntfs: the file's data is not in this image: it is kept in "
                f"{DATA_LOCATIONS[location]} ({location})"
            )
        return super()._open(node)

    def _check_wof(self, node: LibyalNode) -> None:
        """A WOF file-provider file reads from its WofCompressedData stream: it must be there
        (else libfsntfs would read the sparse $DATA, all zeros) with a known algorithm."""
        _, algorithm = wof_provider(reparse_data(self._raw_entry, mft_index(node)) or b"")
        if algorithm not in WOF_ALGORITHMS:
            raise FilesystemError(f"ntfs: WOF-compressed file with unknown algorithm {algorithm}")
        if not node.has_alternate_data_stream_by_name(WOF_STREAM):
            raise FilesystemError(
                f"ntfs: WOF-compressed file without its {WOF_STREAM} stream (corrupt)"
            )

    def _extents(self, node: LibyalNode, size: int) -> list[Extent] | None:
        flags = int(node.get_file_attribute_flags())
        if flags & (ATTR_COMPRESSED | ATTR_ENCRYPTED | ATTR_REPARSE_POINT):
            return None
        count = int(node.get_number_of_extents())
        if count == 0:
            return None  # resident data
        for i in range(int(node.get_number_of_attributes())):
            attr = node.get_attribute(i)
            if attr.get_attribute_type() == TYPE_DATA and not attr.get_attribute_name():
                if int(attr.get_valid_data_size()) < size:
                    return None  # bytes past the valid length read as zeros: library
                break
        raw = [(int(p), int(n), int(f)) for p, n, f in map(node.get_extent, range(count))]
        return extents_from_library(raw, size, self.reader.size)

    def close(self) -> None:
        super().close()
        self._kinds.clear()
        self._plain.clear()
        self._locations.clear()

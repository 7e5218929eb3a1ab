# References: libyal's python bindings share one ``file_entry`` API (sub_file_entries,
# get_name, get_size, file_mode, inode_number, get_*_time_as_integer, get_number_of_extents,
# get_extent -> (offset, size, flags), read_buffer_at_offset, symbolic_link_target);
# https://github.com/libyal/libfsext/wiki, libfsxfs, libfsntfs, libfsfat.
"""A base for filesystems read through the libyal bindings (pyfsext, pyfsxfs, pyfsntfs, pyfsfat).

How a backend uses it (ext and XFS here; NTFS, FAT and exFAT the same way)::

    class NtfsFilesystem(LibyalFilesystem):
        kind = "ntfs"
        library = pyfsntfs                      # the binding module; ``volume()`` is opened

        def _kind(self, node): ...              # from file_attribute_flags, not file_mode
        def _key(self, node): ...               # file_reference instead of inode_number
        def _entry(self, name, path, node): ... # build the Entry; use self._time() for times
        def _time_ns(self, raw): return filetime_to_ns(raw)
        def _extents(self, node): ...           # None for compressed data -> library reads

Rules the base keeps, which an override must keep too:

- The library volume is opened over its own :class:`~filerestore.blockio.ReaderFile`; each
  Filesystem is one handle. Handles are not thread-safe: every hook runs under the
  Filesystem's lock (fs/base.py), and :class:`LibraryFileReader` takes that lock per read.
- A file's data is read straight off the volume reader through its extents when they can be
  trusted (:class:`ExtentReader`, lock-free, no library call per read); ``_extents`` returns
  None when they cannot (inline data, compressed, unknown flags) and reads go to the library.
- Library errors (``IOError``/``OSError`` from libyal) become :class:`FilesystemError` with
  what was being done; wrap library calls in ``with self._library_errors("what"):``.
- Names the library cannot decode (not valid UTF-8) are the backend's business: override
  ``_child_name`` (or ``_children``) to give the on-disk bytes as ``os.fsdecode`` form. If
  ``_child_name`` raises OSError anyway, the entry is listed as ``<undecodable-name-KEY>``,
  which resolves to it, rather than failing the whole directory.
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Hashable, Iterator
from types import ModuleType
from typing import Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar

from filerestore.blockio import Reader, ReaderFile, SizedReader
from filerestore.errors import FilesystemError
from filerestore.fs.base import Filesystem
from filerestore.fs.contents import FileContents, merged, whole_file
from filerestore.fs.entry import Entry, EntryKind, kind_from_mode

#: extent flag libyal sets on a hole (libfsext/libfsxfs/libfsntfs ``EXTENT_FLAG_IS_SPARSE``)
EXTENT_FLAG_SPARSE = 0x01

# 1601-01-01 to 1970-01-01 in 100 ns intervals (FILETIME epoch offset)
_FILETIME_EPOCH_OFFSET = 116_444_736_000_000_000

LibyalNode = Any  # a binding's file_entry object; the bindings ship no type information

#: what libyal bindings raise on a corrupt or unsupported structure
LIBRARY_ERRORS = (OSError, MemoryError, ValueError, TypeError)


def filetime_to_ns(raw: int) -> int | None:
    """A Windows FILETIME (100 ns since 1601) as ns since the Unix epoch; 0 means unset."""
    if raw == 0:
        return None
    return (raw - _FILETIME_EPOCH_OFFSET) * 100


def posix_ns(raw: int) -> int | None:
    """libfsext/libfsxfs ``*_as_integer`` already give ns since the epoch; 0 means unset."""
    return None if raw == 0 else raw


# A NamedTuple, not a frozen dataclass: creating a dataclass compiles its methods,
# which every CLI start-up would pay for (issue 14)
class Extent(NamedTuple):
    """``length`` bytes of a file at ``logical`` stored at volume ``physical`` (None: a hole)."""

    logical: int
    physical: int | None
    length: int


def extents_from_library(
    raw: list[tuple[int, int, int]], file_size: int, volume_size: int
) -> list[Extent] | None:
    """Extents in file order from libyal's ``get_extent`` tuples; None if they can't be trusted.

    libyal lists a file's extents in logical order with holes as explicit sparse extents, so
    logical offsets are the running sum. Unknown flags, or an extent outside the volume, mean
    the data must come from the library instead.
    """
    out: list[Extent] = []
    logical = 0
    for physical, length, flags in raw:
        if length <= 0:
            continue
        if flags & ~EXTENT_FLAG_SPARSE:
            return None
        if flags & EXTENT_FLAG_SPARSE:
            out.append(Extent(logical, None, length))
        else:
            if physical < 0 or physical + min(length, file_size - logical) > volume_size:
                return None
            out.append(Extent(logical, physical, length))
        logical += length
        if logical >= file_size:
            break
    return out


class MappedExtent(Protocol):
    """What :class:`ExtentReader` needs of an extent: where it is in the file and on the
    volume (``physical`` None: a hole)."""

    @property
    def logical(self) -> int: ...
    @property
    def length(self) -> int: ...
    @property
    def physical(self) -> int | None: ...


E = TypeVar("E", bound=MappedExtent)


class ExtentReader(SizedReader, Generic[E]):
    """A file's contents read straight from the volume through its extents; holes are zeros.

    Touches no library handle, so it needs no lock and is safe from many threads.
    Bytes past the last extent (up to the file size) read as zeros, like a trailing hole.
    A filesystem whose extents hold more (inline or compressed data) says how to read one
    in :meth:`_extent_bytes`.
    """

    def __init__(self, volume: Reader, extents: list[E], size: int) -> None:
        self._volume = volume
        self._extents = extents
        self._starts = [e.logical for e in extents]
        self._size = size

    def _read(self, offset: int, n: int) -> bytes:
        end = offset + n
        parts: list[bytes] = []
        pos = offset
        while pos < end:
            i = bisect.bisect_right(self._starts, pos) - 1
            ext = self._extents[i] if i >= 0 else None
            if ext is not None and pos < ext.logical + ext.length:
                stop = min(end, ext.logical + ext.length)
                parts.append(self._extent_bytes(i, ext, pos - ext.logical, stop - pos))
            else:  # before the first extent, between extents or past the last: a hole
                stop = min(end, self._starts[i + 1]) if i + 1 < len(self._starts) else end
                parts.append(bytes(stop - pos))
            pos = stop
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _extent_bytes(self, index: int, ext: E, start: int, count: int) -> bytes:
        """``count`` bytes of extent ``index`` from ``start`` bytes into it."""
        if ext.physical is None:
            return bytes(count)
        data = self._volume.read_at(ext.physical + start, count)
        if len(data) != count:
            raise FilesystemError("a file extent ends past the end of the volume")
        return data

    def data_ranges(self) -> Iterator[tuple[int, int]]:
        mapped = ((e.logical, e.length) for e in self._extents if e.physical is not None)
        return merged(mapped, self._size)


class LibraryFileReader(SizedReader):
    """A file's contents read through the library (inline, compressed data), under the fs lock."""

    def __init__(self, fs: LibyalFilesystem, node: LibyalNode, size: int) -> None:
        self._fs = fs
        self._node = node
        self._size = size

    def _read(self, offset: int, n: int) -> bytes:
        with self._fs._lock, self._fs._library_errors("read file data"):
            data: bytes = self._node.read_buffer_at_offset(n, offset)
        if len(data) != n:
            raise FilesystemError(f"short read from the filesystem library at offset {offset}")
        return data

    def data_ranges(self) -> Iterator[tuple[int, int]]:
        return whole_file(self._size)  # the library does not say where its data is


class LibyalFilesystem(Filesystem[LibyalNode]):
    """A filesystem read by a libyal binding. Subclasses set ``kind`` and ``library``."""

    library: ClassVar[ModuleType]

    def __init__(self, reader: Reader) -> None:
        super().__init__()
        self.reader = reader
        self._file = ReaderFile(reader)
        self._volume: Any = self.library.volume()
        with self._library_errors(f"open the {self.kind or 'filesystem'} volume"):
            self._volume.open_file_object(self._file)
            self._root_node = self._volume.get_root_directory()
        if self._root_node is None:
            raise FilesystemError(f"the {self.kind} volume has no root directory")
        self.label = self._read_label()

    @contextlib.contextmanager
    def _library_errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except LIBRARY_ERRORS as exc:
            raise self._library_error(what, exc) from exc

    def _library_error(self, what: str, exc: BaseException) -> FilesystemError:
        """The error ``_library_errors`` raises, for per-entry code that catches
        ``LIBRARY_ERRORS`` itself (a context manager costs microseconds per use)."""
        detail = str(exc).split(". ")[0]
        return FilesystemError(
            f"{self.kind or 'filesystem'}: cannot {what} (corrupt or unsupported): {detail}"
        )

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(OSError):
                self._volume.close()
            self._file.close()
            self._dirs.clear()
            self._folded.clear()
            self.named_dirs.clear()

    # --- hooks a subclass may override ---------------------------------------------------

    def _read_label(self) -> str | None:
        get = getattr(self._volume, "get_label", None)
        if get is None:
            return None
        with contextlib.suppress(OSError):
            label = get()
            return str(label) if label else None
        return None

    def _child_name(self, parent: LibyalNode, child: LibyalNode) -> str | None:
        """The child's name as str (os.fsdecode form); None skips the entry."""
        name = child.get_name()
        return None if name is None else str(name)

    def _size(self, node: LibyalNode) -> int:
        """A file's size in bytes (called with library errors already wrapped)."""
        return int(node.get_size())

    def _time_ns(self, raw: int) -> int | None:
        """A library ``*_as_integer`` timestamp as ns since the Unix epoch (None: unset)."""
        return posix_ns(raw)

    def _time(self, node: LibyalNode, getter: str) -> int | None:
        fn = getattr(node, getter, None)
        if fn is None:
            return None
        try:
            raw = fn()
        except OSError:
            return None
        return None if raw is None else self._time_ns(int(raw))

    def _extents(self, node: LibyalNode, size: int) -> list[Extent] | None:
        """The file's data extents, or None when reads must go through the library."""
        try:
            count = node.get_number_of_extents()
        except OSError:
            return None
        if count == 0:
            return None  # data kept in the inode (inline, resident): only the library has it
        raw = []
        for i in range(count):
            offset, length, flags = (int(v) for v in node.get_extent(i))
            raw.append((self._volume_offset(offset, flags), length, flags))
        return extents_from_library(raw, size, self.reader.size)

    def _xattrs(self, node: LibyalNode) -> dict[str, bytes]:
        """Extended attributes through the library, where it has them (libfsext, libfsxfs;
        libfsntfs and libfsfat have none: NTFS alternate data streams are not xattrs)."""
        count = getattr(node, "get_number_of_extended_attributes", None)
        if count is None:
            return {}
        out: dict[str, bytes] = {}
        with self._library_errors("read extended attributes"):
            for i in range(int(count())):
                attr = node.get_extended_attribute(i)
                size = int(attr.get_size())
                value = bytes(attr.read_buffer_at_offset(size, 0)) if size else b""
                out[str(attr.get_name())] = value
        return out

    def _volume_offset(self, offset: int, flags: int) -> int:
        """Where an extent the library reports at ``offset`` lies on the volume (identity;
        a hook for a library that reports it wrongly)."""
        return offset

    # --- base hooks ----------------------------------------------------------------------

    def _root(self) -> LibyalNode:
        return self._root_node

    def _children(self, node: LibyalNode) -> Iterator[tuple[str, LibyalNode]]:
        with self._library_errors("read a directory"):
            count = node.get_number_of_sub_file_entries()
            out = []
            for i in range(count):
                child = node.get_sub_file_entry(i)
                try:
                    name = self._child_name(node, child)
                except OSError:
                    # the library cannot decode this name (not valid UTF-8 for libfsext and
                    # libfsxfs): list the entry under a name that still resolves to it
                    name = f"<undecodable-name-{self._key(child)}>"
                if name is not None and name not in (".", "..") and "/" not in name:
                    out.append((name, child))
        return iter(out)

    def _kind(self, node: LibyalNode) -> EntryKind:
        with self._library_errors("read an inode"):
            return kind_from_mode(node.get_file_mode())

    def _key(self, node: LibyalNode) -> Hashable:
        with self._library_errors("read an inode"):
            return int(node.get_inode_number())

    def _entry(self, name: str, path: str, node: LibyalNode) -> Entry:
        with self._library_errors(f"read the metadata of {path}"):
            mode = int(node.get_file_mode())
            kind = kind_from_mode(mode)
            return Entry(
                name=name,
                path=path,
                kind=kind,
                size=self._size(node) if kind is not EntryKind.DIR else 0,
                mode=mode,
                uid=int(node.get_owner_identifier()),
                gid=int(node.get_group_identifier()),
                mtime_ns=self._time(node, "get_modification_time_as_integer"),
                atime_ns=self._time(node, "get_access_time_as_integer"),
                ctime_ns=self._time(node, "get_inode_change_time_as_integer"),
                btime_ns=self._time(node, "get_creation_time_as_integer"),
                inode=int(node.get_inode_number()),
                nlink=int(node.get_number_of_links()),
                target=self._link_target(node) if kind is EntryKind.SYMLINK else None,
            )

    def _link_target(self, node: LibyalNode) -> str:
        with self._library_errors("read a symbolic link"):
            target = node.get_symbolic_link_target()
        if target is None:
            raise FilesystemError(f"{self.kind}: symbolic link without a target")
        return str(target)

    def _open(self, node: LibyalNode) -> FileContents:
        with self._library_errors("read a file's extents"):
            size = self._size(node)
            extents = self._extents(node, size) if size else []
        if extents is None:
            return LibraryFileReader(self, node, size)
        return ExtentReader(self.reader, extents, size)


def fsdecode(raw: bytes) -> str:
    """On-disk name bytes as the str an Entry carries (surrogate escapes for non-UTF-8).

    Explicitly UTF-8, like ``os.fsdecode`` on a UTF-8 host, whatever the host's locale.
    """
    return raw.decode("utf-8", "surrogateescape")

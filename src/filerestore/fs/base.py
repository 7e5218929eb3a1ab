"""The one interface for every filesystem kind, and path resolution inside a guest filesystem.

A backend subclasses :class:`Filesystem` and implements the ``_``-prefixed hooks on its own
node type (a library handle for one inode). Everything a caller uses (``stat``, ``list_dir``,
``open``, ``read_link``, ``xattrs``, ``walk``, and ``iter_all``, the bulk walk for
indexing) lives here, once:

- Paths are lists of components. ``..`` never climbs above the root; NUL is refused;
  symbolic links met on the way (and at the end, when asked) are resolved inside the guest
  filesystem, absolute targets from the guest root, with at most ``MAX_SYMLINK_HOPS`` hops.
- A child with an empty name (only a corrupt directory holds one) is listed as
  ``<empty-name-KEY>``, which resolves to it; a root that is not a directory is corrupt.
- Directory children are read once per directory and kept in a bounded cache keyed by the
  directory's node key, so resolving a path costs one dict lookup per component, never the
  library's linear path lookup.
- Library handles are not thread-safe: every hook runs under this filesystem's lock. Open
  one Filesystem per concurrent user rather than sharing one across threads for throughput.
- Names are unique in a listing: when a corrupt or hostile directory holds several entries
  under one name (an exFAT directory with a file and a directory both called ``a``), each is
  listed, the second as ``a<duplicate-2>`` and so on, so no entry's data is hidden behind
  another's and every listed path resolves to its own entry.
- A file larger than its format can hold (``_max_file_size``) is refused as corrupt when
  opened, and so is a file whose data is not in the image (``Entry.data_location``).
- Whatever a backend lets escape while parsing (IndexError, struct.error, ...) leaves the
  public methods as FilesystemError (fs/corrupt.py): callers see only the error tree.
"""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import Container, Hashable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from filerestore.errors import (
    FileRestoreError,
    FilesystemError,
    IsADirectoryError_,
    NotADirectoryError_,
    NotASymlinkError,
    PathNotFoundError,
    PathRefusedError,
    SymlinkLoopError,
)
from filerestore.fs.contents import FileContents
from filerestore.fs.corrupt import GuardedContents, parse_errors
from filerestore.fs.entry import Entry, EntryKind
from filerestore.fs.limits import MAX_LFS_FILESIZE

N = TypeVar("N")

MAX_SYMLINK_HOPS = 40  # Linux's MAXSYMLINKS
DIR_CACHE_ENTRIES = 250_000  # children kept across all cached directories
LIST_PAGE = 256  # entries built per lock acquisition in list_dir
#: what resolving a path raises for the path itself, never for a corrupt filesystem
RESOLVER_ERRORS: tuple[type[FileRestoreError], ...] = (
    PathNotFoundError,
    NotADirectoryError_,
    IsADirectoryError_,
    NotASymlinkError,
    SymlinkLoopError,
    PathRefusedError,
)


def duplicate_name(name: str, taken: Container[str]) -> str:
    """The name a second (third, ...) entry called ``name`` is listed under (see above)."""
    k = 2
    while f"{name}<duplicate-{k}>" in taken:
        k += 1
    return f"{name}<duplicate-{k}>"


def fold_case(name: str) -> str:
    """``name`` with each character upper-cased one for one, as Windows compares names (an
    upper-case table of one code unit per character: "ß" stays "ß", never "SS")."""
    return "".join(up if len(up := c.upper()) == 1 else c for c in name)


def split_path(path: str) -> list[str]:
    """Components of a request path; refuses NUL. ``.`` and empty components drop out."""
    if "\x00" in path:
        raise PathRefusedError("path contains a NUL byte")
    return [c for c in path.split("/") if c not in ("", ".")]


def join_path(parts: list[str]) -> str:
    return "/" + "/".join(parts)


_CONTROL = "[\x00-\x1f\x7f]"  # compiled by `re` on first use, not on import (issue 14)


def shown(path: str) -> str:
    """A guest path for an error message: control characters (a newline in a guest name or
    a request) as ``\\xNN``, so every reason stays one line."""
    return re.sub(_CONTROL, lambda m: f"\\x{ord(m.group()):02x}", path)


def missing(base: str, name: str) -> PathNotFoundError:
    """The refusal of a name the directory ``base`` lacks."""
    return PathNotFoundError(f"no such file or directory: {shown(f'{base}/{name}')}")


def pick(entries: dict[str, Any], base: str, names: list[str]) -> list[Any]:
    """Where each of ``names`` is; PathNotFoundError for a name the directory lacks."""
    out = []
    for name in names:
        found = entries.get(name)
        if found is None:
            raise missing(base, name)
        out.append(found)
    return out


class Filesystem(ABC, Generic[N]):
    """A read-only guest filesystem. See the module docstring for the contract."""

    #: kind name: "ext2", "ext3", "ext4", "xfs", "ntfs", "fat12", "fat16", "fat32", "exfat", "btrfs"
    kind: str = ""
    #: volume label, where the format has one
    label: str | None = None
    #: names match whatever their case in the guest OS (NTFS, FAT, exFAT: Windows looks names
    #: up through an upper-case table); a path is then resolved by its exact name first, else
    #: by the one name that matches it with both upper-cased (see fold_case)
    case_insensitive: bool = False

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._dirs: OrderedDict[Hashable, dict[str, N]] = OrderedDict()
        self._cached_children = 0
        #: per cached directory, folded name -> its names (built on the first inexact lookup)
        self._folded: dict[Hashable, dict[str, list[str]]] = {}
        from filerestore.fs.named_dirs import NamedDirs  # it builds on this module

        #: name -> location maps of the last large directories paged (see _located)
        self.named_dirs: NamedDirs[Any] = NamedDirs()

    # --- backend hooks (called with the lock held) ---------------------------------------

    @abstractmethod
    def _root(self) -> N:
        """The root directory's node."""

    @abstractmethod
    def _children(self, node: N) -> Iterator[tuple[str, N]]:
        """(name, node) of each entry of a directory, without "." and ".."."""

    @abstractmethod
    def _kind(self, node: N) -> EntryKind: ...

    @abstractmethod
    def _key(self, node: N) -> Hashable:
        """A key unique to the node within this filesystem (inode number or equal)."""

    @abstractmethod
    def _entry(self, name: str, path: str, node: N) -> Entry:
        """The node's metadata as an Entry."""

    @abstractmethod
    def _link_target(self, node: N) -> str: ...

    @abstractmethod
    def _open(self, node: N) -> FileContents:
        """A reader of a regular file's contents (holes read as zeros) with its data ranges.

        Raise DataNotInImageError when the data is elsewhere (never read it as zeros)."""

    def _claimed_size(self, node: N) -> int | None:
        """The size the node claims, if it is known before ``_open`` (checked first, so
        that no work is done for an impossible size)."""
        return None

    def _max_file_size(self, node: N) -> int:
        """The largest size a file like ``node`` can have in this format (source in a
        comment where a backend overrides it); a larger one is corrupt."""
        return MAX_LFS_FILESIZE

    def _xattrs(self, node: N) -> dict[str, bytes]:
        """The node's extended attributes by full name ("user.color"); none by default, for
        formats that have none or backends whose library does not give them."""
        return {}

    def _located(self, node: N) -> list[tuple[str, Any]] | None:
        """(name, location) of each entry of directory ``node``, in its order, read from the
        directory alone, the location telling the entry's kind (:meth:`_located_dirs`) and
        leading to its node (:meth:`_nodes_at`): what a page of a large directory needs
        without every entry's metadata (see fs/named_dirs.py). None by default: pages read
        the usual listing."""
        return None

    def _located_dirs(self, named: dict[str, Any]) -> list[tuple[str, bool]]:
        """Each name of ``named`` (names and locations as :meth:`_located` gave them) with
        whether it is a directory: one comprehension per backend, no call per entry."""
        raise NotImplementedError  # only called for locations _located gave

    def _nodes_at(self, node: N, wheres: list[Any]) -> list[N]:
        """The nodes of the entries of directory ``node`` at ``wheres``."""
        raise NotImplementedError  # only called for locations _located gave

    def close(self) -> None:
        """Release library handles."""

    # --- public interface ----------------------------------------------------------------

    def stat(self, path: str, follow_symlinks: bool = False) -> Entry:
        with self._lock, parse_errors(self.kind, f"stat {path!r}"):
            parts, node = self._resolve(path, follow_symlinks)
            name = parts[-1] if parts else ""
            return self._entry(name, join_path(parts), node)

    def list_dir(self, path: str = "/") -> Iterator[Entry]:
        """Entries of a directory with their metadata (symlinks to directories followed)."""
        with parse_errors(self.kind, f"list {path!r}"):
            yield from self._list_dir(path)

    def _list_dir(self, path: str) -> Iterator[Entry]:
        with self._lock:
            parts, node = self._resolve(path, follow_final=True)
            if self._kind(node) is not EntryKind.DIR:
                raise NotADirectoryError_(f"not a directory: {shown(join_path(parts))}")
            children = list(self._children_of(node).items())
        base = join_path(parts).rstrip("/")
        entry = self._entry
        # a page of entries per lock acquisition: the lock is not held while the caller
        # consumes them, nor taken once per entry
        for start in range(0, len(children), LIST_PAGE):
            with self._lock:
                page = [
                    entry(name, f"{base}/{name}", child)
                    for name, child in children[start : start + LIST_PAGE]
                ]
            yield from page

    def list_names(self, path: str = "/") -> tuple[str, list[tuple[str, bool]]]:
        """The path of the directory at ``path`` (symlinks followed) and the name of each of
        its entries with whether it is a directory: a listing's order without every entry's
        metadata, where the format's directory entries say what each entry is (ext, XFS,
        Btrfs, NTFS)."""
        with self._lock, parse_errors(self.kind, f"list {path!r}"):
            parts, node = self._resolve(path, follow_final=True)
            if self._kind(node) is not EntryKind.DIR:
                raise NotADirectoryError_(f"not a directory: {shown(join_path(parts))}")
            return join_path(parts), self._names_of(node)

    def _names_of(self, node: N) -> list[tuple[str, bool]]:
        named = self._paged(node)
        if named is None:
            kind = self._kind
            return [(n, kind(c) is EntryKind.DIR) for n, c in self._children_of(node).items()]
        return self._located_dirs(named)

    def _paged(self, node: N) -> dict[str, Any] | None:
        """Directory ``node``'s entries by name with their locations (:meth:`_located`), or
        None where a page reads the directory's usual listing (already listed whole, or the
        backend cannot tell kinds from the directory alone)."""
        key = self._key(node)
        if key in self._dirs:
            return None
        return self.named_dirs.get(key, lambda: self._located(node))

    def stat_children(self, path: str, names: list[str]) -> list[Entry]:
        """The entries ``names`` (as :meth:`list_names` gives them) of the directory at
        ``path``, as :meth:`stat` gives each; PathNotFoundError when one is not there."""
        with self._lock, parse_errors(self.kind, f"list {path!r}"):
            parts, node = self._resolve(path, follow_final=True)
            if self._kind(node) is not EntryKind.DIR:
                raise NotADirectoryError_(f"not a directory: {shown(join_path(parts))}")
            return self._stat_children(node, join_path(parts).rstrip("/"), names)

    def _stat_children(self, node: N, base: str, names: list[str]) -> list[Entry]:
        named = self._paged(node)
        if named is not None:
            children = self._nodes_at(node, pick(named, base, names))
            return [self._entry(n, f"{base}/{n}", c) for n, c in zip(names, children, strict=True)]
        out = []
        for name in names:
            found = self._child(node, name)
            if found is None:
                raise missing(base, name)
            stored, child = found
            out.append(self._entry(stored, f"{base}/{stored}", child))
        return out

    def open(self, path: str) -> FileContents:
        """A reader of a regular file's contents; symlinks are followed inside the guest."""
        with self._lock, parse_errors(self.kind, f"open {path!r}"):
            parts, node = self._resolve(path, follow_final=True)
            kind = self._kind(node)
            where = join_path(parts)
            if kind is EntryKind.DIR:
                raise IsADirectoryError_(f"is a directory: {shown(where)}")
            if kind is not EntryKind.FILE:
                raise PathNotFoundError(f"not a regular file: {shown(where)}")
            limit = self._max_file_size(node)
            claimed = self._claimed_size(node)
            if claimed is None or claimed <= limit:
                reader = self._open(node)
                claimed = reader.size
            if not 0 <= claimed <= limit:
                raise FilesystemError(
                    f"{self.kind}: {shown(where)} claims {claimed} bytes, more than {self.kind} "
                    f"allows for a file ({limit}): corrupt"
                )
            return GuardedContents(reader, self.kind, where)

    def read_link(self, path: str) -> str:
        with self._lock, parse_errors(self.kind, f"read the link {path!r}"):
            parts, node = self._resolve(path, follow_final=False)
            if self._kind(node) is not EntryKind.SYMLINK:
                raise NotASymlinkError(f"not a symbolic link: {shown(join_path(parts))}")
            return self._link_target(node)

    def xattrs(self, path: str) -> dict[str, bytes]:
        """Extended attributes of the entry at ``path`` (a final symlink is not followed), by
        full name with its namespace ("user.color", "trusted.x", "security.selinux")."""
        with self._lock:
            _, node = self._resolve(path, follow_final=False)
            return self._xattrs(node)

    def walk(self, path: str = "/", max_depth: int | None = None) -> Iterator[Entry]:
        """Every entry below ``path``, depth first, parents before children.

        Symbolic links are reported, never followed; a directory reached twice (hard-linked
        directories on a corrupt image) is not descended again.
        """
        with parse_errors(self.kind, f"walk {path!r}"):
            yield from self._walk(path, max_depth)

    def _walk(self, path: str, max_depth: int | None) -> Iterator[Entry]:
        with self._lock:
            parts, node = self._resolve(path, follow_final=True)
            if self._kind(node) is not EntryKind.DIR:
                raise NotADirectoryError_(f"not a directory: {shown(join_path(parts))}")
            seen: set[Hashable] = {self._key(node)}
        stack: list[tuple[str, N, int]] = [(join_path(parts).rstrip("/"), node, 0)]
        while stack:
            base, dnode, depth = stack.pop()
            with self._lock:
                children = list(self._children_of(dnode).items())
            subdirs: list[tuple[str, N, int]] = []
            for name, child in children:
                with self._lock:
                    entry = self._entry(name, f"{base}/{name}", child)
                    key = self._key(child) if entry.kind is EntryKind.DIR else None
                yield entry
                deeper = max_depth is None or depth + 1 < max_depth
                if key is not None and key not in seen and deeper:
                    seen.add(key)
                    subdirs.append((entry.path, child, depth + 1))
            stack.extend(reversed(subdirs))

    def iter_all(self) -> Iterator[tuple[Entry, list[Entry]]]:
        """Every directory of the filesystem with all its entries: the bulk walk for indexing.

        Yields (the directory's own Entry, its entries) once per directory, the root first
        (named ""), every directory after its parent; the order is otherwise the backend's
        fastest (``_iter_all``). Like :meth:`walk`, symbolic links are not followed and a
        directory reached twice is listed once. Listings bypass the directory cache: a walk
        reads each directory once.
        """
        with parse_errors(self.kind, "walk the filesystem"):
            yield from self._iter_all()

    def _iter_all(self) -> Iterator[tuple[Entry, list[Entry]]]:
        """The generic bulk walk: breadth first, one directory listing (and lock hold) each.

        A backend overrides it where its format can be read faster than directory by
        directory (see :meth:`iter_all` for what it must yield)."""
        with self._lock:
            root = self._root()
            pending = deque([(self._entry("", "/", root), root)])
            seen: set[Hashable] = {self._key(root)}
        entry, key_of = self._entry, self._key
        while pending:
            dentry, node = pending.popleft()
            base = "" if dentry.path == "/" else dentry.path
            with self._lock:
                children: dict[str, N] = {}
                for name, child in self._children(node):
                    children[duplicate_name(name, children) if name in children else name] = child
                entries = [entry(name, f"{base}/{name}", c) for name, c in children.items()]
                for e, child in zip(entries, children.values(), strict=True):
                    if e.kind is EntryKind.DIR:
                        key = key_of(child)
                        if key not in seen:
                            seen.add(key)
                            pending.append((e, child))
            yield dentry, entries

    # --- resolution ------------------------------------------------------------------------

    def _children_of(self, node: N) -> dict[str, N]:
        key = self._key(node)
        cached = self._dirs.get(key)
        if cached is not None:
            self._dirs.move_to_end(key)
            return cached
        children: dict[str, N] = {}
        for name, child in self._children(node):
            # a corrupt entry without a name (found by fuzzing NTFS): its path would name
            # its parent; listed under a name that resolves to it, as an undecodable one is
            name = name or f"<empty-name-{self._key(child)}>"
            children[duplicate_name(name, children) if name in children else name] = child
        self._dirs[key] = children
        self._cached_children += len(children)
        while self._cached_children > DIR_CACHE_ENTRIES and len(self._dirs) > 1:
            dropped_key, dropped = self._dirs.popitem(last=False)
            self._folded.pop(dropped_key, None)
            self._cached_children -= len(dropped)
        return children

    def _child(self, node: N, name: str) -> tuple[str, N] | None:
        """The entry ``name`` of directory ``node``, and its name as stored: the exact name,
        or on a case-insensitive filesystem the one name that folds to the same; when
        several do (NTFS's POSIX namespace allows "a" and "A"), the first in code-point
        order, so the answer is the same every time."""
        children = self._children_of(node)
        stored = self._stored_name(node, children, name)
        return None if stored is None else (stored, children[stored])

    def _stored_name(self, node: N, names: Mapping[str, object], name: str) -> str | None:
        """The name of directory ``node``'s entries ``names`` that ``name`` finds (see
        :meth:`_child`), or None."""
        if name in names:
            return name
        if not self.case_insensitive:
            return None
        key = self._key(node)
        folded = self._folded.get(key)
        if folded is None:
            folded = {}
            for stored in names:
                folded.setdefault(fold_case(stored), []).append(stored)
            self._folded[key] = folded
        found = folded.get(fold_case(name))
        return min(found) if found else None

    def _resolve(self, path: str, follow_final: bool) -> tuple[list[str], N]:
        pending = split_path(path)
        pending.reverse()
        stack: list[tuple[str, N]] = []
        root = self._root()
        if self._kind(root) is not EntryKind.DIR:  # found by fuzzing: a damaged root inode
            raise FilesystemError(f"{self.kind}: the root is not a directory (corrupt)")
        hops = 0
        while pending:
            comp = pending.pop()
            if comp == "..":
                if stack:
                    stack.pop()
                continue
            current = stack[-1][1] if stack else root
            if self._kind(current) is not EntryKind.DIR:
                where = join_path([n for n, _ in stack])
                raise NotADirectoryError_(f"not a directory: {shown(where)}")
            found = self._child(current, comp)
            if found is None:
                where = join_path([n for n, _ in stack] + [comp])
                raise PathNotFoundError(f"no such file or directory: {shown(where)}")
            comp, child = found
            if self._kind(child) is EntryKind.SYMLINK and (pending or follow_final):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise SymlinkLoopError(
                        f"more than {MAX_SYMLINK_HOPS} symbolic links while resolving {path!r}"
                    )
                target = self._link_target(child)
                if target.startswith("/"):
                    stack = []
                pending.extend(reversed(split_path(target)))
                continue
            stack.append((comp, child))
        return [n for n, _ in stack], (stack[-1][1] if stack else root)

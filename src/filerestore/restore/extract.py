"""Copy a file or a directory tree out of a guest filesystem into a host directory.

Nothing is ever written outside the destination directory, whatever the image holds:

- every write is relative to an open directory descriptor (``dir_fd``), one checked name at a
  time, never through a joined host path;
- names are bytes from the guest to the host call that writes them (the guest's own bytes,
  never a decoded and re-encoded string); a name the host cannot hold (empty, ``.``, ``..``,
  with ``/`` or NUL, longer than the destination's NAME_MAX) is skipped with the reason;
- files are created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and directories are entered with
  ``O_DIRECTORY | O_NOFOLLOW``, so a symlink already in the destination (planted, or one we
  wrote from the image) is never followed;
- what to do with an entry the destination already holds is the caller's choice
  (:class:`Existing`): refuse (the default: the restore stops there, nothing is changed),
  skip it (it is left as it is and counted), or overwrite it. Overwriting writes the new
  file or link under a temporary name beside it and renames it over the old one, so the
  old entry is replaced whole or not at all, a symlink in its place is replaced rather than
  followed, and a directory is never removed (a file where the guest has a directory, or a
  directory where it has a file, is a conflict listed with the other failures);
- symlinks are written as links with their target bytes unchanged and never followed while
  writing (an absolute or climbing target is harmless text until someone follows it).

One entry that cannot be read or written does not stop the rest (see
:mod:`~filerestore.restore.partial`): it is skipped, and :class:`ExtractResult` lists it with
the reason. A symlink planted where a directory should be entered stops the restore (unless
overwriting), and so does an existing file when refusing.

Modes keep their permission bits without setuid, setgid and sticky; mtimes are kept. A
directory's mode and times are set after its children are written, deepest first, so a
read-only directory can still be filled and its mtime is not disturbed by the writes.
Runs of zeros as long as a chunk are written as holes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat as stat_mod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from filerestore.errors import (
    DestinationEscapeError,
    DestinationExistsError,
    FileRestoreError,
)
from filerestore.fs.base import Filesystem
from filerestore.fs.entry import Entry, EntryKind
from filerestore.restore.browse import dir_key
from filerestore.restore.file_data import CHUNK_SIZE, read_chunks
from filerestore.restore.partial import Failure, failure, skippable, unaddressable

MAX_DEPTH = 2048  # directory levels below the top; deeper means a corrupt, looping tree
_ZEROS = bytes(CHUNK_SIZE)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# the host refusing one name (too long for its filesystem, bytes it does not take)
_NAME_ERRNOS = {errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL}

T = TypeVar("T")

#: told of the bytes written (holes included) and of each entry finished, as they happen
Progress = Callable[[int, int], None]


class Existing(StrEnum):
    """What to do with an entry the destination already holds (see the module docstring)."""

    REFUSE = "refuse"
    SKIP = "skip"
    OVERWRITE = "overwrite"


class _Skip(Exception):
    """This entry cannot be restored (the reason is the message); the others go on."""


@dataclass
class ExtractResult:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes: int = 0
    #: devices, FIFOs, sockets: listed in a guest, never written to the host
    special: list[str] = field(default_factory=list)
    #: entries that could not be read or written, with the reason
    failed: list[Failure] = field(default_factory=list)
    #: entries the destination held already and that were left as they were (Existing.SKIP)
    kept: list[str] = field(default_factory=list)
    #: files and links written over ones the destination held (Existing.OVERWRITE)
    replaced: int = 0

    @property
    def written(self) -> int:
        return self.files + self.dirs + self.symlinks


def extract(
    fs: Filesystem[Any],
    path: str,
    dest: Path,
    existing: Existing = Existing.REFUSE,
    progress: Progress | None = None,
) -> ExtractResult:
    """Write the entry at ``path`` (not following a final symlink) into directory ``dest``.

    ``dest`` is created if missing. The entry lands as ``dest/<its name>``; the root directory
    ("/") has no name, so its contents land directly in ``dest``. ``existing`` says what
    happens to entries already there; ``progress`` is called with ``(bytes, entries)`` done
    since its last call.
    """
    top = fs.stat(path)
    dest.mkdir(parents=True, exist_ok=True)
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _Extractor(fs, root_fd, existing, progress).run(top)
    finally:
        os.close(root_fd)


def _no_progress(nbytes: int, entries: int) -> None:
    pass


class _Extractor:
    def __init__(
        self, fs: Filesystem[Any], root_fd: int, existing: Existing, progress: Progress | None
    ) -> None:
        self.fs = fs
        self.root_fd = root_fd
        self.existing = existing
        self.progress = progress or _no_progress
        self.name_max = os.fpathconf(root_fd, "PC_NAME_MAX")
        self.result = ExtractResult()
        self.finish: list[tuple[list[bytes], Entry]] = []  # directories, parents first

    def run(self, top: Entry) -> ExtractResult:
        if top.kind is EntryKind.DIR and top.path == "/":
            self._tree([], top)
        else:
            created = self._guarded(self.root_fd, [], top)
            if created is not None:
                self._tree(created, top)
        for parts, entry in reversed(self.finish):
            fd = self._open_dir(parts)
            try:
                _apply_metadata(fd, entry)
            finally:
                os.close(fd)
        return self.result

    def _tree(self, parts: list[bytes], top: Entry) -> None:
        """Write everything below directory ``top`` (already created at ``parts``), depth
        first. One host directory is open at a time (the one being written into), so a deep
        tree costs no descriptors per level. A directory reached twice (hard-linked
        directories on a corrupt image) is written once and not descended again."""
        seen = {dir_key(top)}
        stack: list[tuple[list[bytes], Iterator[Entry]]] = [(parts, self._children(top))]
        open_parts: list[bytes] | None = None
        fd = -1
        try:
            while stack:
                here, children = stack[-1]
                child = next(children, None)
                if child is None:
                    stack.pop()
                    continue
                if here != open_parts:
                    if fd >= 0:
                        os.close(fd)
                        fd = -1
                    fd = self._open_dir(here)
                    open_parts = here
                created = self._guarded(fd, here, child)
                if created is None or dir_key(child) in seen:
                    continue
                seen.add(dir_key(child))
                if len(stack) >= MAX_DEPTH:
                    self._failed(child.path, f"nested deeper than {MAX_DEPTH} levels")
                    continue
                stack.append((created, self._children(child)))
        finally:
            if fd >= 0:
                os.close(fd)

    def _children(self, directory: Entry) -> Iterator[Entry]:
        """The directory's entries; a listing that fails is one failure, not the restore's."""
        try:
            yield from self.fs.list_dir(directory.path)
        except FileRestoreError as exc:
            if not skippable(exc):
                raise
            self.result.failed.append(failure(directory.path, exc))

    def _guarded(self, parent_fd: int, parent: list[bytes], entry: Entry) -> list[bytes] | None:
        """:meth:`_one`, with an entry that cannot be restored skipped and recorded."""
        try:
            return self._one(parent_fd, parent, entry)
        except _Skip as exc:
            self._failed(entry.path, str(exc))
        except FileRestoreError as exc:
            if not skippable(exc):
                raise
            self.result.failed.append(failure(entry.path, exc))
        return None

    def _failed(self, path: str, reason: str) -> None:
        self.result.failed.append(Failure(path, reason))

    def _one(self, parent_fd: int, parent: list[bytes], entry: Entry) -> list[bytes] | None:
        """Write one entry into ``parent_fd``; for a directory, return its parts to descend."""
        name = self._host_name(entry)
        if entry.kind is EntryKind.DIR:
            if not self._mkdir(parent_fd, name, entry):
                return None
            parts = [*parent, name]
            self.finish.append((parts, entry))
            self.result.dirs += 1
            self.progress(0, 1)
            return parts
        if entry.kind not in (EntryKind.SYMLINK, EntryKind.FILE):
            self.result.special.append(entry.path)
            return None
        held = _lstat(parent_fd, name)
        if held is not None and self.existing is Existing.SKIP:
            self.result.kept.append(entry.path)
            self.progress(entry.size if entry.kind is EntryKind.FILE else 0, 1)
            return None
        replace = held is not None and self.existing is Existing.OVERWRITE
        if replace and held is not None and stat_mod.S_ISDIR(held.st_mode):
            raise _Skip("the destination holds a directory by that name (never removed)")
        if entry.kind is EntryKind.SYMLINK:
            self._symlink(parent_fd, name, entry, replace)
            self.result.symlinks += 1
        else:
            self.result.bytes += self._write_file(parent_fd, name, entry, replace)
            self.result.files += 1
        self.result.replaced += replace
        self.progress(0, 1)
        return None

    def _mkdir(self, parent_fd: int, name: bytes, entry: Entry) -> bool:
        """Create (or merge into) directory ``name``; False when it is to be left alone."""
        held = _lstat(parent_fd, name)
        if held is None or stat_mod.S_ISDIR(held.st_mode):
            _mkdir(parent_fd, name, entry)
            return True
        if self.existing is Existing.SKIP:
            self.result.kept.append(entry.path)
            return False
        if self.existing is Existing.OVERWRITE:
            os.unlink(name, dir_fd=parent_fd)  # a file or a link (never followed) goes
            self.result.replaced += 1
        _mkdir(parent_fd, name, entry)
        return True

    def _host_name(self, entry: Entry) -> bytes:
        """The entry's name as the bytes the host call gets, or _Skip with the reason."""
        reason = unaddressable(entry.name)
        if reason is not None:
            raise _Skip(reason)
        name = _guest_bytes(entry.name, "name")
        if len(name) > self.name_max:
            raise _Skip(f"the name is {len(name)} bytes, longer than the host's {self.name_max}")
        return name

    def _symlink(self, parent_fd: int, name: bytes, entry: Entry, replace: bool) -> None:
        text = entry.target if entry.target is not None else self.fs.read_link(entry.path)
        target = _guest_bytes(text, "symlink target")
        if not target or b"\x00" in target:
            raise _Skip("the symlink target is empty or holds a NUL byte")
        made = _temporary_name(name) if replace else name
        _create(lambda: os.symlink(target, made, dir_fd=parent_fd), parent_fd, made)
        try:
            if entry.mtime_ns is not None:
                times = (entry.atime_ns or entry.mtime_ns, entry.mtime_ns)
                os.utime(made, ns=times, dir_fd=parent_fd, follow_symlinks=False)
            if replace:
                _rename_over(parent_fd, made, name)
        except BaseException:
            if replace:
                with contextlib.suppress(OSError):
                    os.unlink(made, dir_fd=parent_fd)
            raise

    def _write_file(self, parent_fd: int, name: bytes, entry: Entry, replace: bool) -> int:
        reader = self.fs.open(entry.path)  # a file that cannot be opened is never created
        made = _temporary_name(name) if replace else name
        fd = _create(lambda: os.open(made, _FILE_FLAGS, 0o600, dir_fd=parent_fd), parent_fd, made)
        done = False
        try:
            offset = 0
            for chunk in read_chunks(reader, entry.path):
                if len(chunk) == CHUNK_SIZE and chunk == _ZEROS:
                    os.lseek(fd, len(chunk), os.SEEK_CUR)  # keep holes as holes
                else:
                    _write_all(fd, chunk)
                offset += len(chunk)
                self.progress(len(chunk), 0)
            os.ftruncate(fd, offset)
            _apply_metadata(fd, entry)
            if replace:
                _rename_over(parent_fd, made, name)
            done = True
            return offset
        finally:
            os.close(fd)
            if not done:  # never leave a partial file that looks restored
                with contextlib.suppress(OSError):
                    os.unlink(made, dir_fd=parent_fd)

    def _open_dir(self, parts: list[bytes]) -> int:
        fd = os.dup(self.root_fd)
        try:
            for name in parts:
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        shown = b"/".join(parts).decode("utf-8", "backslashreplace")
                        raise DestinationEscapeError(
                            f"refusing to write through {shown!r}: not a directory "
                            "in the destination (a symbolic link?)"
                        ) from exc
                    raise
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd


def _guest_bytes(text: str, what: str) -> bytes:
    """The guest's bytes of a name or target (carried as ``str`` with surrogate escapes)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise _Skip(f"the {what} is not a sequence of bytes the host can hold") from None


def _lstat(parent_fd: int, name: bytes) -> os.stat_result | None:
    """What the destination holds under ``name`` (a symlink itself, never followed)."""
    try:
        return os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as exc:
        _name_refused(exc)
        raise


def _temporary_name(name: bytes) -> bytes:
    """A name beside ``name`` to write its replacement under (hidden, and unlikely to be a
    guest name: the create is O_EXCL all the same)."""
    return b".filerestore-" + secrets.token_hex(6).encode() + b"-" + name[:200]


def _rename_over(parent_fd: int, made: bytes, name: bytes) -> None:
    """Replace ``name`` by ``made`` in one step; rename never follows a link at ``name``."""
    try:
        os.rename(made, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
            raise _Skip("the destination holds a directory by that name (never removed)") from exc
        raise


def _shown(name: bytes) -> str:
    return name.decode("utf-8", "backslashreplace")


def _mkdir(parent_fd: int, name: bytes, entry: Entry) -> None:
    try:
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    except FileExistsError:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        if stat_mod.S_ISLNK(st.st_mode):
            raise DestinationEscapeError(
                f"refusing to write {entry.path!r}: the destination holds a symbolic link "
                f"named {_shown(name)!r}"
            ) from None
        if not stat_mod.S_ISDIR(st.st_mode):
            raise DestinationExistsError(
                f"refusing to overwrite {_shown(name)!r} in the destination with {entry.path!r} "
                "(--skip-existing leaves such files as they are, --overwrite replaces them)"
            ) from None
        # an existing real directory: merge into it
    except OSError as exc:
        _name_refused(exc)
        raise


def _create(make: Callable[[], T], parent_fd: int, name: bytes) -> T:
    try:
        return make()
    except FileExistsError:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        if stat_mod.S_ISLNK(st.st_mode):
            raise DestinationEscapeError(
                f"refusing to write {_shown(name)!r}: the destination already holds a "
                "symbolic link by that name"
            ) from None
        raise DestinationExistsError(
            f"refusing to overwrite {_shown(name)!r}, which already exists in the destination "
            "(--skip-existing leaves such files as they are, --overwrite replaces them)"
        ) from None
    except OSError as exc:
        _name_refused(exc)
        raise


def _name_refused(exc: OSError) -> None:
    """A host refusal of this one name (or link target) skips the entry; others stop all."""
    if exc.errno in _NAME_ERRNOS:
        raise _Skip(f"the host refused the name: {exc.strerror}") from exc


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _apply_metadata(fd: int, entry: Entry) -> None:
    if entry.mode is not None:
        # permission bits only: setuid, setgid and sticky are never restored
        os.fchmod(fd, stat_mod.S_IMODE(entry.mode) & 0o777)
    if entry.mtime_ns is not None:
        os.utime(fd, ns=(entry.atime_ns or entry.mtime_ns, entry.mtime_ns))

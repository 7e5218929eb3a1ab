"""Copy a file or a directory tree out of a guest filesystem into a host directory.

Nothing is ever written outside the destination directory, whatever the image holds:

- every write is relative to an open directory descriptor (``dir_fd``), one checked name at a
  time, never through a joined host path;
- a name with ``/`` or NUL, or equal to ``.`` or ``..``, is refused;
- files are created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and directories are entered with
  ``O_DIRECTORY | O_NOFOLLOW``, so a symlink already in the destination (planted, or one we
  wrote from the image) is never followed; existing files are never overwritten;
- symlinks are written as links with their target text unchanged and never followed while
  writing (an absolute or climbing target is harmless text until someone follows it).

Modes keep their permission bits without setuid, setgid and sticky; mtimes are kept. A
directory's mode and times are set after its children are written, deepest first, so a
read-only directory can still be filled and its mtime is not disturbed by the writes.
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from filerestore.errors import DestinationEscapeError, DestinationExistsError, FilesystemError
from filerestore.fs import Filesystem
from filerestore.fs.entry import Entry, EntryKind

CHUNK = 1 << 20
_ZEROS = bytes(CHUNK)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

T = TypeVar("T")


@dataclass
class ExtractResult:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)  # devices, FIFOs, sockets


def extract(fs: Filesystem[object], path: str, dest: Path) -> ExtractResult:
    """Write the entry at ``path`` (not following a final symlink) into directory ``dest``.

    ``dest`` is created if missing. The entry lands as ``dest/<its name>``; the root directory
    ("/") has no name, so its contents land directly in ``dest``.
    """
    top = fs.stat(path)
    dest.mkdir(parents=True, exist_ok=True)
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _Extractor(fs, root_fd).run(top)
    finally:
        os.close(root_fd)


class _Extractor:
    def __init__(self, fs: Filesystem[object], root_fd: int) -> None:
        self.fs = fs
        self.root_fd = root_fd
        self.result = ExtractResult()
        self.finish: list[tuple[list[str], Entry]] = []  # directories, parents first

    def run(self, top: Entry) -> ExtractResult:
        if top.kind is EntryKind.DIR and top.path == "/":
            self._tree([], top)
        else:
            created = self._one(self.root_fd, [], top)
            if created is not None:
                self._tree(created, top)
        for parts, entry in reversed(self.finish):
            fd = self._open_dir(parts)
            try:
                _apply_metadata(fd, entry)
            finally:
                os.close(fd)
        return self.result

    def _tree(self, parts: list[str], top: Entry) -> None:
        """Write everything below directory ``top`` (already created at ``parts``).

        The filesystem's own walk decides what to descend (it never enters a directory
        twice, so a corrupt image with a directory loop ends); it yields each directory's
        children together, so one host directory is open at a time.
        """
        host_dirs = {top.path.rstrip("/"): parts}  # guest directory path -> host parts
        open_path: str | None = None
        fd = -1
        try:
            for entry in self.fs.walk(top.path):
                name = _checked_name(entry)
                parent = entry.path[: len(entry.path) - len(name) - 1]
                if entry.path != f"{parent}/{name}" or parent not in host_dirs:
                    raise DestinationEscapeError(f"refusing to write {entry.path!r}")
                if parent != open_path:
                    if fd >= 0:
                        os.close(fd)
                        fd = -1
                    fd = self._open_dir(host_dirs[parent])
                    open_path = parent
                created = self._one(fd, host_dirs[parent], entry)
                if created is not None:
                    host_dirs[entry.path] = created
        finally:
            if fd >= 0:
                os.close(fd)

    def _one(self, parent_fd: int, parent_parts: list[str], entry: Entry) -> list[str] | None:
        """Write one entry into ``parent_fd``; for a directory, return its parts to descend."""
        name = _checked_name(entry)
        parts = [*parent_parts, name]
        if entry.kind is EntryKind.DIR:
            _mkdir(parent_fd, name, entry)
            self.finish.append((parts, entry))
            self.result.dirs += 1
            return parts
        if entry.kind is EntryKind.SYMLINK:
            target = _host_bytes(
                entry.target if entry.target is not None else self.fs.read_link(entry.path),
                f"the symbolic link {entry.path!r} has a target",
            )
            if not target:  # symlink(2) refuses an empty target with ENOENT
                raise FilesystemError(f"the symbolic link {entry.path!r} has an empty target")
            _create(lambda: os.symlink(target, name, dir_fd=parent_fd), parent_fd, name)
            if entry.mtime_ns is not None:
                times = (entry.atime_ns or entry.mtime_ns, entry.mtime_ns)
                os.utime(name, ns=times, dir_fd=parent_fd, follow_symlinks=False)
            self.result.symlinks += 1
        elif entry.kind is EntryKind.FILE:
            self.result.bytes += self._write_file(parent_fd, name, entry)
            self.result.files += 1
        else:
            self.result.skipped.append(entry.path)
        return None

    def _write_file(self, parent_fd: int, name: str, entry: Entry) -> int:
        fd = _create(lambda: os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent_fd), parent_fd, name)
        try:
            reader = self.fs.open(entry.path)
            offset = 0
            while offset < reader.size:
                chunk = reader.read_at(offset, CHUNK)
                if not chunk:
                    break
                if len(chunk) == CHUNK and chunk == _ZEROS:
                    os.lseek(fd, len(chunk), os.SEEK_CUR)  # keep holes as holes
                else:
                    _write_all(fd, chunk)
                offset += len(chunk)
            os.ftruncate(fd, offset)
            _apply_metadata(fd, entry)
            return offset
        finally:
            os.close(fd)

    def _open_dir(self, parts: list[str]) -> int:
        fd = os.dup(self.root_fd)
        try:
            for name in parts:
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise DestinationEscapeError(
                            f"refusing to write through {'/'.join(parts)!r}: not a directory "
                            "in the destination (a symbolic link?)"
                        ) from exc
                    raise
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd


def _checked_name(entry: Entry) -> str:
    name = entry.name
    if not name or name in (".", "..") or "/" in name or "\x00" in name:
        raise DestinationEscapeError(f"refusing to write an entry named {name!r} ({entry.path!r})")
    _host_bytes(name, f"the entry {entry.path!r} has a name")
    return name


def _host_bytes(text: str, what: str) -> bytes:
    """``text`` (a guest name or link target) as the bytes a host call takes: a NUL byte, or a
    surrogate that stands for no byte, is a corrupt entry, not a ValueError from the call."""
    try:
        raw = os.fsencode(text)
    except UnicodeEncodeError:
        raise FilesystemError(f"{what} that is no byte string (corrupt)") from None
    if b"\x00" in raw:
        raise FilesystemError(f"{what} holding a NUL byte (corrupt)")
    return raw


def _mkdir(parent_fd: int, name: str, entry: Entry) -> None:
    try:
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    except FileExistsError:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        if stat_mod.S_ISLNK(st.st_mode):
            raise DestinationEscapeError(
                f"refusing to write {entry.path!r}: the destination holds a symbolic link "
                f"named {name!r}"
            ) from None
        if not stat_mod.S_ISDIR(st.st_mode):
            raise DestinationExistsError(
                f"refusing to overwrite {name!r} in the destination with {entry.path!r}"
            ) from None
        # an existing real directory: merge into it


def _create(make: Callable[[], T], parent_fd: int, name: str) -> T:
    try:
        return make()
    except FileExistsError:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        if stat_mod.S_ISLNK(st.st_mode):
            raise DestinationEscapeError(
                f"refusing to write {name!r}: the destination already holds a symbolic link "
                "by that name"
            ) from None
        raise DestinationExistsError(
            f"refusing to overwrite {name!r}, which already exists in the destination"
        ) from None


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

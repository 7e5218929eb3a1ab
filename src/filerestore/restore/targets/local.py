"""A restore target on this host: a directory below a target root an admin configured.

Every call works relative to an open directory descriptor, one checked name at a time (the
discipline of :mod:`filerestore.restore.extract`): directories are entered with
``O_DIRECTORY | O_NOFOLLOW``, files created with ``O_CREAT | O_EXCL | O_NOFOLLOW``, links,
owners and times set with ``dir_fd`` and ``follow_symlinks=False``, and extended attributes
set on an open descriptor (a symbolic link's through ``/proc/self/fd/<dir>/<name>`` with
``lsetxattr``, which resolves the directory by its descriptor, not by a path). A symbolic
link planted anywhere in the destination is never followed.

Owners are kept when this process is root (``fchown``); otherwise files belong to the
service's user and the job says owners were not kept. Times are kept in nanoseconds.
Holes stay holes: only the data ranges are written, then the file is truncated to its size.

A file larger than one chunk is written by a writer thread while the caller reads and
hashes its next chunk (``pwrite``, ``pread`` and SHA-256 all release the GIL), at most
:data:`WRITES_AHEAD` chunks behind; the file is complete when :meth:`LocalTarget.write_file`
returns, as for a small file.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections import OrderedDict, deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

from filerestore.errors import DestinationEscapeError, TargetUnavailableError
from filerestore.restore.targets.base import Capabilities, Existing, FileWrite, Meta, WriteFailure

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_DIRS = 16  # directory descriptors kept open (a walk writes into one at a time)
#: chunks handed to the writer thread and not yet written, at most (memory: chunk-sized)
WRITES_AHEAD = 2
#: files up to this size are written by the caller (a hand-over costs more than it saves)
INLINE_WRITE = 1 << 20
#: xattr failures that mean "this kind of attribute cannot be kept here", not a broken job
_XATTR_REFUSED = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES, errno.EINVAL}


def _shown(parts: tuple[bytes, ...]) -> str:
    return b"/".join(parts).decode("utf-8", "backslashreplace") or "."


class LocalTarget:
    """See the module docstring. Directory handles are tuples of name components below the
    destination; their descriptors are opened on demand and a few are kept."""

    def __init__(self, root: Path, destination: list[bytes]) -> None:
        self._root_path = root
        self.capabilities = Capabilities(
            owners=os.geteuid() == 0,
            xattrs=True,
            hardlinks=True,
            sparse=True,
            time_resolution_ns=1,
        )
        #: what could not be kept ("xattr trusted.x: Operation not permitted"), once each
        self.unkept: set[str] = set()
        try:
            base = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise TargetUnavailableError(
                f"the target's root directory cannot be opened: {exc.strerror}"
            ) from exc
        self._fds: OrderedDict[tuple[bytes, ...], int] = OrderedDict()
        self._writer: ThreadPoolExecutor | None = None  # started by the first large file
        try:
            self._dest_fd = self._descend(base, destination, create=True)
        finally:
            os.close(base)

    def describe(self) -> str:
        return str(self._root_path)

    # --- directories -----------------------------------------------------------------------

    def root(self) -> tuple[bytes, ...]:
        return ()

    def _descend(self, fd: int, parts: Iterable[bytes], create: bool) -> int:
        """A new descriptor of ``parts`` below ``fd`` (which stays open), entered one name at
        a time without following links."""
        current = os.dup(fd)
        walked: list[bytes] = []
        try:
            for name in parts:
                walked.append(name)
                child = self._open_child(current, name, create, tuple(walked))
                os.close(current)
                current = child
        except BaseException:
            os.close(current)
            raise
        return current

    def _open_child(self, fd: int, name: bytes, create: bool, shown: tuple[bytes, ...]) -> int:
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=fd)
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise DestinationEscapeError(
                    f"refusing to write through {_shown(shown)!r}: it is a symbolic link or "
                    "not a directory in the destination"
                ) from exc
            raise

    def _fd(self, directory: object) -> int:
        assert isinstance(directory, tuple)
        fd = self._fds.get(directory)
        if fd is not None:
            self._fds.move_to_end(directory)
            return fd
        fd = self._descend(self._dest_fd, directory, create=False)
        self._fds[directory] = fd
        while len(self._fds) > _OPEN_DIRS:
            _, old = self._fds.popitem(last=False)
            os.close(old)
        return fd

    def lookup(self, directory: object, name: bytes) -> Existing | None:
        try:
            st = os.stat(name, dir_fd=self._fd(directory), follow_symlinks=False)
        except FileNotFoundError:
            return None
        return Existing.of(st.st_mode, st.st_size, st.st_mtime_ns)

    def enter(self, directory: object, name: bytes, create: bool) -> tuple[bytes, ...]:
        assert isinstance(directory, tuple)
        child = (*directory, name)
        if child not in self._fds:
            fd = self._open_child(self._fd(directory), name, create, child)
            self._fds[child] = fd
        return child

    def remove(self, directory: object, name: bytes) -> None:
        os.unlink(name, dir_fd=self._fd(directory))

    # --- entries ---------------------------------------------------------------------------

    def write_file(self, directory: object, name: bytes, file: FileWrite) -> None:
        size, chunks = file.size, file.chunks
        dir_fd = self._fd(directory)
        fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=dir_fd)
        done = False
        try:
            if size <= INLINE_WRITE:
                end = 0
                for offset, data in chunks:
                    _pwrite_all(fd, data, offset)
                    end = offset + len(data)
            else:
                end = self._write_behind(fd, chunks)
            if end != size:  # a hole at the end (a write that ends at the size needs none)
                os.ftruncate(fd, size)
            self._meta_fd(fd, file.meta)
            written = os.fstat(fd).st_size
            if written != size:  # the one check the job's manifest relies on
                raise OSError(errno.EIO, f"wrote {written} bytes, expected {size}")
            done = True
        finally:
            os.close(fd)
            if not done:  # never leave a partial file that looks restored
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=dir_fd)

    def _write_behind(self, fd: int, chunks: Iterable[tuple[int, bytes]]) -> int:
        """Write ``chunks`` on the writer thread while the next one is produced; every
        write has finished (or failed, raised here) when this returns or raises. The end
        of the last chunk."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="restore-write")
        writes: deque[Future[None]] = deque()
        end = 0
        try:
            for offset, data in chunks:
                writes.append(self._writer.submit(_pwrite_all, fd, data, offset))
                end = offset + len(data)
                while len(writes) > WRITES_AHEAD:
                    writes.popleft().result()
            while writes:
                writes.popleft().result()
            return end
        finally:
            for write in writes:  # a read or a write failed: none may outlive the descriptor
                write.cancel()
            wait(writes)

    def symlink(self, directory: object, name: bytes, target: bytes, meta: Meta) -> None:
        dir_fd = self._fd(directory)
        os.symlink(target, name, dir_fd=dir_fd)
        if self.capabilities.owners and meta.uid is not None and meta.gid is not None:
            os.chown(name, meta.uid, meta.gid, dir_fd=dir_fd, follow_symlinks=False)
        if meta.xattrs:
            # lsetxattr on the name inside the directory the descriptor holds
            self._xattrs(f"/proc/self/fd/{dir_fd}/".encode() + name, meta.xattrs)
        if meta.mtime_ns is not None:
            times = (meta.atime_ns or meta.mtime_ns, meta.mtime_ns)
            os.utime(name, ns=times, dir_fd=dir_fd, follow_symlinks=False)

    def hardlink(
        self, src_directory: object, src_name: bytes, directory: object, name: bytes
    ) -> None:
        src_fd = self._fd(src_directory)
        os.link(
            src_name,
            name,
            src_dir_fd=src_fd,
            dst_dir_fd=self._fd(directory),
            follow_symlinks=False,
        )

    def set_dir_meta(self, directory: object, meta: Meta) -> None:
        self._meta_fd(self._fd(directory), meta)

    def _meta_fd(self, fd: int, meta: Meta) -> None:
        if self.capabilities.owners and meta.uid is not None and meta.gid is not None:
            os.fchown(fd, meta.uid, meta.gid)
        if meta.mode is not None:
            os.fchmod(fd, meta.mode)  # after fchown, which would clear the mode's high bits
        if meta.xattrs:
            self._xattrs(fd, meta.xattrs)
        if meta.mtime_ns is not None:
            os.utime(fd, ns=(meta.atime_ns or meta.mtime_ns, meta.mtime_ns))

    def _xattrs(self, where: int | bytes, xattrs: dict[str, bytes]) -> None:
        # a descriptor is the entry itself; a path is never followed (lsetxattr)
        follow = isinstance(where, int)
        for key, value in xattrs.items():
            try:
                os.setxattr(where, key, value, follow_symlinks=follow)
            except OSError as exc:
                if exc.errno not in _XATTR_REFUSED:
                    raise
                namespace = key.split(".", 1)[0]
                self.unkept.add(f"xattrs in {namespace}.*: {exc.strerror}")

    def flush(self) -> list[WriteFailure]:
        return []  # every write finished before its call returned

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown()
            self._writer = None
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self._dest_fd >= 0:
            os.close(self._dest_fd)
            self._dest_fd = -1


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written

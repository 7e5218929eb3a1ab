"""The FUSE request handlers (pyfuse3's low-level, inode-based API) over one opened backup.

Read-only: the mount is ``ro`` and no handler that changes anything is implemented (the
kernel answers those with EROFS or ENOSYS itself). Every guest path is resolved by the
filesystem (fs/base.py) from the path the inode table holds, so symlinks are resolved inside
the guest and never on the host.

Where the work runs (bench/fuse.py measures the choices): metadata requests (lookup, getattr,
readdir, readlink, xattrs) run inline on the event loop, because they take the filesystem's
lock anyway and a thread hand-off only adds its cost; file data (``read``) goes to a pool of
``workers`` threads, because reads through extents take no lock and release the GIL in
``pread``, so a ``find -ls`` is not queued behind a large ``cat`` and two readers overlap.
``workers`` 0 runs everything inline; ``metadata_on_workers`` sends metadata to the pool too
(measured slower).

Every handler turns a filerestore error into its errno (errno_table.py) and any other
exception into EIO with one line on the log: an exception leaving a pyfuse3 handler would
end the main loop.
"""

from __future__ import annotations

import errno
import functools
import itertools
import logging
import os
import stat
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import pyfuse3
import trio

from filerestore.blockio import Reader
from filerestore.errors import FileRestoreError
from filerestore.fs.entry import Entry
from filerestore.fuse.attributes import BLOCK_SIZE, CACHE_SECONDS, attributes
from filerestore.fuse.errno_table import errno_of
from filerestore.fuse.inodes import ROOT_INODE, InodeTable, Node
from filerestore.fuse.listing import DirStream, ListingCache, Row
from filerestore.fuse.stacks import StackSource

log = logging.getLogger("filerestore.fuse")

P = ParamSpec("P")
T = TypeVar("T")

#: entries read from the filesystem per readdir request; a 4 KiB readdirplus buffer holds
#: about 25, so most requests need one batch
READDIR_BATCH = 64
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def _translated(
    handler: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    @functools.wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await handler(*args, **kwargs)
        except pyfuse3.FUSEError:
            raise
        except FileRestoreError as exc:
            raise pyfuse3.FUSEError(errno_of(exc)) from exc
        except Exception as exc:
            log.error("%s failed: %s: %s", handler.__name__, type(exc).__name__, exc)
            raise pyfuse3.FUSEError(errno.EIO) from exc

    return wrapper


@dataclass
class _OpenFile:
    path: str
    readers: dict[int, Reader] = field(default_factory=dict)  # by id() of the filesystem


@dataclass
class _OpenDir:
    ino: int
    node: Node
    stream: DirStream
    #: the rows replied so far, in order, while they are the listing from its start
    seen: list[Row] | None = field(default_factory=list)


def _dot_attributes(ino: int) -> pyfuse3.EntryAttributes:
    # only the number and the type reach getdents; the kernel links no dentry for dot names
    out = pyfuse3.EntryAttributes()
    out.st_ino = ino
    out.st_mode = stat.S_IFDIR | 0o755
    return out


class BackupOperations(pyfuse3.Operations):
    """Read-only handlers for one opened filesystem (see the module docstring for
    ``workers`` and ``metadata_on_workers``)."""

    def __init__(
        self, stacks: StackSource, workers: int = 0, metadata_on_workers: bool = False
    ) -> None:
        super().__init__()
        self._stacks = stacks
        self._threads = trio.CapacityLimiter(workers) if workers > 0 else None
        self._metadata_threads = self._threads if metadata_on_workers else None
        root = stacks.fs().stat("/")
        self._root_ino_shown = root.inode or ROOT_INODE
        self._inodes = InodeTable(root)
        self._files: dict[int, _OpenFile] = {}
        self._dirs: dict[int, _OpenDir] = {}
        self._handles = itertools.count(1)
        self._listings = ListingCache()
        self._volume_size = stacks.main.volume.size

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Metadata work: inline, unless metadata_on_workers."""
        if self._metadata_threads is None:
            return fn(*args)
        return await trio.to_thread.run_sync(fn, *args, limiter=self._metadata_threads)

    async def _call_data(self, fn: Callable[..., T], *args: Any) -> T:
        """File data: on the worker threads, if there are any."""
        if self._threads is None:
            return fn(*args)
        return await trio.to_thread.run_sync(fn, *args, limiter=self._threads)

    def _node(self, ino: int) -> Node:
        node = self._inodes.node(ino)
        if node is None:  # the kernel never names an inode it has forgotten
            raise pyfuse3.FUSEError(errno.ESTALE)
        return node

    def _stat(self, path: str) -> Entry:
        return self._stacks.fs().stat(path)

    def _entry_attributes(self, entry: Entry, ino: int) -> pyfuse3.EntryAttributes:
        a = attributes(entry, ino)
        out = pyfuse3.EntryAttributes()
        out.st_ino = a.ino
        out.st_mode = a.mode
        out.st_nlink = a.nlink
        out.st_uid = a.uid
        out.st_gid = a.gid
        out.st_size = a.size
        out.st_blocks = a.blocks
        out.st_blksize = BLOCK_SIZE
        out.st_atime_ns = a.atime_ns
        out.st_mtime_ns = a.mtime_ns
        out.st_ctime_ns = a.ctime_ns
        out.attr_timeout = CACHE_SECONDS
        out.entry_timeout = CACHE_SECONDS
        return out

    # --- names and attributes --------------------------------------------------------------

    @_translated
    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        parent = self._node(parent_inode)
        path = f"{parent.path.rstrip('/')}/{name.decode('utf-8', 'surrogateescape')}"
        entry = await self._call(self._stat, path)
        space = self._inodes.space_of(entry, parent.space)
        ino = self._inodes.number(entry, space)
        attrs = self._entry_attributes(entry, ino)
        self._inodes.looked_up(ino, path, space, parent_inode)
        return attrs

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for ino, count in inode_list:
            self._inodes.forget(ino, count)

    @_translated
    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        node = self._node(inode)
        entry = await self._call(self._stat, node.path)
        if inode == ROOT_INODE:
            # only the reply's attributes are used here, so the guest's number can show
            return self._entry_attributes(entry, self._root_ino_shown)
        return self._entry_attributes(entry, inode)

    @_translated
    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        path = self._node(inode).path
        target = await self._call(lambda: self._stacks.fs().read_link(path))
        return target.encode("utf-8", "surrogateescape")

    @_translated
    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        out = pyfuse3.StatvfsData()
        out.f_bsize = BLOCK_SIZE
        out.f_frsize = 4096
        out.f_blocks = self._volume_size // out.f_frsize
        out.f_bfree = out.f_bavail = 0  # read-only: nothing is free to write
        out.f_files = len(self._inodes)  # inodes known so far; formats do not all count them
        out.f_ffree = out.f_favail = 0
        out.f_namemax = 255
        return out

    # --- extended attributes ---------------------------------------------------------------

    @_translated
    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> list[bytes]:
        path = self._node(inode).path
        found = await self._call(lambda: self._stacks.fs().xattrs(path))
        return [name.encode("utf-8", "surrogateescape") for name in found]

    @_translated
    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        path = self._node(inode).path
        found = await self._call(lambda: self._stacks.fs().xattrs(path))
        value = found.get(name.decode("utf-8", "surrogateescape"))
        if value is None:
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR)
        return value

    # --- directories -----------------------------------------------------------------------

    @_translated
    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        node = self._node(inode)
        path = node.path
        fh = next(self._handles)
        self._dirs[fh] = _OpenDir(inode, node, DirStream(lambda: self._stacks.fs().list_dir(path)))
        return fh

    def _row(self, entry: Entry, parent_space: int) -> Row:
        space = self._inodes.space_of(entry, parent_space)
        ino = self._inodes.number(entry, space)
        name = entry.name.encode("utf-8", "surrogateescape")
        return Row(name, self._entry_attributes(entry, ino), ino, entry.path, space)

    @_translated
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        handle = self._dirs.get(fh)
        if handle is None:
            raise pyfuse3.FUSEError(errno.EBADF)
        position = start_id
        # "." and ".." first, as every local filesystem lists them (ls -a, ls -f); the
        # kernel takes no lookup reference for these two names
        dots = ((b".", handle.ino), (b"..", handle.node.parent))
        for name, ino in dots[position:]:
            shown = self._root_ino_shown if ino == ROOT_INODE else ino
            if not pyfuse3.readdir_reply(token, name, _dot_attributes(shown), position + 1):
                return
            position += 1
        # readdirplus: each entry goes out with its attributes, and counts as a lookup of
        # its inode, so `ls -l` and `find` need no lookups afterwards
        cached = self._listings.get(handle.ino)
        if cached is not None:
            for row in cached[position - len(dots) :]:
                if not pyfuse3.readdir_reply(token, row.name, row.attributes, position + 1):
                    return
                self._inodes.looked_up(row.ino, row.path, row.space, handle.ino)
                position += 1
            return
        if handle.seen is not None and len(handle.seen) != position - len(dots):
            handle.seen = None  # not the listing from its start: nothing to keep
        while True:
            batch = await self._call(handle.stream.take, position - len(dots), READDIR_BATCH)
            for i, entry in enumerate(batch):
                row = self._row(entry, handle.node.space)
                if not pyfuse3.readdir_reply(token, row.name, row.attributes, position + 1):
                    handle.stream.put_back(batch[i:])
                    return
                self._inodes.looked_up(row.ino, row.path, row.space, handle.ino)
                if handle.seen is not None:
                    handle.seen.append(row)
                position += 1
            if len(batch) < READDIR_BATCH:
                if handle.seen is not None:
                    self._listings.put(handle.ino, handle.seen)
                    handle.seen = None
                return

    async def releasedir(self, fh: int) -> None:
        self._dirs.pop(fh, None)

    # --- files -----------------------------------------------------------------------------

    @_translated
    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        if flags & _WRITE_FLAGS:
            raise pyfuse3.FUSEError(errno.EROFS)
        path = self._node(inode).path
        handle = _OpenFile(path)
        fs = self._stacks.main.fs
        # opened now so that a file that cannot be read fails at open(2), not at read(2)
        handle.readers[id(fs)] = await self._call(fs.open, path)
        fh = next(self._handles)
        self._files[fh] = handle
        # the data never changes: the page cache may keep it across opens
        return pyfuse3.FileInfo(fh=fh, keep_cache=True)

    def _read(self, handle: _OpenFile, offset: int, size: int) -> bytes:
        fs = self._stacks.fs()
        reader = handle.readers.get(id(fs))
        if reader is None:
            reader = handle.readers[id(fs)] = fs.open(handle.path)
        return reader.read_at(offset, size)

    @_translated
    async def read(self, fh: int, off: int, size: int) -> bytes:
        handle = self._files.get(fh)
        if handle is None:
            raise pyfuse3.FUSEError(errno.EBADF)
        return await self._call_data(self._read, handle, off, size)

    async def release(self, fh: int) -> None:
        self._files.pop(fh, None)

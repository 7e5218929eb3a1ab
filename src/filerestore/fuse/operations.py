"""The FUSE request handlers (pyfuse3's low-level, inode-based API) over one opened backup.

Read-only: the mount is ``ro`` and no handler that changes anything is implemented (the
kernel answers those with EROFS or ENOSYS itself). Every guest path is resolved by the
filesystem (fs/base.py) from the path the inode table holds, so symlinks are resolved inside
the guest and never on the host. Blocking work (anything that reads the image) runs through
:meth:`BackupOperations._call`: inline on the event loop (requests served one at a time), or
on a pool of worker threads (see stacks.py for how those share the filesystem).

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
from filerestore.fuse.listing import DirStream
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
    node: Node
    stream: DirStream


class BackupOperations(pyfuse3.Operations):
    """Read-only handlers for one opened filesystem.

    ``workers`` 0 runs every request inline on the event loop; N > 0 runs the blocking part
    of each request on one of N worker threads.
    """

    def __init__(self, stacks: StackSource, workers: int = 0) -> None:
        super().__init__()
        self._stacks = stacks
        self._threads = trio.CapacityLimiter(workers) if workers > 0 else None
        root = stacks.fs().stat("/")
        self._root_ino_shown = root.inode or ROOT_INODE
        self._inodes = InodeTable(root)
        self._files: dict[int, _OpenFile] = {}
        self._dirs: dict[int, _OpenDir] = {}
        self._handles = itertools.count(1)
        self._volume_size = stacks.main.volume.size

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
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
        self._inodes.looked_up(ino, path, space)
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
        self._dirs[fh] = _OpenDir(node, DirStream(lambda: self._stacks.fs().list_dir(path)))
        return fh

    @_translated
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        handle = self._dirs.get(fh)
        if handle is None:
            raise pyfuse3.FUSEError(errno.EBADF)
        position = start_id
        while True:
            batch = await self._call(handle.stream.take, position, READDIR_BATCH)
            for i, entry in enumerate(batch):
                space = self._inodes.space_of(entry, handle.node.space)
                ino = self._inodes.number(entry, space)
                name = entry.name.encode("utf-8", "surrogateescape")
                # readdirplus: each entry goes out with its attributes, and counts as a
                # lookup of its inode, so `ls -l` and `find` need no lookups afterwards
                if not pyfuse3.readdir_reply(
                    token, name, self._entry_attributes(entry, ino), position + 1
                ):
                    handle.stream.put_back(batch[i:])
                    return
                self._inodes.looked_up(ino, entry.path, space)
                position += 1
            if len(batch) < READDIR_BATCH:
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
        return await self._call(self._read, handle, off, size)

    async def release(self, fh: int) -> None:
        self._files.pop(fh, None)

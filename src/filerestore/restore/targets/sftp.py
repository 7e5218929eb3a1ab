"""A restore target on another host, over SFTP (asyncssh), with the host key checked.

How it behaves (the connection, its host key check and its ciphers:
:mod:`~filerestore.restore.targets.sftp_connection`):

- directories are entered by checking each one with ``lstat`` (never followed): a
  symbolic link where a directory must be is refused by name. SFTP names files by path, so
  the check and the later use are two requests: a remote user who can write to the
  destination and swaps a directory for a link between them is not stopped (the remote
  account's own permissions bound what it can reach); a link planted beforehand is;
- files are created with ``CREAT | EXCL`` (an existing name, a link included, is never
  opened) and their metadata set on the open handle; links and directories get theirs with
  ``lsetstat``;
- small files (up to :data:`SMALL_FILE`) are sent whole, up to :data:`FILES_IN_FLIGHT` at
  once; larger ones in pipelined writes (:data:`BYTES_IN_FLIGHT`), holes skipped, so a
  sparse file stays sparse where the remote filesystem allows; a file's metadata and the
  read-back of its size go out together;
- the conflict checks of a directory the job did not create are one ``lstat`` per name for
  the first few names, then one listing of the directory (:meth:`SftpTarget.lookup`);
- what SFTP version 3 (OpenSSH's) cannot carry is said in ``unkept``: extended attributes
  (none), times finer than a second; owners are set when the remote lets this account
  (root), else left to the account and said so.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import stat as stat_mod
import threading
from collections import Counter, OrderedDict
from collections.abc import Coroutine
from typing import Any, TypeVar

import asyncssh

from filerestore.errors import DestinationEscapeError, TargetUnavailableError
from filerestore.restore.targets.base import Capabilities, Existing, FileWrite, Meta, WriteFailure
from filerestore.restore.targets.sftp_connection import FATAL, Endpoint, SftpConnection, os_error

T = TypeVar("T")

SMALL_FILE = 1 << 20
#: small files in flight at most (many: each wake-up of the remote's sshd and sftp-server
#: then serves many requests), and their bytes at most
FILES_IN_FLIGHT = 128
SMALL_BYTES_IN_FLIGHT = 32 << 20
#: small files handed to the connection's loop together (one wake-up of its thread)
FILES_PER_HANDOFF = 16
BYTES_IN_FLIGHT = 32 << 20
#: directory listings kept for conflict checks (a walk writes into one directory at a time)
LISTINGS_KEPT = 16
#: seconds :meth:`SftpTarget.close` waits for the files still in flight
CLOSE_WAIT = 30.0
#: lookups in one directory answered by an ``lstat`` each before it is listed instead
STATS_BEFORE_LISTING = 8
_DOTS = (b".", b"..")
_CREATE = asyncssh.FXF_WRITE | asyncssh.FXF_CREAT | asyncssh.FXF_EXCL


async def _after_handoff(coro: Coroutine[Any, Any, T]) -> T:
    """``coro``, once the files of a group handed over just before have sent their first
    request (their open): the group's task, scheduled first, makes one task per file, which
    the loop starts in its next round, before this one resumes from its yield."""
    await asyncio.sleep(0)
    return await coro


def _existing(attrs: asyncssh.SFTPAttrs) -> Existing:
    return Existing.of(attrs.permissions, attrs.size or 0, (attrs.mtime or 0) * 10**9)


def _name(name: bytes | str) -> bytes:
    # a listing of a path given as bytes names its entries in bytes
    return name if isinstance(name, bytes) else name.encode("utf-8", "surrogateescape")


def _shown(path: bytes) -> str:
    return path.decode("utf-8", "backslashreplace")


class SftpTarget:
    """See the module docstring. Directory handles are tuples of name components below the
    destination, as for the local target."""

    def __init__(self, endpoint: Endpoint, destination: list[bytes]) -> None:
        self.endpoint = endpoint
        self.capabilities = Capabilities(
            owners=True, xattrs=False, hardlinks=True, sparse=True, time_resolution_ns=10**9
        )
        self.unkept: set[str] = {"extended attributes: SFTP cannot carry them"}
        self._owners: bool | None = None  # None: not tried yet
        self._link = SftpConnection(endpoint)
        #: files handed to the loop and not finished (queued ones included), under _room
        self._in_flight = 0
        self._in_flight_bytes = 0
        self._room = threading.Condition()
        #: small files not yet handed to the loop: (token, the coroutine that writes it)
        self._queue: list[tuple[int, Coroutine[Any, Any, None]]] = []
        #: handed-over groups: their tokens, and a future of one outcome per token
        self._groups: list[tuple[list[int], concurrent.futures.Future[list[object]]]] = []
        #: directory -> its entries by name, read in one listing (see :meth:`lookup`)
        self._listings: OrderedDict[tuple[bytes, ...], dict[bytes, Existing]] = OrderedDict()
        #: lookups answered one stat at a time per directory (before it is listed)
        self._stats: Counter[tuple[bytes, ...]] = Counter()
        try:
            self._link.open()
            self._dest = endpoint.root.encode("utf-8", "surrogateescape").rstrip(b"/") or b"/"
            self._check_dir(self._dest, self._dest)
            for name in destination:
                self._dest = self._enter_path(self._dest + b"/" + name, create=True)
        except BaseException:
            self.close()
            raise

    # --- the event loop --------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the connection's loop and wait for it (:meth:`SftpConnection.run`).
        Queued files are handed over first, so requests go out in the order of the calls
        (a hard link's request after the one creating its file)."""
        if self._dispatch():
            coro = _after_handoff(coro)
        return self._link.run(coro, timeout)

    def _submit(self, token: int, coro: Coroutine[Any, Any, None], size: int = 0) -> None:
        """Run ``coro`` (writing ``size`` bytes) without waiting: queued, and handed to the
        loop by :data:`FILES_PER_HANDOFF`; at :data:`FILES_IN_FLIGHT` unfinished (or
        :data:`SMALL_BYTES_IN_FLIGHT`), wait until half of them are done (one wake-up of this
        thread per half, not one per file)."""
        self._queue.append((token, self._counted(coro, size)))
        with self._room:
            self._in_flight += 1
            self._in_flight_bytes += size
            full = self._full(1)
        if full or len(self._queue) >= FILES_PER_HANDOFF:
            self._dispatch()
        if full:
            with self._room:
                while self._full(2):
                    self._room.wait()

    def _full(self, fraction: int) -> bool:
        """Whether ``1/fraction`` of the room in flight is taken (under ``_room``)."""
        return (
            self._in_flight >= FILES_IN_FLIGHT // fraction
            or self._in_flight_bytes >= SMALL_BYTES_IN_FLIGHT // fraction
        )

    def _dispatch(self) -> bool:
        """Hand the queued files to the loop, as one group (each file its own task);
        whether there were any."""
        if not self._queue:
            return False
        queue, self._queue = self._queue, []

        async def group() -> list[object]:
            outcomes = await asyncio.gather(*(c for _, c in queue), return_exceptions=True)
            return list(outcomes)

        future = asyncio.run_coroutine_threadsafe(group(), self._link.loop)
        self._groups.append(([token for token, _ in queue], future))
        return True

    async def _counted(self, coro: Coroutine[Any, Any, None], size: int) -> None:
        try:
            await coro
        finally:
            with self._room:
                self._in_flight -= 1
                self._in_flight_bytes -= size
                if not self._full(2):
                    self._room.notify()

    def _settle(self) -> None:
        """Wait until every file handed over is finished (its outcome kept for flush)."""
        self._dispatch()
        concurrent.futures.wait([future for _, future in self._groups])

    @property
    def sftp(self) -> asyncssh.SFTPClient:
        return self._link.sftp

    def describe(self) -> str:
        e = self.endpoint
        return f"sftp://{e.username}@{e.host}:{e.port}{e.root}"

    # --- directories -----------------------------------------------------------------------

    def _path(self, directory: object, name: bytes | None = None) -> bytes:
        assert isinstance(directory, tuple)
        parts = [self._dest, *directory] + ([name] if name is not None else [])
        return b"/".join(parts)

    def _check_dir(self, path: bytes, shown: bytes) -> None:
        attrs = self._call(self.sftp.lstat(path))
        if not stat_mod.S_ISDIR(attrs.permissions or 0):
            raise DestinationEscapeError(
                f"refusing to write through {_shown(shown)!r}: it is a symbolic link or not "
                "a directory on the remote host"
            )

    def _enter_path(self, path: bytes, create: bool) -> bytes:
        if create:
            try:
                self._call(self.sftp.mkdir(path, asyncssh.SFTPAttrs(permissions=0o700)))
                return path  # made by this call (mkdir refuses a name a link holds)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EEXIST):  # FX_FAILURE: it exists
                    raise
        self._check_dir(path, path)
        return path

    def root(self) -> tuple[bytes, ...]:
        return ()

    def lookup(self, directory: object, name: bytes) -> Existing | None:
        """The first :data:`STATS_BEFORE_LISTING` lookups in a directory are an ``lstat``
        each; after that the directory is listed once (OpenSSH's server describes each
        entry with ``lstat``, never following a link) and later lookups read the listing,
        which this target keeps up to date with what it creates and removes there. A
        directory that cannot be listed (write but no read permission) keeps the stats."""
        assert isinstance(directory, tuple)
        listing = self._listing(directory)
        if listing is not None:
            return listing.get(name)
        try:
            attrs = self._call(self.sftp.lstat(self._path(directory, name)))
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise
        return _existing(attrs)

    def _listing(self, directory: tuple[bytes, ...]) -> dict[bytes, Existing] | None:
        found = self._listings.get(directory)
        if found is not None:
            self._listings.move_to_end(directory)
            return found
        self._stats[directory] += 1
        if self._stats[directory] <= STATS_BEFORE_LISTING:
            return None
        self._settle()  # what this job has in flight there is in the listing
        try:
            names = self._call(self.sftp.readdir(self._path(directory)))
        except OSError as exc:
            if exc.errno != errno.EACCES:
                raise
            self._stats[directory] = -(1 << 62)  # never listed
            return None
        found = {_name(n.filename): _existing(n.attrs) for n in names}
        for dot in _DOTS:
            found.pop(dot, None)
        self._listings[directory] = found
        while len(self._listings) > LISTINGS_KEPT:
            self._listings.popitem(last=False)
        return found

    def _note(self, directory: object, name: bytes, existing: Existing | None) -> None:
        """Keep a listing read earlier true to what this target did at ``name``."""
        assert isinstance(directory, tuple)
        listing = self._listings.get(directory)
        if listing is None:
            return
        if existing is None:
            listing.pop(name, None)
        else:
            listing[name] = existing

    def enter(self, directory: object, name: bytes, create: bool) -> tuple[bytes, ...]:
        assert isinstance(directory, tuple)
        self._enter_path(self._path(directory, name), create)
        self._note(directory, name, Existing("dir", 0, 0))
        return (*directory, name)

    def remove(self, directory: object, name: bytes) -> None:
        self._call(self.sftp.remove(self._path(directory, name)))
        self._note(directory, name, None)

    # --- metadata --------------------------------------------------------------------------

    def _attrs(
        self, meta: Meta, *, mode: bool = True, size: int | None = None
    ) -> asyncssh.SFTPAttrs:
        attrs = asyncssh.SFTPAttrs()
        if size is not None:
            attrs.size = size
        if mode and meta.mode is not None:
            attrs.permissions = meta.mode
        if meta.mtime_ns is not None:
            attrs.mtime = meta.mtime_ns // 10**9
            attrs.atime = (meta.atime_ns or meta.mtime_ns) // 10**9
        if self._owners is not False and meta.uid is not None and meta.gid is not None:
            attrs.uid, attrs.gid = meta.uid, meta.gid
        return attrs

    async def _set(self, setter: Any, meta: Meta, **options: Any) -> None:
        """``setter(attrs)`` with owners while the remote allows them; once it refuses,
        again without, and never with them after that."""
        attrs = self._attrs(meta, **options)
        try:
            await setter(attrs)
            if attrs.uid is not None:
                self._owners = True
        except (asyncssh.SFTPPermissionDenied, asyncssh.SFTPFailure):
            if attrs.uid is None or self._owners:
                raise
            self._owners = False
            self.unkept.add("owners: the remote host refused to change them (not root)")
            attrs.uid = attrs.gid = None
            await setter(attrs)

    # --- entries ---------------------------------------------------------------------------

    def write_file(self, directory: object, name: bytes, file: FileWrite) -> None:
        size, chunks, meta, token = file.size, file.chunks, file.meta, file.token
        path = self._path(directory, name)
        # a failed write is removed again: then the listing holds a name that is free,
        # which a conflict check only ever takes as taken
        self._note(directory, name, Existing("file", size, meta.mtime_ns or 0))
        if size <= SMALL_FILE:
            data = list(chunks)  # read (and hashed) here; sent on the loop
            self._submit(token, self._put_small(path, data, size, meta), size)
            return
        handle: asyncssh.SFTPClientFile = self._call(self._open(path))
        writes: list[concurrent.futures.Future[int]] = []
        in_flight = 0
        try:
            for offset, piece in chunks:
                while writes and in_flight + len(piece) > BYTES_IN_FLIGHT:
                    in_flight -= self._wait(writes.pop(0))
                writes.append(
                    asyncio.run_coroutine_threadsafe(handle.write(piece, offset), self._link.loop)
                )
                in_flight += len(piece)
            for write in writes:
                self._wait(write)
        except BaseException:
            for write in writes:
                write.cancel()
            self._call(self._discard(handle, path))
            raise
        self._submit(token, self._finish(handle, path, size, meta))

    async def _open(self, path: bytes) -> asyncssh.SFTPClientFile:
        attrs = asyncssh.SFTPAttrs(permissions=0o600)
        return await self.sftp.open(path, _CREATE, attrs, encoding=None)

    def _wait(self, future: concurrent.futures.Future[int]) -> int:
        try:
            return future.result()
        except asyncssh.SFTPError as exc:
            raise os_error(exc) from exc

    async def _put_small(
        self, path: bytes, data: list[tuple[int, bytes]], size: int, meta: Meta
    ) -> None:
        handle = await self._open(path)
        try:
            for offset, chunk in data:
                await handle.write(chunk, offset)
        except BaseException:
            await self._discard(handle, path)
            raise
        await self._finish(handle, path, size, meta)

    async def _finish(
        self, handle: asyncssh.SFTPClientFile, path: bytes, size: int, meta: Meta
    ) -> None:
        try:
            if self._owners is None and meta.uid is not None and meta.gid is not None:
                # the first files find out whether the remote lets this account set owners
                await self._set(handle.setstat, meta, size=size)
                written = (await handle.stat()).size
            else:
                # both requests at once: the server answers one handle's requests in the
                # order they were sent, so the size read back is the one just set
                attrs = self._attrs(meta, size=size)
                _, found = await asyncio.gather(handle.setstat(attrs), handle.stat())
                written = found.size
            if written != size:
                raise asyncssh.SFTPFailure(f"wrote {written} bytes, expected {size}")
        except BaseException:
            await self._discard(handle, path)
            raise
        await handle.close()

    async def _discard(self, handle: asyncssh.SFTPClientFile, path: bytes) -> None:
        """Close and remove a file that was not written whole."""
        try:
            await handle.close()
        finally:
            with contextlib.suppress(asyncssh.SFTPError):
                await self.sftp.remove(path)

    def symlink(self, directory: object, name: bytes, target: bytes, meta: Meta) -> None:
        path = self._path(directory, name)
        self._call(self.sftp.symlink(target, path))
        self._note(directory, name, Existing("symlink", len(target), meta.mtime_ns or 0))
        setter = self._lsetstat(path)
        self._call(self._set(setter, meta, mode=False))  # a link has no mode of its own

    def _lsetstat(self, path: bytes) -> Any:
        async def setter(attrs: asyncssh.SFTPAttrs) -> None:
            await self.sftp.setstat(path, attrs, follow_symlinks=False)

        return setter

    def hardlink(
        self, src_directory: object, src_name: bytes, directory: object, name: bytes
    ) -> None:
        self._call(self.sftp.link(self._path(src_directory, src_name), self._path(directory, name)))
        self._note(directory, name, Existing("file", 0, 0))

    def set_dir_meta(self, directory: object, meta: Meta) -> None:
        self._call(self._set(self._lsetstat(self._path(directory)), meta))

    def flush(self) -> list[WriteFailure]:
        self._dispatch()
        groups, self._groups = self._groups, []
        failures: list[WriteFailure] = []
        fatal: BaseException | None = None
        for tokens, future in groups:
            for token, outcome in zip(tokens, future.result(), strict=True):
                if isinstance(outcome, asyncssh.SFTPError):
                    error = os_error(outcome)
                    if isinstance(error, TargetUnavailableError) or error.errno in FATAL.values():
                        fatal = fatal or error
                    reason = f"the remote host refused it: {outcome.reason}"
                    failures.append(WriteFailure(token, reason))
                elif isinstance(outcome, asyncssh.DisconnectError | ConnectionError):
                    lost = TargetUnavailableError(f"the SFTP connection was lost: {outcome}")
                    fatal = fatal or lost
                elif isinstance(outcome, BaseException):
                    raise outcome
        if fatal is not None:
            raise fatal
        return failures

    def close(self) -> None:
        for _, coro in self._queue:  # never handed over: the job is stopping
            coro.close()
        self._queue.clear()
        # files handed over finish (or fail) before the connection goes: none is cut off
        # half written, and no task is left pending on a closed loop
        concurrent.futures.wait([future for _, future in self._groups], CLOSE_WAIT)
        self._groups.clear()
        self._link.close()

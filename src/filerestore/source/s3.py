"""A repository in an S3-compatible bucket: keys under a prefix, read in cached blocks.

# References: Amazon S3 API Reference, GetObject (Range, If-Match, Content-Range) and
# HeadObject; RFC 9110 section 14 (range requests).

``S3Store(options, prefix)`` has the shape of :class:`~filerestore.source.local.LocalStore`:
``open(name, relative_to)`` resolves the name to a key under the prefix with the same
confinement rules (:mod:`filerestore.source.s3names`) and returns an :class:`S3File`, a
blockio reader of that object.

How an S3File reads: the object is cut into fixed blocks (``block_size``, 1 MiB by
default: large enough that a GET's latency is paid rarely, small enough that a directory
lookup does not pull megabytes). A read takes its blocks from the process's
:class:`~filerestore.source.blockpool.BlockPool` (memory, then the shared disk cache,
then one ranged GET per block, with If-Match on the ETag the file was opened with);
a read that continues the previous one requests the next ``2 * prefetch`` blocks (fewer
if memory is small), fetched by ``prefetch`` threads, so a file streamed out of a guest
filesystem keeps that many GETs in flight.

Opening costs one request: a cold open GETs the first block, whose answer also carries the
object's size and ETag; a warm open (the object was opened before, its first blocks are in
the disk cache) starts from the remembered ETag at once and checks it with a HEAD in the
background, which every file of a chain does in parallel; ``confirm()`` waits for it,
``confirm(wait=False)`` does not (what opening a backup's stack does: a warm open then
costs no round trip at all). Why not waiting is safe: what is read before the check
answers is the version cached, whole (blocks are named by its ETag, every block fetched
is a GET with If-Match on it); once the check answers "replaced", the host forgets the
object (the next open, by any worker, reads the new version) and every later read of
this file raises ObjectChangedError, so a session never goes on reading an old version
longer than one round trip after it was opened. A failed open waits for the checks, so
it is blamed on a replaced object and opened again rather than reported.

A warm open within ``revalidate_after`` seconds of the server last confirming the object
(an open's GET or a check's HEAD, by any worker of the host) makes no request at all. Why
that never serves stale data: a backup's objects are written once and read ever after, and
what such an open reads is exactly the version confirmed then, never a mix: its cached
blocks are named by that ETag, and every block it still has to fetch is a GET with
If-Match on that ETag, which fails (ObjectChangedError) if the object has been replaced
since. The worst case is an object replaced within that window whose every needed block is
cached: the session reads the version of a few seconds ago, whole, as a session opened a
few seconds earlier would. 0 checks on every open.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from pathlib import Path

from filerestore.blockio import Closing, SizedReader
from filerestore.errors import CorruptImageError, ObjectChangedError, ObjectStoreUnavailableError
from filerestore.source.blockcache import Block, BlockCache, object_id
from filerestore.source.blockpool import BlockPool, Fetch
from filerestore.source.s3client import ObjectClient, ObjectMeta, ObstoreClient, S3Options
from filerestore.source.s3names import normalize_prefix, resolve_name

MiB = 1 << 20


@dataclass(frozen=True)
class BlockOptions:
    """How a store reads and caches; the settings' ``block_cache_*`` fields fill it."""

    block_size: int = 1 * MiB
    #: blocks fetched ahead of a sequential reader (and the fetch threads per store)
    prefetch: int = 8
    #: finished blocks a worker process keeps in memory for all files of the store
    memory_bytes: int = 32 * MiB
    #: the shared disk cache (None: no disk cache, memory only)
    cache_dir: Path | None = None
    cache_capacity: int = 10 << 30
    #: seconds an object confirmed by the server is trusted without asking again (see above)
    revalidate_after: float = 0.0


@dataclass(frozen=True, slots=True)
class ObjectStat:
    """An object of the repository as a status check sees it (no byte read)."""

    name: str
    size: int
    signature: ObjectIdentity


@dataclass(frozen=True, slots=True)
class ObjectIdentity:
    """One version of one object: two names of it compare equal, a replaced one does not."""

    bucket: str
    key: str
    etag: str


class S3File(SizedReader, Closing):
    """An object of the bucket opened for reading (a :class:`~filerestore.source.SourceFile`)."""

    def __init__(
        self,
        store: S3Store,
        name: str,
        meta: ObjectMeta,
        check: Future[ObjectMeta] | None = None,
    ) -> None:
        self._store = store
        self.name = name
        self.location = f"s3://{store.options.bucket}/{meta.key}"
        self.meta = meta
        self.identity = ObjectIdentity(store.options.bucket, meta.key, meta.etag)
        self.signature = self.identity  # the ETag changes with every new version
        self.mtime = meta.last_modified
        self._size = meta.size
        self._id = store.block_prefix(meta)
        self._last_block = -2
        self._closed = False
        #: set once a check found the object replaced: every later read raises it
        self._changed: ObjectChangedError | None = None
        self._check_lock = threading.Lock()
        self._check = check
        if check is not None:
            check.add_done_callback(self._checked)

    # --- the SourceFile contract -------------------------------------------------------------

    def confirm(self, wait: bool = True) -> None:
        """Raise ObjectChangedError if the check of a warm open found the object replaced.

        ``wait=False`` returns at once while the check is still out (see the module's
        docstring: the reads made before its answer are of the cached version, whole)."""
        check = self._check
        if check is None or (not wait and not check.done()):
            return
        try:
            check.result()
        except CancelledError:
            raise ObjectStoreUnavailableError(f"{self.location}: the store was closed") from None
        except ObjectChangedError:
            pass
        self._checked(check)
        if self._changed is not None:
            raise self._changed
        self._check = None

    def _checked(self, check: Future[ObjectMeta]) -> None:
        """Take the finished check's answer (its thread, or confirm's): a replaced object is
        forgotten by the host and poisons this file's reads. Idempotent."""
        if check.cancelled():
            return
        exc = check.exception()
        if isinstance(exc, ObjectChangedError):
            changed = exc
        elif exc is None and (check.result().etag, check.result().size) != (
            self.meta.etag,
            self.meta.size,
        ):
            changed = ObjectChangedError(f"{self.location} was replaced since it was cached")
        else:
            return  # current, or the check failed (confirm raises its error; reads go on)
        # the check's thread and confirm's may both get here: the lock makes the later one
        # return only once the host has forgotten the old version (a flaky test saw the next
        # open still find it, between the first one's flag and its forget)
        with self._check_lock:
            if self._changed is None:
                self._store.forget(self.meta.key)
                self._changed = changed

    def pread_into(self, buffer: memoryview, offset: int, what: str) -> None:
        pos = 0
        for piece in self._pieces(offset, len(buffer), what):
            buffer[pos : pos + len(piece)] = piece
            pos += len(piece)

    def pread(self, offset: int, length: int, what: str) -> bytes:
        pieces = self._pieces(offset, length, what)
        if len(pieces) == 1 and isinstance(pieces[0], bytes):
            return pieces[0]  # a whole block kept as bytes: no copy at all
        return b"".join(pieces)  # the one copy of the bytes asked for

    def _pieces(self, offset: int, want: int, what: str) -> list[Block]:
        """The bytes ``[offset, offset + want)`` as views of the blocks holding them."""
        if offset < 0 or want < 0 or offset + want > self._size:
            raise CorruptImageError(
                f"{self.name}: {what} at {offset:#x} (+{want}) is past the end of the file "
                f"({self._size} bytes)"
            )
        if self._closed:
            raise ObjectStoreUnavailableError(f"{self.location}: read after close")
        if self._changed is not None:
            raise self._changed
        if not want:
            return []
        bs = self._store.blocks.block_size
        first, last = offset // bs, (offset + want - 1) // bs
        self._note_access(first, last)
        pool = self._store.pool
        if first == last:
            blocks = [pool.get(*self._block(first))]
        else:
            blocks = pool.get_many([self._block(i) for i in range(first, last + 1)])
        start = offset - first * bs
        if len(blocks) == 1 and start == 0 and len(blocks[0]) == want:
            return blocks
        pieces: list[Block] = []
        for data in blocks:
            n = min(len(data) - start, want)
            pieces.append(memoryview(data)[start : start + n])
            want -= n
            start = 0
        return pieces

    def read_into(self, dst: memoryview, offset: int) -> None:
        self.pread_into(dst, offset, "data")

    def _read(self, offset: int, n: int) -> bytes:
        return self.pread(offset, n, "data")

    def close(self) -> None:
        self._closed = True

    # --- blocks ------------------------------------------------------------------------------

    def _block(self, index: int) -> tuple[str, int, Fetch]:
        bs = self._store.blocks.block_size
        start = index * bs
        end = min(self._size, start + bs)
        return f"{self._id}-{index}", end - start, lambda: self._fetch(start, end)

    def _fetch(self, start: int, end: int) -> Block:
        # no check of self._closed here: a block is named by its object, not by this file, so
        # a prefetch this file started may be what another session's reader is waiting for
        # after this file was closed (the store and its client outlive every file)
        try:
            data = self._store.client.get_range(self.meta, start, end)
        except ObjectChangedError:
            self._store.forget(self.meta.key)
            raise
        if len(data) != end - start:
            raise ObjectStoreUnavailableError(
                f"{self.location}: the store sent {len(data)} bytes for a range of {end - start}"
            )
        return data

    def _note_access(self, first: int, last: int) -> None:
        """Fetch ahead when this read continues the previous one (a file being streamed).

        Unlocked on purpose: two threads racing here only make the guess a little wrong.
        """
        sequential = first in (self._last_block, self._last_block + 1)
        self._last_block = last
        if not sequential:
            return
        n_blocks = -(-self._size // self._store.blocks.block_size)
        ahead = range(last + 1, min(n_blocks, last + 1 + self._store.read_ahead))
        if ahead:
            self._store.pool.prefetch([self._block(i) for i in ahead])


class S3Store(Closing):
    """The objects under ``prefix`` in one bucket, opened only inside it. Close when done.

    One store per repository per process: its files share its block pool, its fetch
    threads and its client's connections.
    """

    def __init__(
        self,
        options: S3Options,
        prefix: str = "",
        blocks: BlockOptions | None = None,
        client: ObjectClient | None = None,
    ) -> None:
        self.options = options
        self.prefix = normalize_prefix(prefix)
        self.blocks = blocks or BlockOptions()
        self.client: ObjectClient = client or ObstoreClient(options)
        b = self.blocks
        cache = None if b.cache_dir is None else BlockCache(b.cache_dir, b.cache_capacity)
        self.pool = BlockPool(cache, b.memory_bytes, max(1, b.prefetch))
        #: blocks a sequential reader keeps requested ahead of it: twice the fetch threads,
        #: so a thread that finishes always finds the next block queued (with only as many
        #: as threads, they idle whenever the reader waits on the oldest one), and no more
        #: than half the memory of finished blocks, so none is evicted before it is read
        self.read_ahead = max(
            max(1, b.prefetch), min(2 * b.prefetch, b.memory_bytes // (2 * b.block_size))
        )

    def open(self, name: str, relative_to: str | None = None) -> S3File:
        """Open ``name`` (see :class:`~filerestore.source.Store` for the rules)."""
        resolved = resolve_name(self.prefix, name, relative_to)
        key = self.prefix + resolved
        cache = self.pool.cache
        known = cache.remembered(self._where(key)) if cache is not None else None
        if known is not None:
            meta = ObjectMeta(key, known.size, known.etag, known.modified)
            if self._trusted(known.seen):
                return S3File(self, resolved, meta)
            return S3File(self, resolved, meta, self.pool.submit(lambda: self._head(key)))
        meta, head = self.client.get_head(key, self.blocks.block_size)
        f = S3File(self, resolved, meta)
        if head:
            block, size, _ = f._block(0)
            self.pool.get(block, size, lambda: head)  # kept, and written to the disk cache
        if cache is not None:
            cache.remember(self._where(key), meta.etag, meta.size, meta.last_modified)
        return f

    def stat(self, name: str, relative_to: str | None = None) -> ObjectStat:
        """The object ``name`` would open as, without reading it: from what the host
        remembers while that is trusted (``revalidate_after``), else one HEAD."""
        resolved = resolve_name(self.prefix, name, relative_to)
        key = self.prefix + resolved
        cache = self.pool.cache
        known = cache.remembered(self._where(key)) if cache is not None else None
        if known is not None and self._trusted(known.seen):
            meta = ObjectMeta(key, known.size, known.etag, known.modified)
        else:
            meta = self._head(key)
        identity = ObjectIdentity(self.options.bucket, key, meta.etag)
        return ObjectStat(resolved, meta.size, identity)

    def list(self) -> Iterator[ObjectMeta]:
        """Every object under the prefix; ``key`` is its name in the repository (the key
        without the prefix). One request per 1,000 objects."""
        for meta in self.client.list(self.prefix):
            # a key ending in "/" is a console's "folder" marker, never a file
            if meta.key.startswith(self.prefix) and not meta.key.endswith("/"):
                yield ObjectMeta(
                    meta.key[len(self.prefix) :], meta.size, meta.etag, meta.last_modified
                )

    def check(self) -> None:
        """Return once the bucket answers a listing of the prefix (one request); raise
        ObjectStoreUnavailableError when it cannot be reached, refuses us or is missing."""
        for _ in self.client.list(self.prefix):
            break

    def location(self, name: str) -> str:
        return f"s3://{self.options.bucket}/{self.prefix}{name}"

    def _trusted(self, seen: float) -> bool:
        return time.time() - seen < self.blocks.revalidate_after

    def _head(self, key: str) -> ObjectMeta:
        """HEAD ``key``; an unchanged answer renews the remembered confirmation time."""
        meta = self.client.head(key)
        cache = self.pool.cache
        if cache is not None:
            known = cache.remembered(self._where(key))
            if known is None or (known.etag, known.size) == (meta.etag, meta.size):
                cache.remember(self._where(key), meta.etag, meta.size, meta.last_modified)
        return meta

    def forget(self, key: str) -> None:
        """Drop what is remembered of ``key``: it changed, the next open asks the server."""
        if self.pool.cache is not None:
            self.pool.cache.forget(self._where(key))

    def block_prefix(self, meta: ObjectMeta) -> str:
        o = self.options
        return object_id(
            o.endpoint or "", o.bucket, meta.key, meta.etag, meta.size, self.blocks.block_size
        )

    def _where(self, key: str) -> str:
        return f"{self.options.endpoint or ''}\0{self.options.bucket}\0{key}"

    def close(self) -> None:
        self.pool.close()
        if self.pool.cache is not None:
            self.pool.cache.close()

"""The blocks one process holds for a store: a small memory LRU over the disk cache, each block
fetched once however many readers want it, and a thread pool that fetches ahead.

Memory per worker process is bounded: ``memory_bytes`` of finished blocks plus at most
``workers`` blocks being fetched and ``2 * workers`` on their way to the disk cache
(each at most one block size), whatever the number of open files or sessions.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from typing import TypeVar

from filerestore.errors import ObjectStoreUnavailableError
from filerestore.source.blockcache import Block, BlockCache
from filerestore.source.writebehind import WriteBehind, pending

T = TypeVar("T")
CHECK_THREADS = 16
Fetch = Callable[[], Block]


class BlockPool:
    """Blocks by name (see :func:`blockcache.object_id`); thread-safe."""

    def __init__(self, cache: BlockCache | None, memory_bytes: int, workers: int) -> None:
        self.cache = cache
        # blocks go to the disk cache behind the fetch threads' backs (writebehind.py):
        # at most two blocks per fetch thread wait in memory (queued, being written)
        self._writer = WriteBehind(cache, workers) if cache is not None else None
        self.memory_bytes = memory_bytes
        self.workers = workers
        self._memory: OrderedDict[str, Block] = OrderedDict()
        self._held = 0
        self._inflight: dict[str, Future[Block]] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="filerestore-fetch")
        # checks (a HEAD per file of a chain being opened) get threads of their own: all of
        # a chain's checks go out at once, never queued behind block fetches
        self._checks = ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="filerestore-check")
        self._queued = 0  # prefetches submitted and not yet finished
        self._closed = False

    def get(self, name: str, size: int, fetch: Fetch) -> Block:
        """Block ``name`` of ``size`` bytes: from memory, a fetch in flight, the disk cache,
        or ``fetch()`` (which must return exactly ``size`` bytes or raise)."""
        with self._lock:
            data = self._memory.get(name)
            if data is not None:
                self._memory.move_to_end(name)
                return data
            future = self._inflight.get(name)
            owner = future is None
            if future is None:
                future = self._inflight[name] = Future()
        if not owner:
            return future.result()
        return self._load(name, size, fetch, future)

    def get_many(self, wanted: list[tuple[str, int, Fetch]]) -> list[Block]:
        """Several blocks, the missing ones fetched at once (a read spanning many blocks)."""
        out = []
        for i, (name, size, fetch) in enumerate(wanted):
            if i + 1 < len(wanted):  # keep the pool busy with the ones after this one
                self.prefetch(wanted[i + 1 : i + 1 + 2 * self.workers])
            out.append(self.get(name, size, fetch))
        return out

    def prefetch(self, wanted: list[tuple[str, int, Fetch]]) -> None:
        """Start fetching blocks not yet held or in flight; never waits."""
        for name, size, fetch in wanted:
            with self._lock:
                if (
                    self._closed
                    or name in self._memory
                    or name in self._inflight
                    or self._queued >= 2 * self.workers  # more would only queue behind
                ):
                    continue
                future: Future[Block] = Future()
                self._inflight[name] = future
                self._queued += 1
            self._executor.submit(self._prefetched, name, size, fetch, future)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` in the background (a check of a file being opened)."""
        return self._checks.submit(fn)

    def memory_held(self) -> int:
        with self._lock:
            return self._held

    def _prefetched(self, name: str, size: int, fetch: Fetch, future: Future[Block]) -> None:
        try:
            self._load(name, size, fetch, future)
        except BaseException:  # noqa: S110 - a reader that wants the block gets it from the future
            pass
        finally:
            with self._lock:
                self._queued -= 1

    def _load(self, name: str, size: int, fetch: Fetch, future: Future[Block]) -> Block:
        try:
            data = None
            if self.cache is not None:
                data = pending(name)
                if data is None or len(data) != size:
                    data = self.cache.get(name, size)
            if data is None:
                data = fetch()
                if self._writer is not None:
                    self._writer.put(name, data)
            with self._lock:
                self._keep(name, data)
        except BaseException as exc:
            with contextlib.suppress(InvalidStateError):
                future.set_exception(exc)
            raise
        finally:
            with self._lock:
                self._inflight.pop(name, None)
        with contextlib.suppress(InvalidStateError):
            future.set_result(data)
        return data

    def _keep(self, name: str, data: Block) -> None:
        if len(data) > self.memory_bytes or name in self._memory:
            return
        self._memory[name] = data
        self._held += len(data)
        while self._held > self.memory_bytes:
            _, old = self._memory.popitem(last=False)
            self._held -= len(old)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pending = list(self._inflight.values())
            self._memory.clear()
            self._held = 0
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._checks.shutdown(wait=False, cancel_futures=True)
        if self._writer is not None:
            self._writer.close()  # what was fetched is in the disk cache when close returns
        for future in pending:  # a cancelled prefetch must not leave a reader waiting
            with contextlib.suppress(InvalidStateError):
                future.set_exception(ObjectStoreUnavailableError("the store was closed"))

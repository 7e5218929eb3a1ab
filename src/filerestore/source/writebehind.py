"""Blocks on their way to the disk cache: written by one thread of their own, off the fetch path.

A fetch thread that wrote each block to the disk cache itself (a file, a rename, an index
transaction) was away from the object store for that long: measured on the 1 GiB read of
``bench/s3.py``, eight fetch threads then kept only five or six GETs in flight, against
eight without the disk cache. Here a fetch thread hands the block over and goes back to
the store; the writer takes every block queued at once and writes them with one index
transaction (:meth:`BlockCache.put_many`).

Guarantees kept:

- memory is bounded: at most ``limit`` blocks are queued and ``limit`` more being written
  (the batch the writer took); a fetch thread that finds the queue full waits for room
  (the disk is then the bottleneck, as before), so nothing is dropped while it is open;
- a block waiting to be written is still a hit for every store of the process
  (:func:`pending`): its name says which version of which object it is, so the bytes
  are the same whichever cache directory it is bound for;
- :meth:`WriteBehind.flush` and ``close`` return once every block handed over is on
  disk (a store's ``close``), so what a worker read is in the cache when it stops; a
  block handed over after ``close`` (a fetch that was still running) is not cached;
- a forked worker starts its own thread (threads do not survive ``fork``).
"""

from __future__ import annotations

import logging
import os
import queue
import threading

from filerestore.source.blockcache import Block, BlockCache

log = logging.getLogger("filerestore.source")

#: blocks handed over and not yet on disk, by name, for every cache of this process
_pending: dict[str, Block] = {}
_pending_lock = threading.Lock()


def _after_fork_in_child() -> None:
    """A forked worker has no writer thread: nothing it inherited will be written or freed."""
    global _pending_lock
    _pending_lock = threading.Lock()  # the parent may have held it while forking
    _pending.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def pending(name: str) -> Block | None:
    """Block ``name`` if it is waiting to be written to a disk cache of this process."""
    with _pending_lock:
        return _pending.get(name)


class WriteBehind:
    """One thread writing blocks to ``cache``; at most ``limit`` blocks queued."""

    def __init__(self, cache: BlockCache, limit: int) -> None:
        self.cache = cache
        self.limit = max(1, limit)
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, Block] | None] = queue.Queue(self.limit)
        self._thread: threading.Thread | None = None
        self._pid = -1
        self._closed = False

    def put(self, name: str, data: Block) -> None:
        """Queue ``data`` for the disk (waits while ``limit`` blocks are queued)."""
        if len(data) > self.cache.capacity or self._closed:
            return
        with _pending_lock:
            _pending.setdefault(name, data)
        self._started().put((name, data))

    def flush(self) -> None:
        """Return once every block queued so far is on disk (or failed and was logged)."""
        with self._lock:
            running = self._thread is not None and self._pid == os.getpid()
        if running:
            self._queue.join()

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread if self._pid == os.getpid() else None
            self._thread = None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _started(self) -> queue.Queue[tuple[str, Block] | None]:
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                # a new process (fork) has no thread and must not wait on the parent's queue
                self._queue = queue.Queue(self.limit)
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, args=(self._queue,), name="filerestore-cache-writer"
                )
                self._thread.daemon = True
                self._thread.start()
            return self._queue

    def _run(self, q: queue.Queue[tuple[str, Block] | None]) -> None:
        stop = False
        while not stop:
            batch = []
            item = q.get()
            while True:
                if item is None:
                    stop = True
                else:
                    batch.append(item)
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
            try:
                self.cache.put_many(batch)
            except Exception:  # the cache only ever saves requests: never lose the thread
                log.exception("block cache: writing %d blocks failed", len(batch))
            finally:
                with _pending_lock:
                    for name, data in batch:
                        if _pending.get(name) is data:
                            del _pending[name]
                for _ in range(len(batch) + stop):
                    q.task_done()

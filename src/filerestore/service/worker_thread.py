"""The thread of a service's background worker (the cleanup, the restore job runner)."""

from __future__ import annotations

import threading


class WorkerThread:
    """Runs :meth:`_loop` in a daemon thread named ``name``, from :meth:`start` until
    :meth:`stop` (which waits ``stop_wait`` seconds for it unless told otherwise); the loop
    ends once ``_stop`` is set (and waits on it between rounds). Started again after a
    stop, it runs a new thread."""

    def __init__(self, name: str, stop_wait: float) -> None:
        self.thread_name = name
        self.stop_wait = stop_wait
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._starting()
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.stop_wait if timeout is None else timeout)
            self._thread = None
        self._stopped()

    def _loop(self) -> None:
        raise NotImplementedError

    def _starting(self) -> None:
        """Called in :meth:`start` just before the thread starts."""

    def _stopped(self) -> None:
        """Called at the end of :meth:`stop`."""

"""The cleanup worker the server runs, and the figures behind /restore/resources.

Each worker process runs one cleanup thread. A run removes download holds whose process is
gone (a worker that crashed mid-download), then ends expired sessions that hold no
download. Deleting a row is idempotent, so two workers racing on one session clean it once.
"""

from __future__ import annotations

import logging
import os
import resource
import threading
from dataclasses import dataclass, field
from pathlib import Path
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from filerestore.api.backend import Backend
from filerestore.db.models import DownloadHold, RestoreMount
from filerestore.errors import FileRestoreError

log = logging.getLogger("filerestore.cleanup")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def rss_bytes() -> int:
    try:
        with Path("/proc/self/statm").open() as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class CleanupState:
    interval: float
    running: bool = False
    last_run: datetime | None = None
    next_run: datetime | None = None
    sessions_cleaned: int = 0
    failures: int = 0
    last_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class CleanupWorker:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.state = CleanupState(interval=backend.settings.cleanup_interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.state.running = True
        self.state.next_run = datetime.now(UTC)
        self._thread = threading.Thread(target=self._loop, name="cleanup", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.state.running = False
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.state.interval)

    def run_once(self) -> int:
        db = self.backend.db
        host = os.uname().nodename
        cleaned = 0
        try:
            with db.write() as s:
                for hold in s.scalars(select(DownloadHold).where(DownloadHold.host == host)):
                    if not _process_alive(hold.pid):
                        s.delete(hold)
            now = datetime.now(UTC)
            with db.write() as s:
                held = select(DownloadHold.mount_id)
                expired = s.scalars(
                    select(RestoreMount.id).where(
                        RestoreMount.expires_at < now, RestoreMount.id.not_in(held)
                    )
                ).all()
                if expired:
                    s.execute(delete(RestoreMount).where(RestoreMount.id.in_(expired)))
            cleaned = len(expired)
            with db.read() as s:
                live = set(s.scalars(select(RestoreMount.id)).all())
            self.backend.stacks.discard_except(live)
        except FileRestoreError as exc:
            with self.state.lock:
                self.state.failures += 1
                self.state.last_error = str(exc)
            log.warning("cleanup run failed: %s", exc)
        with self.state.lock:
            self.state.sessions_cleaned += cleaned
            self.state.last_run = datetime.now(UTC)
            self.state.next_run = self.state.last_run + timedelta(seconds=self.state.interval)
        return cleaned

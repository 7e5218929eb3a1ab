"""Index runner threads: what the service (each `filerestore serve` worker) and `filerestore
index run --follow` start to take jobs from the queue (filerestore.index.jobs).

A runner loops: take the next due job and run it; when none is due, wait
``index_poll_interval`` seconds. Stopping sets an event the running pass sees at its next
batch: the pass is undone and the job goes back to the queue, due at once, for whichever
runner comes next (nothing is lost; a killed process leaves a lease that runs out instead).

On SQLite the database has one write lock, and runners in several processes would only take
turns at it; so there a runner first takes an exclusive lock on a file beside the database
(``index-runner.lock``) and runs jobs only while it holds it: one runner per SQLite database
on the host, however many service workers start one.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from filerestore.db.engine import Database
from filerestore.errors import ConflictError
from filerestore.index.jobs import JobOutcome, requeue_stale, run_one_job, runner_name
from filerestore.index.opening import BackupOpener
from filerestore.settings import Settings

log = logging.getLogger("filerestore.index")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[bool]:
    """Whether this process holds the exclusive lock on ``path`` (released on exit)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@dataclass(eq=False)
class IndexRunner:
    """One runner thread (see the module docstring)."""

    db: Database
    settings: Settings
    name: str = field(default_factory=runner_name)
    #: how its passes open backups: the service's session slots (see index.opening)
    opener: BackupOpener | None = None
    stopping: threading.Event = field(init=False, default_factory=threading.Event)
    _thread: threading.Thread | None = field(init=False, default=None)

    @property
    def lock_path(self) -> Path | None:
        if self.db.dialect != "sqlite":
            return None
        return self.settings.state_dir.expanduser() / "index-runner.lock"

    def run_until_idle(self) -> list[JobOutcome]:
        """Run due jobs until none is due (or stop is asked); the outcomes."""
        outcomes: list[JobOutcome] = []
        while not self.stopping.is_set():
            outcome = run_one_job(self.db, self.settings, self.name, self.stopping, self.opener)
            if outcome is None:
                break
            outcomes.append(outcome)
        return outcomes

    def drain(self) -> list[JobOutcome]:
        """Run due jobs until none is due, in this thread; on SQLite only while no other
        runner holds the database's runner lock (ConflictError otherwise)."""
        lock = self.lock_path
        if lock is None:
            return self.run_until_idle()
        lock.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(lock) as held:
            if not held:
                raise ConflictError(
                    f"another index runner holds {lock} (a `filerestore serve` worker?); "
                    "it runs the queued jobs"
                )
            return self.run_until_idle()

    def loop(self) -> None:
        """Run jobs until stopped, waiting ``index_poll_interval`` when none is due."""
        lock = self.lock_path
        while not self.stopping.is_set():
            try:
                if lock is None:
                    self._one_round()
                else:
                    lock.parent.mkdir(parents=True, exist_ok=True)
                    with _file_lock(lock) as held:
                        if held:
                            self._one_round()
            except Exception as exc:  # the database away for a moment: try again later
                log.warning("index runner %s: %s", self.name, exc)
            self.stopping.wait(self.settings.index_poll_interval)

    def _one_round(self) -> None:
        requeue_stale(self.db)
        self.run_until_idle()

    def start(self) -> IndexRunner:
        self._thread = threading.Thread(target=self.loop, name="index-runner", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

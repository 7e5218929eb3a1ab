"""Host paths out of what a non-admin caller is told.

An error message may name host files: a repository's root, an image or backing file under
it, the state directory, ``/proc/...``. A non-admin is told the repository by name instead
(``<repository main>/srv1/disk0.qcow2``) and the rest as ``<host path>``; an admin is told
everything. Guest paths are left alone: only the known host prefixes are replaced.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from filerestore.catalog import list_repositories
from filerestore.db.engine import Database

_PROC = re.compile(r"/proc/[^\s'\"),;:]*")
TTL = 30.0  # seconds the repository roots are kept per process


class Redactor:
    """Replaces host path prefixes in a text (see the module docstring); thread-safe."""

    def __init__(
        self, db: Database, state_dir: Path, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._db = db
        self._state_dir = str(state_dir.expanduser().absolute())
        self._clock = clock
        self._lock = threading.Lock()
        self._roots: list[tuple[str, str]] = []
        self._loaded = -TTL

    def _prefixes(self) -> list[tuple[str, str]]:
        with self._lock:
            if self._clock() - self._loaded >= TTL:
                found: list[tuple[str, str]] = []
                for repo in list_repositories(self._db):
                    root = str(repo.root_path)
                    shown = f"<repository {repo.name}>"
                    found.append((root, shown))
                    resolved = str(Path(root).resolve()) if root.startswith("/") else root
                    if resolved != root:
                        found.append((resolved, shown))
                found.append((self._state_dir, "<state directory>"))
                # longest first: a root inside another is replaced by its own name
                self._roots = sorted(found, key=lambda p: len(p[0]), reverse=True)
                self._loaded = self._clock()
            return self._roots

    def __call__(self, text: str) -> str:
        for prefix, shown in self._prefixes():
            if len(prefix) > 1:
                text = text.replace(prefix.rstrip("/"), shown)
        return _PROC.sub("<host path>", text)

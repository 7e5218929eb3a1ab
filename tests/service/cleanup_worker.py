"""A separate process for the cleanup tests: ``python -m tests.service.cleanup_worker MODE``.

Settings come from the environment (FILERESTORE_STATE_DIR / FILERESTORE_DATABASE_URL).

- ``hang MOUNT_ID BACKUP_ID``: hold a download on session MOUNT_ID, then start mounting
  BACKUP_ID and hang while opening its image (as a process stuck reading a dead share
  would), after printing "ready". The test kills it with SIGKILL there.
- ``churn START_FILE BACKUP_ID...``: wait for START_FILE, then mount and unmount each
  backup in turn 10 times (as owner "pid-<pid>"); print "ready" when connected, then
  "<mounted> <refused by the limit>".
- ``clean START_FILE``: wait for START_FILE to appear, then run 20 cleanup service passes;
  print the ids this process cleaned.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from filerestore.db import open_database
from filerestore.errors import SessionLimitError
from filerestore.restore.stack import Stack
from filerestore.service import cleanup, sessions
from filerestore.settings import Settings
from tests.service.sessionsetup import A_DOWNLOAD, ANYONE, user


def hang(mount_id: str, backup_id: int) -> None:
    settings = Settings()
    manager = sessions.SessionManager(open_database(settings), settings)
    opened = threading.Event()

    def opening_hangs(*args: object, **kwargs: object) -> Stack:
        opened.set()
        while True:
            time.sleep(60)

    sessions.open_backup_stack = opening_hangs  # type: ignore[attr-defined]  # the test's hang
    with manager.checkout(mount_id, ANYONE, A_DOWNLOAD):
        threading.Thread(target=manager.mount, args=(backup_id, None, ANYONE), daemon=True).start()
        opened.wait(60)
        print("ready", flush=True)
        time.sleep(600)


def clean(start_file: str) -> None:
    settings = Settings()
    manager = sessions.SessionManager(open_database(settings), settings)
    while not Path(start_file).exists():
        time.sleep(0.01)
    service = cleanup.CleanupService(manager, interval=3600)
    cleaned = []
    for _ in range(20):  # the passes the service's thread would run, back to back
        cleaned += service.run_once()
    print("\n".join(cleaned), flush=True)


def churn(start_file: str, backup_ids: list[int]) -> None:
    settings = Settings()
    manager = sessions.SessionManager(open_database(settings), settings)
    print("ready", flush=True)
    while not Path(start_file).exists():
        time.sleep(0.01)
    mounted = refused = 0
    for round_ in range(10):
        backup_id = backup_ids[round_ % len(backup_ids)]
        try:
            session = manager.mount(backup_id, None, user(f"pid-{manager.me.pid}"))
        except SessionLimitError:
            refused += 1
            continue
        mounted += 1
        manager.unmount(session.mount_id, ANYONE)
    manager.readers.close_all()
    print(mounted, refused, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "hang":
        hang(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "churn":
        churn(sys.argv[2], [int(a) for a in sys.argv[3:]])
    else:
        clean(sys.argv[2])

"""A separate index runner process for the job tests (run as ``python -m``).

    python -m tests.index.runner_process STATE_DIR DATABASE_URL|- MODE

MODE ``drain``: run jobs until none is due; print the ids of the jobs it finished, as JSON.
MODE ``die-after=N``: run one job with batches of a few rows, and SIGKILL itself in the
N-th write transaction of the pass, after that batch is written but before it commits,
as a crash or an OOM kill would.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from filerestore.db import open_database
from filerestore.index import batch, jobs
from filerestore.settings import Settings


def main() -> None:
    state, url, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    settings = Settings(
        state_dir=Path(state), database_url=None if url == "-" else url, index_job_lease=1.0
    )
    db = open_database(settings)
    if mode == "drain":
        done = []
        while (outcome := jobs.run_one_job(db, settings)) is not None:
            done.append([outcome.job_id, outcome.state])
        print(json.dumps(done))
        return
    limit = int(mode.split("=", 1)[1])
    batch.BATCH_ROWS = 40
    original = jobs._Beat.__call__
    calls = [0]

    def dying(self: Any, session: Any, entries: int) -> None:
        original(self, session, entries)
        calls[0] += 1
        if calls[0] >= limit:
            os.kill(os.getpid(), signal.SIGKILL)

    jobs._Beat.__call__ = dying  # type: ignore[method-assign]
    jobs.run_one_job(db, settings)


if __name__ == "__main__":
    main()

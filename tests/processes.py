"""The test servers' child processes: a free port, waiting for one to answer, stopping it."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(
    process: subprocess.Popen[bytes],
    answers: Callable[[], bool],
    what: str,
    timeout: float,
    log: Path | None = None,
) -> None:
    """Return once ``answers()`` is true; raise if ``process`` exits first or ``timeout`` s
    pass (then the process is stopped). ``answers`` returns False while the server is not
    listening yet (it catches its own connection errors)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            detail = f": {log.read_text(errors='replace')[-4000:]}" if log and log.exists() else ""
            raise RuntimeError(f"{what} exited with {process.returncode} while starting{detail}")
        if answers():
            return
        time.sleep(0.1)
    terminate(process)
    raise RuntimeError(f"{what} did not answer within {timeout} s (log: {log})")


def terminate(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM a process still running; SIGKILL it if it has not ended ``grace`` s later."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace)

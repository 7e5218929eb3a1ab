"""The SFTP target's connection: where and as whom it connects, the host key check, and the
thread whose event loop asyncssh runs on (:class:`SftpConnection`).

Why asyncssh: measured against paramiko on the same sshd in one run (bench/sftp_clients.py,
loopback, a loaded 2-core machine): a 256 MiB file at 55-80 MB/s (paramiko 87 MB/s), small
files at 170 files/s one at a time (paramiko 450 files/s) but 590-860 files/s with 16-32
in flight on one channel, which paramiko's synchronous client cannot do; and it speaks
OpenSSH's ``lsetstat@openssh.com`` (metadata without following a link) and
``hardlink@openssh.com``, which paramiko does not.

- the connection is checked against the target's ``known_hosts`` file; a host not listed,
  or listed with another key, is refused (HostKeyRefusedError) before anything is sent;
  no agent, password or keyboard-interactive login, and no ssh config file, is used;
- AES-GCM is offered first (:data:`ENCRYPTION_ALGS`): the loop's work is per packet, and
  asyncssh's ChaCha20-Poly1305 costs several times as much CPU per packet.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from filerestore.errors import HostKeyRefusedError, TargetUnavailableError

T = TypeVar("T")

#: ciphers in order of preference: AES-GCM first, which costs asyncssh a fraction of
#: ChaCha20-Poly1305 per packet (AES instructions; asyncssh builds a ChaCha20 and a
#: Poly1305 context for every packet), then OpenSSH's other defaults
ENCRYPTION_ALGS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
)
#: SFTP status codes that end the job (every later write would fail the same way)
FATAL = {
    asyncssh.FX_NO_SPACE_ON_FILESYSTEM: errno.ENOSPC,
    asyncssh.FX_QUOTA_EXCEEDED: errno.EDQUOT,
    asyncssh.FX_WRITE_PROTECT: errno.EROFS,
}
_ERRNOS = {
    asyncssh.FX_NO_SUCH_FILE: errno.ENOENT,
    asyncssh.FX_PERMISSION_DENIED: errno.EACCES,
    asyncssh.FX_FAILURE: errno.EPERM,
    asyncssh.FX_FILE_ALREADY_EXISTS: errno.EEXIST,
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and as whom to connect (from an admin's target settings)."""

    host: str
    port: int
    username: str
    root: str  # the remote directory jobs write below
    client_keys: tuple[Path, ...]
    known_hosts: Path | None
    connect_timeout: float = 20.0


def os_error(exc: asyncssh.SFTPError) -> OSError | TargetUnavailableError:
    """An SFTP status as the error a local target would raise for it."""
    if exc.code in (asyncssh.FX_CONNECTION_LOST, asyncssh.FX_NO_CONNECTION):
        return TargetUnavailableError(f"the SFTP connection was lost: {exc.reason}")
    code = FATAL.get(exc.code) or _ERRNOS.get(exc.code, errno.EPERM)
    return OSError(code, exc.reason or type(exc).__name__)


class SftpConnection:
    """One SSH connection and its SFTP client, on an event loop in a thread of its own,
    started with the object; :meth:`open` connects, :meth:`close` ends both."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sftp", daemon=True)
        self._thread.start()
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for it; SFTP errors as OSError, a lost
        connection as TargetUnavailableError."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except asyncssh.SFTPError as exc:
            raise os_error(exc) from exc
        except (asyncssh.DisconnectError, ConnectionError) as exc:
            raise TargetUnavailableError(f"the SFTP connection was lost: {exc}") from exc

    def open(self) -> None:
        """Connect (the host key checked) and start the SFTP client."""
        self.run(self._connect(), timeout=self.endpoint.connect_timeout + 5)

    async def _connect(self) -> None:
        e = self.endpoint
        try:
            self._conn = await asyncio.wait_for(
                asyncssh.connect(
                    e.host,
                    e.port,
                    username=e.username,
                    client_keys=[str(k) for k in e.client_keys] or None,
                    known_hosts=str(e.known_hosts) if e.known_hosts else (),
                    agent_path=None,
                    password=None,
                    kbdint_auth=False,
                    encryption_algs=list(ENCRYPTION_ALGS),
                    config=[],
                ),
                e.connect_timeout,
            )
            self._sftp = await self._conn.start_sftp_client()
        except asyncssh.HostKeyNotVerifiable as exc:
            raise HostKeyRefusedError(
                f"the host key of {e.host}:{e.port} is not the one known_hosts lists: {exc.reason}"
            ) from None
        except asyncssh.PermissionDenied as exc:
            raise TargetUnavailableError(
                f"{e.username}@{e.host}:{e.port} refused the login: {exc.reason}"
            ) from None
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise TargetUnavailableError(f"cannot reach {e.host}:{e.port}: {exc}") from None

    @property
    def sftp(self) -> asyncssh.SFTPClient:
        assert self._sftp is not None
        return self._sftp

    def close(self) -> None:
        """End the SFTP client and the connection, then the loop and its thread (the
        caller has let every file in flight finish first)."""

        async def shut() -> None:
            if self._sftp is not None:
                self._sftp.exit()
            if self._conn is not None:
                self._conn.close()
                await self._conn.wait_closed()

        if self.loop.is_running():
            with contextlib.suppress(concurrent.futures.TimeoutError, OSError, asyncssh.Error):
                asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        self.loop.close()

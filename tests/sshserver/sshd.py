"""Start Debian's ``sshd`` on a free loopback port, as root, for one unprivileged account.

Everything is made per run under a fresh directory: an ed25519 host key, a client key pair,
the ``authorized_keys`` and ``known_hosts`` files, and the account's restore area (owned by
the account). The account (``frtest`` by default) is created with ``useradd`` when missing;
its shell is ``/bin/sh`` so that ``rsync`` over ssh (the benchmarks' peer) can run its server
side. ``stop()`` ends exactly the sshd it started.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.imagebuild.dir_paths import InDir
from tests.processes import free_port, terminate, wait_up

SSHD = Path("/usr/sbin/sshd")
USER = "frtest"


def ensure_user(name: str = USER) -> pwd.struct_passwd:
    """The test account, created (no password, no login by password) when missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/sh", name],
            check=True,
            capture_output=True,
        )
        # a locked account ("!") is refused by sshd without PAM; "*" allows key logins only
        subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True)
        return pwd.getpwnam(name)


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
    )


@dataclass
class Sshd:
    base: Path
    port: int
    user: pwd.struct_passwd
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return "127.0.0.1"

    client_key = InDir("client_ed25519", attr="base")
    known_hosts = InDir("known_hosts", attr="base")
    # a directory the account owns: remote restore destinations go below it
    area = InDir("area", attr="base")

    def ssh_command(self) -> list[str]:
        """An ``ssh`` command line (for rsync's ``-e``) that checks the host key strictly."""
        return [
            "ssh",
            "-p",
            str(self.port),
            "-i",
            str(self.client_key),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
        ]

    def stop(self) -> None:
        terminate(self.process)
        shutil.rmtree(self.base, ignore_errors=True)


def start_sshd(user: str = USER, timeout: float = 20.0) -> Sshd:
    account = ensure_user(user)
    # the account must reach the keys and its area: a directory outside pytest's private tmp
    base = Path(tempfile.mkdtemp(prefix="filerestore-sshd-"))
    base.chmod(0o755)
    host_key = base / "ssh_host_ed25519_key"
    _keygen(host_key, "filerestore-test-host")
    _keygen(base / "client_ed25519", "filerestore-test-client")
    (base / "authorized_keys").write_text((base / "client_ed25519.pub").read_text())
    (base / "authorized_keys").chmod(0o644)
    area = base / "area"
    area.mkdir()
    os.chown(area, account.pw_uid, account.pw_gid)
    port = free_port()
    host_pub = (base / "ssh_host_ed25519_key.pub").read_text().split()
    (base / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    config = base / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {base / 'sshd.pid'}",
                f"AuthorizedKeysFile {base / 'authorized_keys'}",
                "StrictModes no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                f"AllowUsers {user}",
                "Subsystem sftp internal-sftp",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    log = (base / "sshd.log").open("ab")
    process = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Sshd(base, port, account, process)

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                return s.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    try:
        wait_up(process, answers, "sshd", timeout, base / "sshd.log")
    except RuntimeError:
        server.stop()
        raise
    return server

"""Who makes a request, and the one rule of who may see which session.

A session belongs to the principal that created it (its ``owner``). Another principal gets
MountNotFoundError for it, exactly as for an id that never existed, so a session id leaks
nothing; an admin sees every session. Every adapter goes through this rule: the API with
a token's principal, the CLI (an operator on the host) with :meth:`Principal.operator`.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    #: what a session records as its owner ("token:7" for an API token)
    owner: str
    #: a name for people: the token's name, or the operator's user and host
    name: str
    admin: bool

    @property
    def actor(self) -> str:
        """How the audit trail names this principal."""
        return f"{self.name} ({self.owner})" if self.owner else self.name

    @classmethod
    def token(cls, token_id: int, name: str, admin: bool) -> Principal:
        return cls(f"token:{token_id}", name, admin)

    @classmethod
    def operator(cls) -> Principal:
        """Someone at the host's command line: sees and manages every session."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
            user = str(os.getuid())
        return cls("", f"{user}@{socket.gethostname()}", admin=True)

    def may_see(self, owner: str) -> bool:
        return self.admin or owner == self.owner

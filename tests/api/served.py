"""A test site served by a real ``filerestore serve``: the server, its tokens by name and its
backups by name, with clients and sessions as those tokens, or the server and the one token
a test uses; and how repositories are filled with cached images."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.api.server import Server, api_client, open_session


def link_image(src: Path, dst: Path) -> None:
    """``dst`` made the image ``src``: a hard link (no copy), or a symlink across filesystems."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        dst.symlink_to(src)


@dataclass
class Served:
    server: Server
    tokens: dict[str, str]
    backups: dict[str, int]

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, who: str | None = "alice", **kw: object) -> httpx.Client:
        """A client of the API with ``who``'s token (None: no token)."""
        return api_client(self.url, self.tokens[who] if who else None, **kw)

    def open_mount(self, who: str, backup: str, volume: str | None = None) -> str:
        """The id of a new session of the backup named ``backup``, opened as ``who``."""
        with self.client(who) as c:
            return str(open_session(c, self.backups[backup], volume)["mount_id"])


@dataclass
class OneUserSite:
    """A served site as the one user a test needs: the server and that user's token."""

    server: Server
    token: str

    def client(self) -> httpx.Client:
        return api_client(self.server.url, self.token)

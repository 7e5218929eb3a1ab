"""What every hostile image list shares (hostile.py, hostile_vmdk.py, hostile_vhd.py): the
entry type, the repository directory its builder writes into, and the refusal of a loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from filerestore.errors import BackingChainLoopError, FileRestoreError


class HostileImage(NamedTuple):
    name: str
    build: Callable[[Path], Path]
    error: type[FileRestoreError]
    match: str


def repo_dir(workdir: Path) -> Path:
    """``workdir / "repo"``, the repository root of every hostile entry, made if missing."""
    repo = workdir / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    return repo


def write_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def chain_loop(name: str, build: Callable[[Path], Path]) -> HostileImage:
    """An entry whose chain of parents comes back to a file already in it: every format's
    chain walker refuses it the same way."""
    return HostileImage(name, build, BackingChainLoopError, "already in the chain")

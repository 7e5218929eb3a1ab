"""The CLI's habits an operator expects (issue 14): --version, -v for the volume, shell
completion, `ls` in the API's order, and `get`'s summary, progress bar and reruns."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

import filerestore
from tests.cli.runner import SCRIPT, fails, ok, run
from tests.cli.test_get import snapshot
from tests.imagebuild import gpt_ext4 as images


def test_version() -> None:
    for flag in ("--version", "-V"):
        assert ok(flag).decode() == f"filerestore {filerestore.__version__}\n"


def test_volume_has_the_short_flag_v(two: images.Built) -> None:
    listed = json.loads(ok("ls", two.image, "/", "-v", "p3", "--json"))
    assert {e["name"] for e in listed} == {p.name for p in two.tree(2).iterdir()} | {"lost+found"}


def test_bash_completion_completes_commands_and_options(tmp_path: Path) -> None:
    script = ok("completion", "bash").decode()
    assert "_FILERESTORE_COMPLETE" in script and "complete " in script

    def complete(*words: str) -> list[tuple[str, str]]:
        env = {
            **os.environ,
            "_FILERESTORE_COMPLETE": "bash_complete",
            "COMP_WORDS": " ".join(["filerestore", *words]),
            "COMP_CWORD": str(len(words)),
        }
        proc = subprocess.run([SCRIPT], env=env, capture_output=True, text=True, check=True)
        # bash_complete answers "type,value" lines
        return [tuple(line.split(",", 1)) for line in proc.stdout.splitlines()]  # type: ignore[misc]

    assert complete("ba") == [("plain", "backups")]
    assert set(complete("token", "")) == {("plain", n) for n in ("create", "list", "revoke")}
    assert ("plain", "--skip-existing") in complete("get", "--s")
    assert complete("ls", "dis") == [("file", "dis")]  # an image: bash completes file names


def test_ls_is_in_the_api_s_order(ext4: images.Built) -> None:
    """Directories first, then the rest, each by name case-folded, then by the exact name:
    restore.browse's order, which the API's listing tests check against the tree."""
    tree = ext4.tree()
    entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in os.scandir(tree)]
    entries.append(("lost+found", True))
    expected = [n for d, _, n in sorted((not d, n.casefold(), n) for n, d in entries)]
    assert [e["name"] for e in json.loads(ok("ls", ext4.image, "/", "--json"))] == expected
    lines = ok("ls", ext4.image, "/").decode("utf-8", "surrogateescape").splitlines()
    assert [line.split()[-1] for line in lines][:3] == expected[:3]  # the text form too


def _summary(out: bytes) -> str:
    (line,) = out.decode().splitlines()
    return line


def test_get_prints_a_summary_and_reruns_skip_or_overwrite(
    ext4: images.Built, tmp_path: Path
) -> None:
    source = ext4.tree() / "docs"
    dest = tmp_path / "out"
    files = [p for p in source.rglob("*") if p.is_file() and not p.is_symlink()]
    dirs = [p for p in source.rglob("*") if p.is_dir() and not p.is_symlink()]
    links = [p for p in source.rglob("*") if p.is_symlink()]
    size = sum(p.stat().st_size for p in files)
    line = _summary(ok("get", ext4.image, "/docs", dest))
    assert line.startswith(
        f"restored {len(files)} files, {len(dirs) + 1} directories, "
        f"{len(links)} symbolic link{'' if len(links) == 1 else 's'} ("
    )
    assert line.endswith(f") into {dest}")
    assert size < 1024 or "KiB" in line or "MiB" in line
    first = snapshot(dest)

    # a rerun stops at the first file already there and says what to do about it
    message = fails(5, "get", ext4.image, "/docs", dest)
    assert "--skip-existing" in message and "--overwrite" in message
    assert "choose one of" in fails(
        2, "get", ext4.image, "/docs", dest, "--skip-existing", "--overwrite"
    )

    # --skip-existing: what is there stays, what is missing comes back
    readme = dest / "docs" / "readme.md"
    readme.write_bytes(b"changed on the host\n")
    missing = next(p for p in files if p.name != "readme.md")
    (dest / missing.relative_to(source.parent)).unlink()
    line = _summary(ok("get", ext4.image, "/docs", dest, "--skip-existing"))
    assert line.startswith("restored 1 file, ")
    kept = len(files) + len(links) - 1
    assert line.endswith(f"; {kept} entries already there left untouched")
    assert readme.read_bytes() == b"changed on the host\n"
    assert (dest / missing.relative_to(source.parent)).read_bytes() == missing.read_bytes()

    # --overwrite: files are replaced whole; a symlink planted in a file's place is
    # replaced, never followed
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not to be touched\n")
    nested = dest / "docs" / "sub" / "nested.txt"
    nested.unlink()
    nested.symlink_to(outside)
    line = _summary(ok("get", ext4.image, "/docs", dest, "--overwrite"))
    assert line.endswith(f"; {len(files) + len(links)} entries already there replaced")
    assert outside.read_bytes() == b"not to be touched\n"
    assert snapshot(dest) == first
    assert not [p for p in (dest / "docs").rglob(".filerestore-*")]


def test_overwrite_never_removes_a_directory(ext4: images.Built, tmp_path: Path) -> None:
    (tmp_path / "hello.txt").mkdir()
    (tmp_path / "hello.txt" / "kept").write_bytes(b"x")
    proc = run("get", ext4.image, "/hello.txt", tmp_path, "--overwrite")
    assert proc.returncode == 7, proc.stderr
    assert b"never removed" in proc.stderr
    assert (tmp_path / "hello.txt" / "kept").read_bytes() == b"x"


def _run_on_a_terminal(args: list[str | os.PathLike[str]], timeout: float = 120) -> bytes:
    """Run with stderr on a pseudo-terminal (stdout a pipe); what the terminal showed."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [SCRIPT, *args], stdout=subprocess.PIPE, stderr=terminal, stdin=subprocess.DEVNULL
    )
    os.close(terminal)
    shown = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not chunk:
                break
            shown += chunk
        elif proc.poll() is not None:
            break
    os.close(controller)
    assert proc.wait(timeout=10) == 0, shown
    assert proc.stdout is not None
    assert proc.stdout.read().startswith(b"restored ")
    return shown


def test_get_shows_progress_on_a_terminal_only(ext4: images.Built, tmp_path: Path) -> None:
    shown = _run_on_a_terminal(["get", ext4.image, "/sparse.bin", tmp_path / "tty"])
    size = (ext4.tree() / "sparse.bin").stat().st_size
    assert b"restoring" in shown and b"100%" in shown, shown
    assert f"{size / 2**20:.1f}M".encode() in shown, shown
    # off a terminal (a pipe): nothing on stderr
    proc = run("get", ext4.image, "/sparse.bin", tmp_path / "pipe")
    assert proc.returncode == 0 and proc.stderr == b""
    assert ok("get", ext4.image, "/hello.txt", tmp_path / "quiet", "--quiet") == b""


@pytest.mark.parametrize("command", ["ls", "stat", "cat", "get", "inspect", "mount"])
def test_no_image_command_names_minus_capital_v(command: str) -> None:
    """-V is --version; an image command's help offers -v for the volume."""
    out = ok(command, "--help").decode()
    assert "-V" not in out
    if command != "inspect":
        assert "-v, --volume" in out

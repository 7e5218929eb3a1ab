"""What ``filerestore get`` shows: a progress bar on a terminal, a summary line, the failures.

The bar (tqdm, on stderr) needs the tree's size first, so the metadata below the path is
walked once before the copy; off a terminal nothing is counted and no bar is drawn. tqdm is
imported only when a bar is drawn (start-up time, issue 14).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from filerestore.cli import exit_codes
from filerestore.fs.base import Filesystem
from filerestore.fs.entry import EntryKind
from filerestore.restore.extract import ExtractResult, Progress
from filerestore.restore.names import printable
from filerestore.restore.stack import format_size


def _size_of(fs: Filesystem[Any], path: str) -> tuple[int, int]:
    """Bytes of files and number of entries ``extract`` will write for ``path``."""
    top = fs.stat(path)
    if top.kind is not EntryKind.DIR:
        return (top.size if top.kind is EntryKind.FILE else 0), 1
    size = entries = 0
    for entry in fs.walk(top.path):
        entries += 1
        if entry.kind is EntryKind.FILE:
            size += entry.size
    return size, entries + (top.path != "/")


@contextmanager
def bar(fs: Filesystem[Any], path: str, enabled: bool = True) -> Iterator[Progress | None]:
    """A progress callback drawing a bar on stderr, or None off a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    size, entries = _size_of(fs, path)
    done = 0
    # a terminal that reports no width (a bare pseudo-terminal) would get an empty bar
    width = _width()
    with tqdm(
        total=size,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        dynamic_ncols=width is None,
        ncols=width,
        desc="restoring",
        leave=True,  # the finished bar stays: size, time and rate of the restore
    ) as shown:

        def progress(nbytes: int, finished: int) -> None:
            nonlocal done
            if finished:
                done += finished
                shown.set_postfix_str(f"{done}/{entries} entries", refresh=False)
            if nbytes:
                shown.update(nbytes)

        yield progress


def _width() -> int | None:
    """None to let tqdm follow the terminal's width; 80 when the terminal reports none."""
    try:
        return None if os.get_terminal_size(sys.stderr.fileno()).columns else 80
    except OSError:
        return 80


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def summary(result: ExtractResult, dest: Path) -> str:
    """One line: what was restored where, and what was already there."""
    what = ", ".join(
        [
            _count(result.files, "file", "files"),
            _count(result.dirs, "directory", "directories"),
            _count(result.symlinks, "symbolic link", "symbolic links"),
        ]
    )
    line = f"restored {what} ({format_size(result.bytes)}) into {printable(str(dest))}"
    if result.kept:
        line += f"; {_count(len(result.kept), 'entry', 'entries')} already there left untouched"
    if result.replaced:
        line += f"; {_count(result.replaced, 'entry', 'entries')} already there replaced"
    return line


def report_failures(result: ExtractResult) -> None:
    """Name what was skipped on stderr; exit 7 when an entry could not be restored."""
    err = sys.stderr
    if result.special:
        err.write(
            f"filerestore: skipped {len(result.special)} special file(s) "
            "(devices, FIFOs, sockets)\n"
        )
    if not result.failed:
        return
    for failed in result.failed:
        err.write(f"filerestore: skipped {printable(failed.path)}: {printable(failed.reason)}\n")
    err.write(
        f"filerestore: error: {len(result.failed)} entries could not be restored "
        f"(listed above); {result.written} were restored\n"
    )
    err.flush()
    raise click.exceptions.Exit(exit_codes.PARTIAL)

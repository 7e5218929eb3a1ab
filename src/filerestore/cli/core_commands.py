"""The read-only core commands: inspect, ls, stat, cat, get.

The reading core is imported inside each command, so ``--help`` does not import it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

import click

from filerestore.cli import json_output
from filerestore.cli.app import (
    IMAGE_HELP,
    PathType,
    app,
    image_arg,
    image_options,
    json_opt,
    metadata_budget_opt,
    repository_opt,
)

if TYPE_CHECKING:
    from filerestore.fs.entry import Entry
    from filerestore.restore import Stack


class Document(Protocol):
    """A record the CLI prints whole: ``inspect``'s description, ``stat``'s entry."""

    def to_dict(self) -> dict[str, Any]: ...


DEFAULT_METADATA_BUDGET = 64 << 20  # the image layer's DEFAULT_METADATA_BUDGET (a test checks)


def _open(image: Path, repository: Path | None, volume: str | None, budget: int | None) -> Stack:
    from filerestore.restore import open_stack

    return open_stack(
        image,
        repository=repository,
        volume_id=volume,
        metadata_budget=budget or DEFAULT_METADATA_BUDGET,
    )


def _out(text: str) -> None:
    # guest names may carry surrogate escapes (bytes that are not UTF-8): write those bytes back
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape") + b"\n")


@app.command(epilog=IMAGE_HELP)
@image_arg
@repository_opt
@json_opt
@metadata_budget_opt
def inspect(image: Path, repository: Path | None, json: bool, metadata_budget: int | None) -> None:
    """Show the backing chain, volumes and filesystems of IMAGE."""
    from filerestore.restore.describe import describe_image

    budget = metadata_budget or DEFAULT_METADATA_BUDGET
    desc = describe_image(image, repository=repository, metadata_budget=budget)
    _print_one(desc, json, lambda render: render.inspect_text(desc))


@app.command(epilog=IMAGE_HELP)
@image_arg
@click.argument("path", default="/")
@image_options
@click.option("--recursive", "-R", is_flag=True, help="List subdirectories too (full paths).")
@click.option("--json", "json", is_flag=True, help="A JSON array of the entries.")
def ls(
    image: Path,
    path: str,
    volume: str | None,
    repository: Path | None,
    metadata_budget: int | None,
    recursive: bool,
    json: bool,
) -> None:
    """List a directory inside IMAGE, like `ls -l`.

    PATH defaults to /; times are in UTC. Directories first, then files, each by name
    (case-insensitively): the order of the API's listings. With -R, every entry below
    PATH, parents before their children.
    """
    from filerestore.fs.entry import EntryKind
    from filerestore.restore.listing_order import sort_entries

    with _open(image, repository, volume, metadata_budget) as stack:
        fs = stack.fs
        entry = fs.stat(path)
        if entry.kind is EntryKind.SYMLINK and _points_to_dir(stack, path):
            entry = fs.stat(path, follow_symlinks=True)
        if entry.kind is not EntryKind.DIR:
            _print_entries([entry], json, full_path=recursive)
            return
        if recursive:
            _print_entries(fs.walk(entry.path), json, full_path=True)
        else:
            _print_entries(sort_entries(fs.list_dir(entry.path)), json, full_path=False)


def _points_to_dir(stack: Stack, path: str) -> bool:
    from filerestore.errors import PathNotFoundError
    from filerestore.fs.entry import EntryKind

    try:
        return stack.fs.stat(path, follow_symlinks=True).kind is EntryKind.DIR
    except PathNotFoundError:  # dangling: list the link itself
        return False


def _print_one(record: Document, json: bool, text: Callable[[ModuleType], str]) -> None:
    """One record: its JSON document, or what ``text`` makes of it with the render module."""
    if json:
        json_output.print_document(record.to_dict())
        return
    from filerestore.cli import render

    _out(text(render))


def _print_entries(entries: Iterable[Entry], json: bool, full_path: bool) -> None:
    if json:
        json_output.print_array(e.to_dict() for e in entries)
        return
    from filerestore.cli import render

    for entry in entries:
        _out(render.ls_line(entry, entry.path if full_path else entry.name))


@app.command(epilog=IMAGE_HELP)
@image_arg
@click.argument("path")
@image_options
@click.option("--dereference", "-L", is_flag=True, help="Follow a final symbolic link.")
@json_opt
def stat(
    image: Path,
    path: str,
    volume: str | None,
    repository: Path | None,
    metadata_budget: int | None,
    dereference: bool,
    json: bool,
) -> None:
    """Show the metadata of one entry inside IMAGE.

    The entry at PATH; times are in UTC.
    """
    with _open(image, repository, volume, metadata_budget) as stack:
        entry = stack.fs.stat(path, follow_symlinks=dereference)
    _print_one(entry, json, lambda render: render.stat_block(entry))


@app.command(epilog=IMAGE_HELP)
@image_arg
@click.argument("path")
@image_options
def cat(
    image: Path, path: str, volume: str | None, repository: Path | None, metadata_budget: int | None
) -> None:
    """Write a file inside IMAGE to standard output."""
    from filerestore.restore.file_data import read_chunks

    with _open(image, repository, volume, metadata_budget) as stack:
        out = sys.stdout.buffer
        for chunk in read_chunks(stack.fs.open(path), path):
            out.write(chunk)
        out.flush()


@app.command(epilog=IMAGE_HELP)
@image_arg
@click.argument("path")
@click.argument("dest", type=PathType)
@image_options
@click.option(
    "--skip-existing",
    is_flag=True,
    help="Leave files and links DEST already holds as they are (a rerun completes a restore).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace files and links DEST already holds (each whole, never a directory).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary line.")
def get(
    image: Path,
    path: str,
    dest: Path,
    volume: str | None,
    repository: Path | None,
    metadata_budget: int | None,
    skip_existing: bool,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Copy a file or directory tree out of IMAGE into DEST.

    PATH is the file or directory inside IMAGE; DEST a host directory (created if missing).
    The entry lands as DEST/<name> (the contents of / land in DEST itself), with its
    permission bits (never setuid, setgid or sticky) and mtime; symbolic links are written as
    links. Nothing is written outside DEST. A file or link DEST already holds stops the
    restore, unless --skip-existing or --overwrite says what to do with it. On a terminal a
    progress bar shows on stderr; a summary line ends the restore. An entry that cannot be
    read or written is skipped and named on stderr; the rest is restored, and the exit code
    is then 7.
    """
    from filerestore.cli import get_progress
    from filerestore.restore.extract import Existing, extract

    if skip_existing and overwrite:
        raise click.BadParameter("choose one of --skip-existing and --overwrite")
    existing = (
        Existing.SKIP if skip_existing else Existing.OVERWRITE if overwrite else Existing.REFUSE
    )
    with (
        _open(image, repository, volume, metadata_budget) as stack,
        get_progress.bar(stack.fs, path, enabled=not quiet) as progress,
    ):
        result = extract(stack.fs, path, dest, existing, progress)
    if not quiet:
        click.echo(get_progress.summary(result, dest))
    get_progress.report_failures(result)

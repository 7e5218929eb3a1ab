"""The read-only core commands: inspect, ls, stat, cat, get."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from filerestore.cli import exit_codes, json_output, render
from filerestore.cli.app import (
    ImageArg,
    JsonOpt,
    MetadataBudgetOpt,
    RepositoryOpt,
    VolumeOpt,
    app,
)
from filerestore.errors import PathNotFoundError
from filerestore.fs.entry import Entry, EntryKind
from filerestore.image import DEFAULT_METADATA_BUDGET
from filerestore.restore import Stack, describe_image, open_stack
from filerestore.restore.extract import ExtractResult, extract
from filerestore.restore.file_data import read_chunks
from filerestore.restore.names import printable

GuestPathArg = Annotated[str, typer.Argument(help="Path inside the guest filesystem.")]


def _open(image: Path, repository: Path | None, volume: str | None, budget: int | None) -> Stack:
    return open_stack(
        image,
        repository=repository,
        volume_id=volume,
        metadata_budget=budget or DEFAULT_METADATA_BUDGET,
    )


def _out(text: str) -> None:
    # guest names may carry surrogate escapes (bytes that are not UTF-8): write those bytes back
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape") + b"\n")


@app.command()
def inspect(
    image: ImageArg,
    repository: RepositoryOpt = None,
    json: JsonOpt = False,
    metadata_budget: MetadataBudgetOpt = None,
) -> None:
    """Show the backing chain and the volumes of IMAGE with their filesystems."""
    desc = describe_image(
        image, repository=repository, metadata_budget=metadata_budget or DEFAULT_METADATA_BUDGET
    )
    if json:
        json_output.print_document(desc.to_dict())
    else:
        _out(render.inspect_text(desc))


@app.command()
def ls(
    image: ImageArg,
    path: Annotated[str, typer.Argument(help="Directory (or file) inside the guest.")] = "/",
    volume: VolumeOpt = None,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-R", help="List subdirectories too (full paths).")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="A JSON array of the entries.")] = False,
    repository: RepositoryOpt = None,
    metadata_budget: MetadataBudgetOpt = None,
) -> None:
    """List a directory inside IMAGE, like `ls -l` (times in UTC)."""
    with _open(image, repository, volume, metadata_budget) as stack:
        fs = stack.fs
        entry = fs.stat(path)
        if entry.kind is EntryKind.SYMLINK and _points_to_dir(stack, path):
            entry = fs.stat(path, follow_symlinks=True)
        if entry.kind is not EntryKind.DIR:
            _print_entries([entry], json, full_path=recursive)
            return
        entries = fs.walk(entry.path) if recursive else fs.list_dir(entry.path)
        _print_entries(entries, json, full_path=recursive)


def _points_to_dir(stack: Stack, path: str) -> bool:
    try:
        return stack.fs.stat(path, follow_symlinks=True).kind is EntryKind.DIR
    except PathNotFoundError:  # dangling: list the link itself
        return False


def _print_entries(entries: Iterable[Entry], json: bool, full_path: bool) -> None:
    if json:
        json_output.print_array(e.to_dict() for e in entries)
        return
    for entry in entries:
        _out(render.ls_line(entry, entry.path if full_path else entry.name))


@app.command()
def stat(
    image: ImageArg,
    path: GuestPathArg,
    volume: VolumeOpt = None,
    dereference: Annotated[
        bool, typer.Option("--dereference", "-L", help="Follow a final symbolic link.")
    ] = False,
    json: JsonOpt = False,
    repository: RepositoryOpt = None,
    metadata_budget: MetadataBudgetOpt = None,
) -> None:
    """Show the metadata of one entry inside IMAGE (times in UTC)."""
    with _open(image, repository, volume, metadata_budget) as stack:
        entry = stack.fs.stat(path, follow_symlinks=dereference)
    if json:
        json_output.print_document(entry.to_dict())
    else:
        _out(render.stat_block(entry))


@app.command()
def cat(
    image: ImageArg,
    path: GuestPathArg,
    volume: VolumeOpt = None,
    repository: RepositoryOpt = None,
    metadata_budget: MetadataBudgetOpt = None,
) -> None:
    """Write the contents of a file inside IMAGE to standard output."""
    with _open(image, repository, volume, metadata_budget) as stack:
        out: BinaryIO = sys.stdout.buffer
        for chunk in read_chunks(stack.fs.open(path), path):
            out.write(chunk)
        out.flush()


@app.command()
def get(
    image: ImageArg,
    path: GuestPathArg,
    dest: Annotated[
        Path, typer.Argument(help="Host directory to write into (created if missing).")
    ],
    volume: VolumeOpt = None,
    repository: RepositoryOpt = None,
    metadata_budget: MetadataBudgetOpt = None,
) -> None:
    """Copy a file or directory tree from IMAGE into the host directory DEST.

    The entry lands as DEST/<name> (the contents of / land in DEST itself), with its
    permission bits (never setuid, setgid or sticky) and mtime; symbolic links are written as
    links. Nothing is written outside DEST and nothing in DEST is overwritten. An entry that
    cannot be read or written is skipped and named on stderr; the rest is restored, and the
    exit code is then 7.
    """
    with _open(image, repository, volume, metadata_budget) as stack:
        result = extract(stack.fs, path, dest)
    _report(result)


def _report(result: ExtractResult) -> None:
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
    raise typer.Exit(exit_codes.PARTIAL)

"""``filerestore mount`` and ``umount``: a backup's filesystem as a read-only FUSE mount."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click

from filerestore.cli import exit_codes
from filerestore.cli.app import IMAGE_HELP, PathType, app, image_arg, repository_opt, volume_opt

FSTYPE = "fuse.filerestore"


@app.command(epilog=IMAGE_HELP)
@image_arg
@click.argument("mountpoint", type=PathType)
@volume_opt
@repository_opt
@click.option(
    "--background", is_flag=True, help="Return once the mount answers; the mount keeps running."
)
@click.option(
    "--allow-other",
    is_flag=True,
    help="Let other users see the mount; the kernel then enforces the guest's modes and "
    "owners (FUSE allow_other, default_permissions).",
)
def mount(
    image: Path,
    mountpoint: Path,
    volume: str | None,
    repository: Path | None,
    background: bool,
    allow_other: bool,
) -> None:
    """Mount the filesystem inside IMAGE read-only (FUSE).

    MOUNTPOINT is an empty directory. In the foreground until Ctrl-C or SIGTERM, which
    unmount; with --background until `filerestore umount MOUNTPOINT`. Only the mounting
    user can see the files, all of them.
    """
    from filerestore import fuse
    from filerestore.restore import open_stack

    target = fuse.check_mountpoint(mountpoint)
    fuse.check_fuse_available()

    def run(on_ready: Callable[[], None]) -> None:
        stack = open_stack(image, repository=repository, volume_id=volume)
        stacks = fuse.SharedStack(stack)
        try:
            fuse.serve(
                stacks,
                target,
                name=f"filerestore:{image.name}",
                on_ready=on_ready,
                allow_other=allow_other,
            )
        finally:
            stacks.close()

    if background:
        _in_background(run)
        click.echo(f"mounted {image} at {target}; unmount with: filerestore umount {target}")
        return

    def ready() -> None:
        sys.stderr.write(f"filerestore: mounted at {target}; Ctrl-C unmounts\n")
        sys.stderr.flush()

    run(ready)


def _in_background(run: Callable[[Callable[[], None]], None]) -> None:
    """Run ``run`` in a detached child; return once it reports the mount ready, or leave
    with its error and exit code. The child's first line on the pipe is the outcome."""
    from filerestore.errors import FileRestoreError

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a session of its own, no terminal, reports through the pipe
        os.close(read_end)
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        report = os.fdopen(write_end, "w")

        def ready() -> None:
            report.write("0\tready\n")
            report.close()

        code: int = exit_codes.OK
        try:
            run(ready)
        except FileRestoreError as exc:
            code = exit_codes.exit_code(exc)
            if not report.closed:
                report.write(f"{code}\t{' '.join(str(exc).split())}\n")
        except BaseException as exc:  # the parent must hear of any failure
            code = exit_codes.FAILURE
            if not report.closed:
                report.write(f"{code}\tunexpected {type(exc).__name__}: {exc}\n")
        finally:
            if not report.closed:
                report.close()  # os._exit flushes nothing
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as outcome:
        line = outcome.readline()
    code_text, _, message = line.rstrip("\n").partition("\t")
    if not line:
        code_text, message = str(exit_codes.FAILURE), "the mount process ended without a word"
    code = int(code_text)
    if code != exit_codes.OK:
        sys.stderr.write(f"filerestore: error: {message}\n")
        raise click.exceptions.Exit(code)


@app.command()
@click.argument("mountpoint", type=PathType)
def umount(mountpoint: Path) -> None:
    """Unmount a `filerestore mount`.

    The mount at MOUNTPOINT ends and its process exits.
    """
    from filerestore.catalog.mountinfo import mount_at, read_mountinfo
    from filerestore.errors import MountpointError

    target = mountpoint.absolute()
    found = mount_at(target, read_mountinfo())
    if found is None:
        raise MountpointError(f"nothing is mounted at {target}")
    if found.fstype != FSTYPE:
        raise MountpointError(f"{target} is a {found.fstype} mount, not a filerestore mount")
    done = subprocess.run(
        ["fusermount3", "-u", os.fspath(target)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        reason = done.stderr.strip().removeprefix("fusermount3: ") or "fusermount3 failed"
        sys.stderr.write(f"filerestore: error: {reason}\n")
        raise click.exceptions.Exit(exit_codes.FAILURE)

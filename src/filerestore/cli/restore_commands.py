"""``restore`` (queue a restore job and follow it) and ``jobs`` (list, show, cancel, run).

Like ``mounts``, these work on the service's database: a job created here is run by the
service's runners (``filerestore serve``), or by ``filerestore jobs run`` where no server
runs. ``restore`` follows its job until it ends, with a progress bar on a terminal, and
exits 0 when everything was restored, 7 when some entries were not (listed by ``jobs show
--manifest``), 1 when the job failed or was cancelled. Ctrl-C stops following, not the job.
The database stack is imported inside the commands, so ``--help`` does not load it.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import click

from filerestore.cli import exit_codes, json_output
from filerestore.cli.app import app, group, json_opt
from filerestore.cli.catalog_commands import _open, print_records

if TYPE_CHECKING:
    from filerestore.db import Database
    from filerestore.service.jobs import Job

POLL_SECONDS = 0.5
POLICIES = ("skip", "rename", "overwrite")

jobs_app = group("jobs", "Restore jobs: list, show, cancel, run.")
job_arg = click.argument("job_id", metavar="JOB_ID")


@app.command()
@click.argument("mount_id", metavar="MOUNT_ID")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--target", "-t", required=True, metavar="NAME", help="A configured target's name.")
@click.option(
    "--to",
    "to",
    default="",
    metavar="DIR",
    help="A directory inside the target (created when missing).",
)
@click.option(
    "--policy",
    type=click.Choice(POLICIES),
    default="skip",
    show_default=True,
    help="When a name exists: skip, rename or overwrite.",
)
@click.option("--detach", is_flag=True, help="Queue the job and return at once.")
@json_opt
def restore(
    mount_id: str,
    paths: tuple[str, ...],
    target: str,
    to: str,
    policy: str,
    detach: bool,
    json: bool,
) -> None:
    """Restore PATHs from session MOUNT_ID (`mounts`) into a configured target, as a job."""
    from filerestore.service import jobs as job_service
    from filerestore.service.principal import Principal

    settings, db = _open()
    job = job_service.create_job(
        db, settings, Principal.operator(), mount_id, list(paths), target, to, policy
    )
    if detach:
        _show(job, json)
        return
    job = _follow(db, job, quiet=json)
    _show(job, json)
    raise click.exceptions.Exit(_exit_code(job))


def _follow(db: Database, job: Job, quiet: bool) -> Job:
    """Poll the job until it ends; a progress bar (tqdm, on stderr) on a terminal."""
    from filerestore.service import jobs as job_service
    from filerestore.service.principal import Principal

    who = Principal.operator()
    shown = None
    if not quiet and sys.stderr.isatty():
        from tqdm import tqdm

        shown = tqdm(total=100, file=sys.stderr, desc="queued", unit="%", leave=False)
    try:
        while job.status in ("queued", "running"):
            time.sleep(POLL_SECONDS)
            job = job_service.get_job(db, who, job.job_id)
            if shown is not None:
                p = job.progress
                shown.set_description(job.status, refresh=False)
                shown.set_postfix_str(
                    f"{p.files_done} files, {p.bytes_done / 1e6:.1f} MB, "
                    f"{p.files_per_second or 0:.0f} files/s, {p.mb_per_second or 0:.1f} MB/s",
                    refresh=False,
                )
                shown.n = round(p.percent or 0, 1)
                shown.refresh()
    except KeyboardInterrupt:
        sys.stderr.write(
            f"filerestore: stopped following; the job goes on "
            f"(filerestore jobs cancel {job.job_id})\n"
        )
        raise click.exceptions.Exit(exit_codes.INTERRUPTED) from None
    finally:
        if shown is not None:
            shown.close()
    return job


def _exit_code(job: Job) -> int:
    if job.status == "completed":
        return exit_codes.PARTIAL if job.progress.failed else exit_codes.OK
    return exit_codes.FAILURE


def _show(job: Job, json: bool) -> None:
    if json:
        json_output.print_document(json_output.record(job))
        return
    p = job.progress
    click.echo(
        f"job {job.job_id}: {job.status}; {p.files_done} files, {p.dirs_done} directories, "
        f"{p.bytes_done} bytes, {p.skipped} skipped, {p.failed} failed"
    )
    for line in job.unkept:
        click.echo(f"  not kept: {line}")
    if job.error:
        click.echo(f"  error: {job.error}", err=True)


@jobs_app.command("list")
@json_opt
def jobs_list(json: bool) -> None:
    """List restore jobs."""
    from filerestore.service import jobs as job_service
    from filerestore.service.principal import Principal

    _, db = _open()
    found = job_service.list_jobs(db, Principal.operator())

    def row(j: Job) -> dict[str, Any]:
        return {
            "job_id": j.job_id,
            "status": j.status,
            "target": j.target,
            "destination": j.destination or ".",
            "percent": j.progress.percent,
            "files": j.progress.files_done,
            "failed": j.progress.failed,
            "created_at": j.created_at,
        }

    columns = ["job_id", "status", "target", "destination", "percent", "files", "failed"]
    print_records(found, json, row, [*columns, "created_at"])


@jobs_app.command("show")
@job_arg
@click.option("--manifest", is_flag=True, help="Also print the manifest, one entry a line.")
@json_opt
def jobs_show(job_id: str, manifest: bool, json: bool) -> None:
    """Show a job and its progress (and its manifest)."""
    from filerestore.service import jobs as job_service
    from filerestore.service.principal import Principal

    _, db = _open()
    job = job_service.get_job(db, Principal.operator(), job_id)
    if json and not manifest:
        json_output.print_document(json_output.record(job))
        return
    if json:
        entries = job_service.manifest(db, Principal.operator(), job_id)
        json_output.print_document(
            json_output.record(job, manifest=[json_output.record(e) for e in entries])
        )
        return
    _show(job, False)
    if manifest:
        for entry in job_service.manifest(db, Principal.operator(), job_id):
            sys.stdout.write(job_service.manifest_line(entry))


@jobs_app.command("cancel")
@job_arg
def jobs_cancel(job_id: str) -> None:
    """Cancel a job (a running one stops within about a second)."""
    from filerestore.service import jobs as job_service
    from filerestore.service.principal import Principal

    _, db = _open()
    job = job_service.cancel_job(db, Principal.operator(), job_id)
    click.echo(f"job {job.job_id}: {job.status}, cancel requested")


@jobs_app.command("run")
@click.option("--once", is_flag=True, help="Run the queued jobs, then return.")
def jobs_run(once: bool) -> None:
    """Run restore jobs in this process (where no `filerestore serve` runs them)."""
    from filerestore.service.job_runner import JobRunner
    from filerestore.service.sessions import SessionManager

    settings, db = _open()
    runner = JobRunner(SessionManager(db, settings))
    if once:
        while runner.run_once() is not None:
            pass
        return
    runner.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        runner.stop()

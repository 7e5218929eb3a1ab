"""``restore`` (queue a restore job and follow it) and ``jobs`` (list, show, cancel, run).

Like ``mounts``, these work on the service's database: a job created here is run by the
service's runners (``filerestore serve``), or by ``filerestore jobs run`` where no server
runs. ``restore`` follows its job until it ends, with a progress bar on a terminal, and
exits 0 when everything was restored, 7 when some entries were not (listed by ``jobs show
--manifest``), 1 when the job failed or was cancelled. Ctrl-C stops following, not the job.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from filerestore.cli import exit_codes, json_output
from filerestore.cli.app import JsonOpt, app
from filerestore.cli.catalog_commands import _open, _print_table
from filerestore.db import Database
from filerestore.service import jobs as job_service
from filerestore.service.job_runner import JobRunner
from filerestore.service.jobs import Job
from filerestore.service.principal import Principal
from filerestore.service.sessions import SessionManager

jobs_app = typer.Typer(help="Restore jobs: list, show, cancel, run.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")

POLL_SECONDS = 0.5
JobArg = Annotated[str, typer.Argument(help="The job's id.")]


@app.command()
def restore(
    mount_id: Annotated[str, typer.Argument(help="The session to restore from (`mounts`).")],
    paths: Annotated[list[str], typer.Argument(help="Guest paths to restore.")],
    target: Annotated[str, typer.Option("--target", "-t", help="A configured target's name.")],
    to: Annotated[
        str, typer.Option("--to", help="A directory inside the target (created when missing).")
    ] = "",
    policy: Annotated[
        str, typer.Option("--policy", help="When a name exists: skip, rename or overwrite.")
    ] = "skip",
    detach: Annotated[
        bool, typer.Option("--detach", help="Queue the job and return at once.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Restore PATHS from session MOUNT_ID into a configured target, as a job."""
    settings, db = _open()
    job = job_service.create_job(
        db, settings, Principal.operator(), mount_id, paths, target, to, policy
    )
    if detach:
        _show(job, json)
        return
    job = _follow(db, job, quiet=json)
    _show(job, json)
    raise typer.Exit(_exit_code(job))


def _follow(db: Database, job: Job, quiet: bool) -> Job:
    """Poll the job until it ends; a progress bar on a terminal."""
    who = Principal.operator()
    bar = None
    if not quiet and sys.stderr.isatty():
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"),
            transient=True,
            console=None,
        )
        bar.start()
    task = bar.add_task("queued", total=100, detail="") if bar else None
    try:
        while job.status in ("queued", "running"):
            time.sleep(POLL_SECONDS)
            job = job_service.get_job(db, who, job.job_id)
            if bar is not None and task is not None:
                p = job.progress
                detail = (
                    f"{p.files_done} files, {p.bytes_done / 1e6:.1f} MB, "
                    f"{p.files_per_second or 0:.0f} files/s, {p.mb_per_second or 0:.1f} MB/s  "
                    f"{p.current_path or ''}"
                )
                bar.update(task, description=job.status, completed=p.percent or 0, detail=detail)
    except KeyboardInterrupt:
        sys.stderr.write(
            f"filerestore: stopped following; the job goes on "
            f"(filerestore jobs cancel {job.job_id})\n"
        )
        raise typer.Exit(exit_codes.INTERRUPTED) from None
    finally:
        if bar is not None:
            bar.stop()
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
    typer.echo(
        f"job {job.job_id}: {job.status}; {p.files_done} files, {p.dirs_done} directories, "
        f"{p.bytes_done} bytes, {p.skipped} skipped, {p.failed} failed"
    )
    for line in job.unkept:
        typer.echo(f"  not kept: {line}")
    if job.error:
        typer.echo(f"  error: {job.error}", err=True)


@jobs_app.command("list")
def jobs_list(json: JsonOpt = False) -> None:
    """List restore jobs."""
    _, db = _open()
    found = job_service.list_jobs(db, Principal.operator())
    if json:
        json_output.print_array(json_output.record(j) for j in found)
        return
    rows = [
        {
            "job_id": j.job_id,
            "status": j.status,
            "target": j.target,
            "destination": j.destination or ".",
            "percent": j.progress.percent,
            "files": j.progress.files_done,
            "failed": j.progress.failed,
            "created_at": j.created_at,
        }
        for j in found
    ]
    _print_table(rows, list(rows[0]) if rows else ["job_id", "status"])


@jobs_app.command("show")
def jobs_show(
    job_id: JobArg,
    manifest: Annotated[
        bool, typer.Option("--manifest", help="Also print the manifest, one entry a line.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Show a job and its progress (and its manifest)."""
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
def jobs_cancel(job_id: JobArg) -> None:
    """Cancel a job (a running one stops within about a second)."""
    _, db = _open()
    job = job_service.cancel_job(db, Principal.operator(), job_id)
    typer.echo(f"job {job.job_id}: {job.status}, cancel requested")


@jobs_app.command("run")
def jobs_run(
    once: Annotated[bool, typer.Option("--once", help="Run the queued jobs, then return.")] = False,
) -> None:
    """Run restore jobs in this process (where no `filerestore serve` runs them)."""
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

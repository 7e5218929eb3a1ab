"""Index commands: ``search`` (also ``find``), ``history``, ``diff`` and ``index`` (status,
jobs, queue, run, cancel). Thin: each calls filerestore.index and prints the result, as text
for people or one JSON document (``--json``) for machines. The CLI runs on the catalog's own
database, so every backup in the catalog is searched. The database stack is imported inside
the commands, so ``--help`` does not load it.
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from filerestore.cli import json_output
from filerestore.cli.app import app, group, json_opt

if TYPE_CHECKING:
    from filerestore.db import Database
    from filerestore.index.diff import BackupDiff
    from filerestore.index.records import BackupRef, PathHit, Version
    from filerestore.index.runner import IndexRunner
    from filerestore.settings import Settings

index_app = group("index", "The file index: status, jobs, queue, run, cancel.")

DATE = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"])
KINDS = click.Choice(["file", "dir", "symlink", "other"])
index_volume_opt = click.option(
    "--volume",
    "-v",
    "volume",
    default=None,
    metavar="ID",
    help="Volume (when the disk has several).",
)


def _open() -> tuple[Settings, Database]:
    from filerestore.db import open_database
    from filerestore.settings import load_settings

    settings = load_settings()
    return settings, open_database(settings)


def _allowed(db: Database) -> set[int]:
    from filerestore import catalog

    return {b.id for b in catalog.list_backups(db)}


def _utc(moment: datetime | None) -> datetime | None:
    """A date given without a zone is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _backups(refs: tuple[BackupRef, ...]) -> str:
    return ",".join(str(b.backup_id) for b in refs)


def _version(v: Version) -> str:
    from filerestore.cli.render import format_time
    from filerestore.fs.entry import EntryKind
    from filerestore.restore.stack import format_size

    size = format_size(v.size) if v.kind is EntryKind.FILE else v.kind.value
    return f"{size:>10}  {format_time(v.mtime_ns)}  backups {_backups(v.backups)}"


def _hit_lines(hit: PathHit) -> list[str]:
    from filerestore.restore.names import printable

    where = "/".join(x or "-" for x in (hit.vm_name, hit.disk_name)) + f" {hit.volume}"
    lines = [f"{printable(hit.path)}  ({printable(where)})"]
    lines += [f"  {_version(v)}" for v in hit.versions]
    return lines


@app.command("search")
@click.argument("name", required=False)
@click.option("--glob", default=None, help="Glob the whole name matches (*, ?, [...]).")
@click.option("--path", default=None, help="Only under this guest path.")
@click.option("--kind", type=KINDS, default=None, help="Only entries of this kind.")
@click.option("--size-min", type=click.IntRange(min=0), default=None, help="Bytes.")
@click.option("--size-max", type=click.IntRange(min=0), default=None, help="Bytes.")
@click.option("--mtime-from", type=DATE, default=None, help="Modified at or after (UTC).")
@click.option("--mtime-to", type=DATE, default=None, help="Modified at or before (UTC).")
@click.option("--vm", default=None, help="Only this VM's backups.")
@click.option("--disk", default=None, help="Only this disk's backups.")
@click.option("--backup", type=click.IntRange(min=1), multiple=True, help="Only this backup.")
@click.option("--created-from", type=DATE, default=None, help="Backups made at or after.")
@click.option("--created-to", type=DATE, default=None, help="Backups made at or before.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--cursor", default=None, help="The next page (as printed).")
@click.option("--all", "all_pages", is_flag=True, help="Every page.")
@json_opt
def search_command(
    name: str | None,
    glob: str | None,
    path: str | None,
    kind: str | None,
    size_min: int | None,
    size_max: int | None,
    mtime_from: datetime | None,
    mtime_to: datetime | None,
    vm: str | None,
    disk: str | None,
    backup: tuple[int, ...],
    created_from: datetime | None,
    created_to: datetime | None,
    limit: int,
    cursor: str | None,
    all_pages: bool,
    json: bool,
) -> None:
    """Search every indexed backup for NAME (a substring, any case): paths with their
    versions and the backups holding them. Dates without a zone are UTC."""
    from filerestore.fs.entry import EntryKind
    from filerestore.index.search import SearchQuery, search

    _, db = _open()
    allowed = _allowed(db)
    hits: list[Any] = []
    shown = 0
    while True:
        query = SearchQuery(
            name=name,
            glob=glob,
            path_prefix=path,
            kind=None if kind is None else EntryKind(kind),
            size_min=size_min,
            size_max=size_max,
            mtime_from=_utc(mtime_from),
            mtime_to=_utc(mtime_to),
            vm_name=vm,
            disk_name=disk,
            backup_ids=list(backup) or None,
            created_from=_utc(created_from),
            created_to=_utc(created_to),
            limit=limit,
            cursor=cursor,
        )
        page = search(db, query, allowed)
        if json:
            hits += page.hits
        else:
            for hit in page.hits:
                click.echo("\n".join(_hit_lines(hit)))
        shown += len(page.hits)
        cursor = page.next_cursor
        if cursor is None or not all_pages:
            break
    if json:
        json_output.print_document({"hits": hits, "next_cursor": cursor})
    elif cursor is not None:
        click.echo(f"-- more: --cursor {cursor} (or --all)")
    elif shown == 0:
        click.echo("no match in the indexed backups (see `filerestore index status`)")


app.add_command(
    click.Command(
        "find",
        callback=search_command.callback,
        params=search_command.params,
        help="Same as `search`.",
        context_settings=search_command.context_settings,
    )
)


@app.command()
@click.argument("backup_id", type=click.IntRange(min=1))
@click.argument("path")
@index_volume_opt
@json_opt
def history(backup_id: int, path: str, volume: str | None, json: bool) -> None:
    """Every version of PATH across the backups of the disk of BACKUP_ID, and when it
    appeared, changed and vanished."""
    from filerestore.index.history import path_history
    from filerestore.restore.names import printable

    _, db = _open()
    if not path.startswith("/"):
        path = "/" + path
    h = path_history(db, backup_id, path, _allowed(db), volume)
    if json:
        json_output.print_document(h)
        return
    if not h.versions:
        click.echo(f"{printable(path)}: in no indexed backup of this disk ({h.volume})")
        return
    click.echo(f"{printable(h.path)} ({h.volume}): {len(h.versions)} version(s)")
    for i, v in enumerate(h.versions, 1):
        click.echo(f"  v{i} {_version(v)}")
    for e in h.events:
        when = e.backup.created_at.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"  {e.event:<8} in backup {e.backup.backup_id} ({when})")
    if h.last_seen is not None:
        click.echo(f"  last seen in backup {h.last_seen.backup_id}")


@app.command()
@click.argument("old", type=click.IntRange(min=1))
@click.argument("new", type=click.IntRange(min=1))
@click.option("--path", default="/", show_default=True, help="Only this directory.")
@index_volume_opt
@click.option("--content", is_flag=True, help="Compare changed files' contents too.")
@json_opt
def diff(old: int, new: int, path: str, volume: str | None, content: bool, json: bool) -> None:
    """What differs between backups OLD and NEW of one disk: + added, - removed, M changed
    (the fields named), then totals. --json: {"entries": [...], "totals": {...}}, the entries
    written as they are found."""
    from filerestore.index.diff import BackupDiff
    from filerestore.index.hashing import ContentHashes

    settings, db = _open()
    hashes = ContentHashes(db, settings)  # the configured limits, stores and credentials
    try:
        d = BackupDiff(
            db, old, new, _allowed(db), volume=volume, path=path, content=content, hashes=hashes
        )
        _print_diff(d, json)
    finally:
        hashes.close()


def _print_diff(d: BackupDiff, json: bool) -> None:
    from filerestore.restore.names import printable

    if json:
        sys.stdout.write('{\n  "entries": ')
        for text in json_output.array(d):
            sys.stdout.write(text.replace("\n", "\n  "))
        sys.stdout.write(',\n  "totals": ')
        sys.stdout.write(json_output.document(d.totals).replace("\n", "\n  ") + "\n}\n")
        return
    marks = {"added": "+", "removed": "-", "changed": "M"}
    for e in d:
        line = f"{marks[e.change]} {printable(e.path)}"
        if e.fields:
            line += f"  ({', '.join(e.fields)})"
        if e.content_changed is not None:
            line += "  content " + ("differs" if e.content_changed else "same")
        click.echo(line)
    t = d.totals
    click.echo(f"{t.added} added, {t.removed} removed, {t.changed} changed")


@index_app.command("status")
@json_opt
def index_status(json: bool) -> None:
    """Each backup's index state: none, queued, running (progress), done, failed (why)."""
    from filerestore.index import jobs
    from filerestore.restore.names import printable

    _, db = _open()
    states = [v for _, v in sorted(jobs.index_states(db, _allowed(db)).items())]
    if json:
        json_output.print_array(states)
        return
    click.echo(f"{'BACKUP':>6}  {'STATE':<8}  {'ENTRIES':>9}  PROGRESS  REASON")
    for r in states:
        progress = "-" if r.percent is None else f"{r.percent:.0f}%"
        click.echo(
            f"{r.backup_id:>6}  {r.state:<8}  {r.entries:>9}  {progress:>8}  "
            f"{printable(r.reason or '')}"
        )


@index_app.command("jobs")
@json_opt
def index_jobs(json: bool) -> None:
    """Every index job, oldest first."""
    from filerestore.index import jobs
    from filerestore.restore.names import printable

    _, db = _open()
    rows = jobs.list_jobs(db)
    if json:
        json_output.print_array(rows)
        return
    click.echo(f"{'JOB':>5}  {'BACKUP':>6}  {'STATE':<9}  {'TRIES':>5}  {'ENTRIES':>9}  REASON")
    for r in rows:
        backup = "-" if r.backup_id is None else str(r.backup_id)
        click.echo(
            f"{r.id:>5}  {backup:>6}  {r.state:<9}  {r.attempts:>5}  {r.entries:>9}  "
            f"{printable(r.reason or '')}"
        )


@index_app.command("queue")
@click.argument("backup_ids", type=click.IntRange(min=1), nargs=-1)
def index_queue(backup_ids: tuple[int, ...]) -> None:
    """Queue index jobs for BACKUP_IDS (default: every backup never indexed or queued); a
    backup with an active job keeps it."""
    from filerestore import catalog
    from filerestore.index import jobs

    _, db = _open()
    if backup_ids:
        for backup_id in backup_ids:
            catalog.get_backup(db, backup_id)  # not found: exit 3, nothing queued
        queued = [jobs.enqueue(db, b, requested_by="cli") for b in backup_ids]
    else:
        queued = jobs.enqueue_unindexed(db, requested_by="cli")
    for job in queued:
        click.echo(f"job {job.id}: backup {job.backup_id} {job.state}")
    if not queued:
        click.echo("nothing to queue: every backup is indexed or queued")


@index_app.command("cancel")
@click.argument("job_id", type=click.IntRange(min=1))
def index_cancel(job_id: int) -> None:
    """Cancel index job JOB_ID: a queued one at once, a running one at its next batch."""
    from filerestore.index import jobs

    _, db = _open()
    job = jobs.cancel(db, job_id)
    state = "cancel requested" if job.state == "running" else job.state
    click.echo(f"job {job.id}: backup {job.backup_id} {state}")


def _progress(db: Database, runner: str, done: threading.Event) -> None:
    """A progress line on the terminal (stderr) for the job this process runs."""
    from filerestore.errors import FileRestoreError
    from filerestore.index import jobs

    width = 0
    while not done.wait(0.5):
        try:
            running = [j for j in jobs.list_jobs(db, ["running"]) if j.runner == runner]
        except FileRestoreError:  # the database busy for a moment: the next tick shows it
            running = []
        for j in running:
            pct = "" if j.percent is None else f" {j.percent:5.1f}%"
            line = (
                f"job {j.id} (backup {j.backup_id}): {j.entries} entries, "
                f"{j.entries_per_s:,.0f}/s{pct}"
            )
            width = max(width, len(line))
            sys.stderr.write("\r" + line.ljust(width))
            sys.stderr.flush()
    if width:
        sys.stderr.write("\r" + " " * width + "\r")
        sys.stderr.flush()


@index_app.command("run")
@click.option("--follow", is_flag=True, help="Keep running, waiting for new jobs (Ctrl-C stops).")
def index_run(follow: bool) -> None:
    """Run queued index jobs here until none is due (or, with --follow, until stopped: the
    job it runs then is undone and queued again). A progress line shows on a terminal."""
    from filerestore.index.runner import IndexRunner
    from filerestore.service.index_slots import SessionSlots
    from filerestore.service.sessions import SessionManager

    settings, db = _open()
    # its passes hold session slots, as the service's runners do (service.index_slots)
    manager = SessionManager(db, settings)
    runner = IndexRunner(db, settings, opener=SessionSlots(manager))
    try:
        _run(db, runner, follow)
    finally:
        manager.stores.close()


def _run(db: Database, runner: IndexRunner, follow: bool) -> None:
    from filerestore.restore.names import printable

    if not follow:
        done = threading.Event()
        if sys.stderr.isatty():
            threading.Thread(target=_progress, args=(db, runner.name, done), daemon=True).start()
        try:
            outcomes = runner.drain()
        finally:
            done.set()
        for o in outcomes:
            entries = f", {o.report.entries} entries" if o.report is not None else ""
            reason = f": {printable(o.reason)}" if o.reason and o.state != "done" else ""
            click.echo(f"job {o.job_id}: {o.state}{entries}{reason}")
        if not outcomes:
            click.echo("no index job is due")
        if any(o.state == "failed" for o in outcomes):
            raise click.exceptions.Exit(1)
        return
    stopped = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runner.start()
    click.echo(f"index runner {runner.name} started; Ctrl-C or SIGTERM stops it")
    stopped.wait()
    runner.stop()
    click.echo("index runner stopped")

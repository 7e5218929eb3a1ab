"""Index commands: ``search`` (also ``find``), ``history``, ``diff`` and ``index`` (status,
jobs, queue, run, cancel). Thin: each calls filerestore.index and prints the result, as a
table for people or ``--json`` for machines. The CLI runs on the catalog's own database, so
every backup in the catalog is searched.
"""

from __future__ import annotations

import signal
import sys
import threading
from dataclasses import asdict, fields, is_dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any

import typer

from filerestore import catalog
from filerestore.cli.app import JsonOpt, app
from filerestore.cli.render import format_time, json_line, printable
from filerestore.db import Database, open_database
from filerestore.errors import FileRestoreError
from filerestore.fs.entry import EntryKind
from filerestore.index import jobs
from filerestore.index.diff import BackupDiff
from filerestore.index.history import path_history
from filerestore.index.records import BackupRef, PathHit, Version
from filerestore.index.runner import IndexRunner
from filerestore.index.search import MAX_LIMIT, SearchQuery, search
from filerestore.restore.stack import format_size
from filerestore.settings import Settings, load_settings

index_app = typer.Typer(
    help="The file index: state, jobs, queue, run, cancel.", no_args_is_help=True
)
app.add_typer(index_app, name="index")

VolumeOpt = Annotated[
    str | None, typer.Option("--volume", "-V", help="Volume (when the disk has several).")
]
DateOpt = typer.Option(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"])


def _open() -> tuple[Settings, Database]:
    settings = load_settings()
    return settings, open_database(settings)


def _allowed(db: Database) -> set[int]:
    return {b.id for b in catalog.list_backups(db)}


def _utc(moment: datetime | None) -> datetime | None:
    """A date given without a zone is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def plain(value: Any) -> Any:
    """Records as JSON-ready values (dates as ISO 8601, kinds as their names)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def _backups(refs: tuple[BackupRef, ...]) -> str:
    return ",".join(str(b.backup_id) for b in refs)


def _version(v: Version) -> str:
    size = format_size(v.size) if v.kind is EntryKind.FILE else v.kind.value
    return f"{size:>10}  {format_time(v.mtime_ns)}  backups {_backups(v.backups)}"


def _hit_lines(hit: PathHit) -> list[str]:
    where = "/".join(x or "-" for x in (hit.vm_name, hit.disk_name)) + f" {hit.volume}"
    lines = [f"{printable(hit.path)}  ({printable(where)})"]
    lines += [f"  {_version(v)}" for v in hit.versions]
    return lines


def _search(
    name: str | None,
    glob: str | None,
    path: str | None,
    kind: EntryKind | None,
    size_min: int | None,
    size_max: int | None,
    mtime_from: datetime | None,
    mtime_to: datetime | None,
    vm: str | None,
    disk: str | None,
    backup: list[int] | None,
    created_from: datetime | None,
    created_to: datetime | None,
    limit: int,
    cursor: str | None,
    all_pages: bool,
    json: bool,
) -> None:
    _, db = _open()
    allowed = _allowed(db)
    shown = 0
    while True:
        query = SearchQuery(
            name=name,
            glob=glob,
            path_prefix=path,
            kind=kind,
            size_min=size_min,
            size_max=size_max,
            mtime_from=_utc(mtime_from),
            mtime_to=_utc(mtime_to),
            vm_name=vm,
            disk_name=disk,
            backup_ids=backup or None,
            created_from=_utc(created_from),
            created_to=_utc(created_to),
            limit=limit,
            cursor=cursor,
        )
        page = search(db, query, allowed)
        for hit in page.hits:
            if json:
                typer.echo(json_line(plain(hit)))
            else:
                typer.echo("\n".join(_hit_lines(hit)))
        shown += len(page.hits)
        cursor = page.next_cursor
        if cursor is None or not all_pages:
            break
    if json:
        typer.echo(json_line({"next_cursor": cursor}))
    elif cursor is not None:
        typer.echo(f"-- more: --cursor {cursor} (or --all)")
    elif shown == 0:
        typer.echo("no match in the indexed backups (see `filerestore index status`)")


def _search_command(
    name: Annotated[
        str | None, typer.Argument(help="Substring of the name (any case).", show_default=False)
    ] = None,
    glob: Annotated[
        str | None, typer.Option("--glob", help="Glob the whole name matches (*, ?, [...]).")
    ] = None,
    path: Annotated[str | None, typer.Option("--path", help="Only under this guest path.")] = None,
    kind: Annotated[EntryKind | None, typer.Option("--kind", help="file, dir, symlink, other.")] = (
        None
    ),
    size_min: Annotated[int | None, typer.Option("--size-min", min=0, help="Bytes.")] = None,
    size_max: Annotated[int | None, typer.Option("--size-max", min=0, help="Bytes.")] = None,
    mtime_from: Annotated[datetime | None, DateOpt] = None,
    mtime_to: Annotated[datetime | None, DateOpt] = None,
    vm: Annotated[str | None, typer.Option("--vm", help="Only this VM's backups.")] = None,
    disk: Annotated[str | None, typer.Option("--disk", help="Only this disk's backups.")] = None,
    backup: Annotated[
        list[int] | None, typer.Option("--backup", help="Only this backup (repeatable).")
    ] = None,
    created_from: Annotated[datetime | None, DateOpt] = None,
    created_to: Annotated[datetime | None, DateOpt] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=MAX_LIMIT, help="Page size.")] = 50,
    cursor: Annotated[str | None, typer.Option("--cursor", help="Next page (as printed).")] = (
        None
    ),
    all_pages: Annotated[bool, typer.Option("--all", help="Every page.")] = False,
    json: JsonOpt = False,
) -> None:
    """Search every indexed backup: paths grouped with their versions and backups (dates
    without a zone are UTC; times shown in UTC)."""
    _search(
        name, glob, path, kind, size_min, size_max, mtime_from, mtime_to, vm, disk, backup,
        created_from, created_to, limit, cursor, all_pages, json,
    )  # fmt: skip


app.command("search")(_search_command)
app.command("find", help="Same as `search`.")(_search_command)


@app.command()
def history(
    backup_id: Annotated[int, typer.Argument(help="Any backup of the disk.", min=1)],
    path: Annotated[str, typer.Argument(help="Guest path.")],
    volume: VolumeOpt = None,
    json: JsonOpt = False,
) -> None:
    """Every version of PATH across the backups of one disk, and when it appeared, changed
    and vanished."""
    _, db = _open()
    if not path.startswith("/"):
        path = "/" + path
    h = path_history(db, backup_id, path, _allowed(db), volume)
    if json:
        typer.echo(json_line(plain(h)))
        return
    if not h.versions:
        typer.echo(f"{printable(path)}: in no indexed backup of this disk ({h.volume})")
        return
    typer.echo(f"{printable(h.path)} ({h.volume}): {len(h.versions)} version(s)")
    for i, v in enumerate(h.versions, 1):
        typer.echo(f"  v{i} {_version(v)}")
    for e in h.events:
        when = e.backup.created_at.strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(f"  {e.event:<8} in backup {e.backup.backup_id} ({when})")
    if h.last_seen is not None:
        typer.echo(f"  last seen in backup {h.last_seen.backup_id}")


@app.command()
def diff(
    old: Annotated[int, typer.Argument(help="The older backup.", min=1)],
    new: Annotated[int, typer.Argument(help="The newer backup (same disk).", min=1)],
    path: Annotated[str, typer.Option("--path", help="Only this directory.")] = "/",
    volume: VolumeOpt = None,
    content: Annotated[
        bool, typer.Option("--content", help="Compare changed files' contents too.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """What differs between two backups of one disk: + added, - removed, M changed (the
    fields named), then totals."""
    _, db = _open()
    d = BackupDiff(db, old, new, _allowed(db), volume=volume, path=path, content=content)
    marks = {"added": "+", "removed": "-", "changed": "M"}
    for e in d:
        if json:
            typer.echo(json_line(plain(e)))
            continue
        line = f"{marks[e.change]} {printable(e.path)}"
        if e.fields:
            line += f"  ({', '.join(e.fields)})"
        if e.content_changed is not None:
            line += "  content " + ("differs" if e.content_changed else "same")
        typer.echo(line)
    t = d.totals
    if json:
        typer.echo(json_line({"totals": plain(t)}))
    else:
        typer.echo(f"{t.added} added, {t.removed} removed, {t.changed} changed")


@index_app.command("status")
def index_status(json: JsonOpt = False) -> None:
    """Each backup's index state: none, queued, running (progress), done, failed (why)."""
    _, db = _open()
    states = jobs.index_states(db, _allowed(db))
    rows = [asdict(v) for _, v in sorted(states.items())]
    if json:
        typer.echo(json_line(plain(rows)))
        return
    typer.echo(f"{'BACKUP':>6}  {'STATE':<8}  {'ENTRIES':>9}  PROGRESS  REASON")
    for r in rows:
        progress = "-" if r["percent"] is None else f"{r['percent']:.0f}%"
        reason = printable(r["reason"] or "")
        typer.echo(
            f"{r['backup_id']:>6}  {r['state']:<8}  {r['entries']:>9}  {progress:>8}  {reason}"
        )


@index_app.command("jobs")
def index_jobs(json: JsonOpt = False) -> None:
    """Every index job, oldest first."""
    _, db = _open()
    rows = [asdict(j) for j in jobs.list_jobs(db)]
    if json:
        typer.echo(json_line(plain(rows)))
        return
    typer.echo(f"{'JOB':>5}  {'BACKUP':>6}  {'STATE':<9}  {'TRIES':>5}  {'ENTRIES':>9}  REASON")
    for r in rows:
        backup = "-" if r["backup_id"] is None else r["backup_id"]
        typer.echo(
            f"{r['id']:>5}  {backup:>6}  {r['state']:<9}  {r['attempts']:>5}  "
            f"{r['entries']:>9}  {printable(r['reason'] or '')}"
        )


@index_app.command("queue")
def index_queue(
    backup_ids: Annotated[
        list[int] | None,
        typer.Argument(help="Backups to index (default: every one never indexed or queued)."),
    ] = None,
) -> None:
    """Queue index jobs (a backup with an active job keeps it)."""
    _, db = _open()
    if backup_ids:
        for backup_id in backup_ids:
            catalog.get_backup(db, backup_id)  # not found: exit 3, nothing queued
        queued = [jobs.enqueue(db, b, requested_by="cli") for b in backup_ids]
    else:
        queued = jobs.enqueue_unindexed(db, requested_by="cli")
    for job in queued:
        typer.echo(f"job {job.id}: backup {job.backup_id} {job.state}")
    if not queued:
        typer.echo("nothing to queue: every backup is indexed or queued")


@index_app.command("cancel")
def index_cancel(
    job_id: Annotated[int, typer.Argument(help="The job (see `index jobs`).", min=1)],
) -> None:
    """Cancel an index job: a queued one at once, a running one at its next batch."""
    _, db = _open()
    job = jobs.cancel(db, job_id)
    state = "cancel requested" if job.state == "running" else job.state
    typer.echo(f"job {job.id}: backup {job.backup_id} {state}")


def _progress(db: Database, runner: str, done: threading.Event) -> None:
    """A progress line on the terminal (stderr) for the job this process runs."""
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
def index_run(
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep running, waiting for new jobs (Ctrl-C stops).")
    ] = False,
) -> None:
    """Run queued index jobs here until none is due (or, with --follow, until stopped: the
    job it runs then is undone and queued again)."""
    settings, db = _open()
    runner = IndexRunner(db, settings)
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
            typer.echo(f"job {o.job_id}: {o.state}{entries}{reason}")
        if not outcomes:
            typer.echo("no index job is due")
        if any(o.state == "failed" for o in outcomes):
            raise typer.Exit(1)
        return
    stopped = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runner.start()
    typer.echo(f"index runner {runner.name} started; Ctrl-C or SIGTERM stops it")
    stopped.wait()
    runner.stop()
    typer.echo("index runner stopped")

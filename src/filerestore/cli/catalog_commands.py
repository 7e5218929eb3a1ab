"""Catalog, session and database commands: ``repo``, ``scan``, ``backups``, ``mounts``,
``cleanup`` and ``db``. Thin: each calls the catalog or restore layer and prints the result.
"""

from __future__ import annotations

import json as jsonlib
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

import typer

from filerestore import catalog
from filerestore.cli.app import JsonOpt, app
from filerestore.db import Database, open_database
from filerestore.db import migrate as migrations
from filerestore.restore import cleanup as cleanups
from filerestore.restore.sessions import SessionManager
from filerestore.settings import Settings, load_settings

repo_app = typer.Typer(help="Backup repositories: add, list.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema: upgrade, downgrade, current.", no_args_is_help=True)
app.add_typer(repo_app, name="repo")
app.add_typer(db_app, name="db")


def _open(migrate: bool = True) -> tuple[Settings, Database]:
    settings = load_settings()
    db = open_database(settings, migrate=migrate)
    if migrate and settings.repositories:
        catalog.sync_configured(db, settings.repositories)
    return settings, db


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _print_json(rows: list[dict[str, Any]]) -> None:
    typer.echo(jsonlib.dumps([{k: _plain(v) for k, v in r.items()} for r in rows], indent=2))


def _print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    cells = [[str(_plain(r[c]) if r[c] is not None else "-") for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@repo_app.command("add")
def repo_add(
    name: Annotated[str, typer.Argument(help="Unique repository name.")],
    path: Annotated[str, typer.Argument(help="Root directory holding the backup images.")],
    kind: Annotated[
        str, typer.Option("--kind", help="local, nfs or cifs (a share must be mounted).")
    ] = "local",
) -> None:
    """Add a backup repository."""
    _, db = _open()
    repo = catalog.add_repository(db, name, path, kind)
    source = f" from {repo.mount_source}" if repo.mount_source else ""
    typer.echo(f"added repository {repo.name} ({repo.kind}{source}): {repo.root_path}")


@repo_app.command("list")
def repo_list(json: JsonOpt = False) -> None:
    """List repositories and whether each can be read now."""
    _, db = _open()
    rows = []
    for repo in catalog.list_repositories(db):
        availability = catalog.check_availability(repo.kind, repo.root_path)
        row = asdict(repo)
        row["status"] = availability.status
        row["reason"] = availability.reason or None
        rows.append(row)
    if json:
        _print_json(rows)
    else:
        _print_table(rows, ["name", "kind", "root_path", "status", "reason"])


@app.command()
def scan(
    name: Annotated[
        str | None, typer.Argument(help="Repository to scan (default: every repository).")
    ] = None,
) -> None:
    """Register every disk image in a repository (QCOW2, or raw named *.raw/*.img)."""
    settings, db = _open()
    if name is None:
        reports = catalog.scan_all(db, settings.max_chain_depth, settings.image_metadata_budget)
    else:
        reports = [
            catalog.scan_repository(
                db, name, settings.max_chain_depth, settings.image_metadata_budget
            )
        ]
    failed = False
    for report in reports:
        typer.echo(
            f"{report.repository}: {len(report.added)} added, {len(report.updated)} known, "
            f"{len(report.errors)} refused"
        )
        for path, reason in report.errors:
            failed = True
            typer.echo(f"  {path or report.repository}: {reason}", err=True)
    if settings.index_on_register:
        from filerestore.index.jobs import enqueue_unindexed

        queued = enqueue_unindexed(db, requested_by="scan")
        if queued:
            typer.echo(f"queued {len(queued)} index job(s); see `filerestore index status`")
    if failed:
        raise typer.Exit(1)


@app.command()
def backups(
    repository: Annotated[
        str | None, typer.Option("--repository", help="Only this repository's backups.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """List registered backups with their status (available, missing, unavailable)."""
    _, db = _open()
    columns = [
        "id",
        "repository",
        "path",
        "vm_name",
        "disk_name",
        "kind",
        "parent_backup_id",
        "virtual_size",
        "created_at",
        "status",
    ]
    from filerestore.index.jobs import index_states

    rows = [{c: getattr(b, c) for c in columns} for b in catalog.list_backups(db, repository)]
    states = index_states(db, [r["id"] for r in rows])
    for r in rows:
        r["index"] = states[r["id"]].state
    columns.append("index")
    if json:
        _print_json(rows)
    else:
        _print_table(rows, columns)


@app.command()
def mounts(json: JsonOpt = False) -> None:
    """List restore sessions."""
    settings, db = _open()
    rows = [asdict(s) for s in SessionManager(db, settings).list()]
    if json:
        _print_json(rows)
    else:
        _print_table(
            rows,
            ["mount_id", "backup_id", "volume", "filesystem_type", "status", "owner", "expires_at"],
        )


@app.command()
def cleanup(
    expired: Annotated[
        bool, typer.Option("--expired", help="Remove expired and stuck sessions (the default).")
    ] = False,
    all_: Annotated[
        bool, typer.Option("--all", help="Emergency: remove every session, downloads or not.")
    ] = False,
) -> None:
    """Clean up sessions: reconcile what crashed processes left, then expired or all."""
    if expired and all_:
        raise typer.BadParameter("choose one of --expired and --all")
    settings, db = _open()
    manager = SessionManager(db, settings)
    removed = cleanups.reconcile(manager)
    if all_:
        removed += cleanups.clean_all(manager)
    else:
        removed += cleanups.clean_stuck(manager) + cleanups.expire(manager)
    typer.echo(f"removed {len(removed)} session(s)")
    for mount_id in removed:
        typer.echo(f"  {mount_id}")


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Migrate the database up to REVISION (default: the latest)."""
    _, db = _open(migrate=False)
    migrations.upgrade(db, revision)
    typer.echo(f"database at revision {migrations.current_revision(db)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision ('base': empty).")] = "-1",
) -> None:
    """Migrate the database down to REVISION (default: one step)."""
    _, db = _open(migrate=False)
    migrations.downgrade(db, revision)
    typer.echo(f"database at revision {migrations.current_revision(db) or 'base'}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision and the latest one."""
    _, db = _open(migrate=False)
    typer.echo(
        f"current {migrations.current_revision(db) or 'base'}, head {migrations.head_revision()}"
    )

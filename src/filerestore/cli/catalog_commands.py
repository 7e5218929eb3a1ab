"""Catalog, session and database commands: ``repo``, ``scan``, ``backups``, ``mounts``,
``cleanup`` and ``db``. Thin: each calls the catalog or restore layer and prints the result.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import typer

from filerestore import catalog
from filerestore.cli import json_output
from filerestore.cli.app import JsonOpt, app
from filerestore.db import Database, open_database
from filerestore.db import migrate as migrations
from filerestore.service import cleanup as cleanups
from filerestore.service.principal import Principal
from filerestore.service.sessions import SessionManager
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


@contextmanager
def _stores(settings: Settings) -> Iterator[catalog.Stores]:
    """The stores of this command's repositories, closed when it is done."""
    stores = catalog.Stores(settings)
    try:
        yield stores
    finally:
        stores.close()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    cells = [[str(_plain(r[c]) if r[c] is not None else "-") for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@repo_app.command("add")
def repo_add(
    name: Annotated[str, typer.Argument(help="Unique repository name.")],
    path: Annotated[
        str,
        typer.Argument(help="Root directory holding the backup images, or s3://BUCKET/PREFIX."),
    ],
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            help="local, nfs or cifs (a share must be mounted); s3 for an s3:// URL "
            "(the default for one).",
        ),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option("--endpoint", help="S3: the object store's URL (default: AWS S3)."),
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="S3: the bucket's region.")] = None,
    verify_tls: Annotated[
        bool,
        typer.Option(
            "--verify-tls/--no-verify-tls",
            help="S3: verify the endpoint's TLS certificate (off only for a test server).",
        ),
    ] = True,
    virtual_hosted: Annotated[
        bool,
        typer.Option(
            "--virtual-hosted",
            help="S3: bucket.endpoint/key requests instead of path style (endpoint/bucket/key).",
        ),
    ] = False,
) -> None:
    """Add a backup repository: a host directory, or keys under an S3 prefix.

    An S3 repository's credentials are this host's settings ([s3_credentials.NAME]) or the
    standard AWS environment variables; they are never stored in the catalog. The bucket
    must answer with them when the repository is added.
    """
    settings, db = _open()
    kind = kind or ("s3" if path.startswith("s3://") else "local")
    stores = catalog.Stores(settings)
    try:
        repo = catalog.add_repository(
            db,
            name,
            path,
            kind,
            endpoint=endpoint,
            region=region,
            path_style=not virtual_hosted,
            verify_tls=verify_tls,
            stores=stores,
        )
    finally:
        stores.close()
    source = f" from {repo.mount_source}" if repo.mount_source else ""
    source = f" at {repo.endpoint}" if repo.endpoint else source
    typer.echo(f"added repository {repo.name} ({repo.kind}{source}): {repo.root_path}")


@repo_app.command("list")
def repo_list(json: JsonOpt = False) -> None:
    """List repositories and whether each can be read now."""
    settings, db = _open()
    with _stores(settings) as stores:
        found = catalog.repositories_with_availability(db, stores)
    rows = [json_output.record(repo) | json_output.record(status) for repo, status in found]
    if json:
        json_output.print_array(rows)
    else:
        shown = [
            row | {"status": status.status} for row, (_, status) in zip(rows, found, strict=True)
        ]
        _print_table(shown, ["name", "kind", "root_path", "status", "reason"])


@app.command()
def scan(
    name: Annotated[
        str | None, typer.Argument(help="Repository to scan (default: every repository).")
    ] = None,
) -> None:
    """Register every disk image in a repository (QCOW2, or raw named *.raw/*.img)."""
    settings, db = _open()
    depth, budget = settings.max_chain_depth, settings.image_metadata_budget
    with _stores(settings) as stores:
        if name is None:
            reports = catalog.scan_all(db, depth, budget, stores)
        else:
            reports = [catalog.scan_repository(db, name, depth, budget, stores)]
    failed = False
    for report in reports:
        typer.echo(
            f"{report.repository}: {len(report.added)} added, {len(report.updated)} known, "
            f"{len(report.errors)} refused"
        )
        for path, reason in report.errors:
            failed = True
            typer.echo(f"  {path or report.repository}: {reason}", err=True)
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
    settings, db = _open()
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
    with _stores(settings) as stores:
        rows = [json_output.record(b) for b in catalog.list_backups(db, repository, stores)]
    if json:
        json_output.print_array(rows)
    else:
        _print_table(rows, columns)


@app.command()
def mounts(json: JsonOpt = False) -> None:
    """List restore sessions."""
    settings, db = _open()
    sessions = SessionManager(db, settings).list(Principal.operator())
    rows = [json_output.record(s) for s in sessions]
    if json:
        json_output.print_array(rows)
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

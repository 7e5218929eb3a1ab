"""Catalog, session and database commands: ``repo``, ``scan``, ``backups``, ``mounts``,
``cleanup`` and ``db``. Thin: each calls the catalog or service layer and prints the result.
The database stack is imported inside the commands, so ``--help`` does not load it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from filerestore.cli import json_output
from filerestore.cli.app import app, group, json_opt

if TYPE_CHECKING:
    from filerestore.catalog import Stores
    from filerestore.db import Database
    from filerestore.settings import Settings

T = TypeVar("T")

repo_app = group("repo", "Backup repositories: add, list, remove.")


def _open(migrate: bool = True) -> tuple[Settings, Database]:
    from filerestore import catalog
    from filerestore.db import open_database
    from filerestore.settings import load_settings

    settings = load_settings()
    db = open_database(settings, migrate=migrate)
    if migrate and settings.repositories:
        catalog.sync_configured(db, settings.repositories)
    return settings, db


@contextmanager
def _stores(settings: Settings) -> Iterator[Stores]:
    """The stores of this command's repositories, closed when it is done."""
    from filerestore import catalog

    stores = catalog.Stores(settings)
    try:
        yield stores
    finally:
        stores.close()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Rows under a header of the column names, in upper case (the header is printed for
    no rows too, so a script and a person both see what the columns are)."""
    cells = [[str(_plain(r[c]) if r[c] is not None else "-") for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def print_records(
    records: Sequence[T], json: bool, row: Callable[[T], dict[str, Any]], columns: list[str]
) -> None:
    """Records as a JSON array of their fields, or as a table of ``columns`` of what ``row``
    makes of each."""
    if json:
        json_output.print_array(json_output.record(r) for r in records)
        return
    print_table([row(r) for r in records], columns)


@repo_app.command("add")
@click.argument("name")
@click.argument("path")
@click.option(
    "--kind",
    default=None,
    help="local, nfs or cifs (a share must be mounted); s3 for an s3:// URL (the default "
    "for one).  [default: local]",
)
@click.option("--endpoint", default=None, help="S3: the object store's URL (default: AWS S3).")
@click.option("--region", default=None, help="S3: the bucket's region.")
@click.option(
    "--verify-tls/--no-verify-tls",
    default=True,
    show_default=True,
    help="S3: verify the endpoint's TLS certificate (off only for a test server).",
)
@click.option(
    "--virtual-hosted",
    is_flag=True,
    help="S3: bucket.endpoint/key requests instead of path style (endpoint/bucket/key).",
)
def repo_add(
    name: str,
    path: str,
    kind: str | None,
    endpoint: str | None,
    region: str | None,
    verify_tls: bool,
    virtual_hosted: bool,
) -> None:
    """Add a backup repository NAME: PATH is a host directory holding the backup images, or
    s3://BUCKET/PREFIX for keys under an S3 prefix.

    An S3 repository's credentials are this host's settings ([s3_credentials.NAME]) or the
    standard AWS environment variables; they are never stored in the catalog. The bucket
    must answer with them when the repository is added.
    """
    from filerestore import catalog

    settings, db = _open()
    kind = kind or ("s3" if path.startswith("s3://") else "local")
    with _stores(settings) as stores:
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
    source = f" from {repo.mount_source}" if repo.mount_source else ""
    source = f" at {repo.endpoint}" if repo.endpoint else source
    click.echo(f"added repository {repo.name} ({repo.kind}{source}): {repo.root_path}")


@repo_app.command("list")
@json_opt
def repo_list(json: bool) -> None:
    """List repositories and whether each can be read now."""
    from filerestore import catalog

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
        print_table(shown, ["name", "kind", "root_path", "status", "reason"])


@repo_app.command("remove")
@click.argument("name")
@click.option(
    "--force", is_flag=True, help="End the open sessions of its backups first (downloads too)."
)
def repo_remove(name: str, force: bool) -> None:
    """Remove repository NAME from the catalog, with its backups' rows.

    The image files are not touched: `repo add` and `scan` bring the backups back (with new
    ids). Refused while sessions of its backups are open, unless --force ends them.
    """
    from filerestore import catalog
    from filerestore.service import cleanup as cleanups
    from filerestore.service.sessions import SessionManager

    settings, db = _open()
    ended: list[str] = []
    if force:
        catalog.get_repository(db, name)  # a wrong name says so before anything ends
        ended = cleanups.end_repository_sessions(SessionManager(db, settings), name)
    removed = catalog.remove_repository(db, name)
    repo = removed.repository
    click.echo(
        f"removed repository {repo.name} ({repo.kind}): {removed.backups} backup(s) left the "
        f"catalog; the files under {repo.root_path} are untouched"
    )
    if ended:
        click.echo(f"ended {len(ended)} session(s) of its backups:")
        for mount_id in ended:
            click.echo(f"  {mount_id}")


@app.command()
@click.argument("name", required=False)
def scan(name: str | None) -> None:
    """Register every disk image in a repository.

    NAME is the repository (default: every one). Images are found by signature (QCOW2,
    VMDK, VHD, VHDX) or by name (raw *.raw, *.img); the layouts scan understands are in
    docs/repository-layouts.md.
    """
    from filerestore import catalog

    settings, db = _open()
    depth, budget = settings.max_chain_depth, settings.image_metadata_budget
    with _stores(settings) as stores:
        if name is None:
            reports = catalog.scan_all(db, depth, budget, stores)
        else:
            reports = [catalog.scan_repository(db, name, depth, budget, stores)]
    failed = False
    for report in reports:
        click.echo(
            f"{report.repository}: {len(report.added)} added, {len(report.updated)} known, "
            f"{len(report.errors)} refused"
        )
        for path, reason in report.errors:
            failed = True
            click.echo(f"  {path or report.repository}: {reason}", err=True)
    if settings.index_on_register:
        from filerestore.index.jobs import enqueue_unindexed

        queued = enqueue_unindexed(db, requested_by="scan")
        if queued:
            click.echo(f"queued {len(queued)} index job(s); see `filerestore index status`")
    if failed:
        raise click.exceptions.Exit(1)


@app.command()
@click.option("--repository", default=None, metavar="NAME", help="Only this repository's backups.")
@json_opt
def backups(repository: str | None, json: bool) -> None:
    """List registered backups and their status.

    The status: available, missing, unavailable, refused or unreadable.
    """
    from filerestore import catalog

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
    from filerestore.index.jobs import index_states

    with _stores(settings) as stores:
        rows = [json_output.record(b) for b in catalog.list_backups(db, repository, stores)]
    states = index_states(db, [r["id"] for r in rows])
    for r in rows:
        r["index"] = states[r["id"]].state
    columns.append("index")
    if json:
        json_output.print_array(rows)
    else:
        print_table(rows, columns)


@app.command()
@json_opt
def mounts(json: bool) -> None:
    """List restore sessions.

    The owner is the name of the API token that opened the session.
    """
    from filerestore.service.principal import Principal
    from filerestore.service.sessions import SessionManager

    settings, db = _open()
    sessions = SessionManager(db, settings).list(Principal.operator())
    rows = [json_output.record(s) for s in sessions]
    if json:
        json_output.print_array(rows)
    else:
        shown = [r | {"owner": r["owner_name"] or r["owner"] or None} for r in rows]
        print_table(
            shown,
            ["mount_id", "backup_id", "volume", "filesystem_type", "status", "owner", "expires_at"],
        )


@app.command()
@click.option("--expired", is_flag=True, help="Remove expired and stuck sessions (the default).")
@click.option("--all", "all_", is_flag=True, help="Emergency: remove every session, downloads too.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before --all (for scripts).")
def cleanup(expired: bool, all_: bool, yes: bool) -> None:
    """Remove expired and stuck sessions, or every one.

    What crashed processes left is reconciled first. --all asks first on a terminal;
    elsewhere it needs --yes.
    """
    from filerestore.service import cleanup as cleanups
    from filerestore.service.sessions import SessionManager

    if expired and all_:
        raise click.BadParameter("choose one of --expired and --all")
    settings, db = _open()
    manager = SessionManager(db, settings)
    if all_ and not yes:
        _confirm_all(manager.live_count())
    removed = cleanups.reconcile(manager)
    if all_:
        removed += cleanups.clean_all(manager)
    else:
        removed += cleanups.clean_stuck(manager) + cleanups.expire(manager)
    click.echo(f"removed {len(removed)} session(s)")
    for mount_id in removed:
        click.echo(f"  {mount_id}")


def _confirm_all(live: int) -> None:
    if not sys.stdin.isatty():
        raise click.UsageError(
            f"cleanup --all ends every session ({live} open) and cuts their downloads: "
            "confirm with --yes"
        )
    question = f"End every session ({live} open), cutting the downloads still running?"
    if not click.confirm(question, default=False, err=True):
        raise click.exceptions.Exit(1)


db_app = group("db", "Database schema: upgrade, downgrade, current.")


def _migration_command(direction: Literal["upgrade", "downgrade"], default: str, help: str) -> None:
    """``db upgrade`` or ``db downgrade``: migrate to REVISION, then print where it is."""

    @db_app.command(direction, help=help)
    @click.argument("revision", default=default)
    def migrate(revision: str) -> None:
        from filerestore.db import migrate as migrations

        _, db = _open(migrate=False)
        move = migrations.upgrade if direction == "upgrade" else migrations.downgrade
        move(db, revision)
        click.echo(f"database at revision {migrations.current_revision(db) or 'base'}")


_migration_command("upgrade", "head", "Migrate the database up to REVISION (default: the latest).")
_migration_command(
    "downgrade", "-1", "Migrate the database down to REVISION (default: one step; 'base': empty)."
)


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision and the latest one."""
    from filerestore.db import migrate as migrations

    _, db = _open(migrate=False)
    click.echo(
        f"current {migrations.current_revision(db) or 'base'}, head {migrations.head_revision()}"
    )

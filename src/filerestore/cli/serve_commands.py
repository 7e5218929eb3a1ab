"""``serve`` (the REST API and its cleanup worker) and ``token create|list|revoke``."""

from __future__ import annotations

import errno
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from filerestore.cli import json_output
from filerestore.cli.app import app, config_opt, group, json_opt

if TYPE_CHECKING:
    from filerestore.db import Database
    from filerestore.settings import Settings

token_app = group("token", "API tokens: create (shown once), list, revoke.")

CONFIG_ENV = "FILERESTORE_CONFIG"  # filerestore.settings.CONFIG_ENV (a test checks)
LOG_FORMATS = ("auto", "json", "text")


def _settings(config: Path | None) -> Settings:
    from filerestore.settings import load_settings

    if config is not None:
        os.environ[CONFIG_ENV] = str(config.expanduser().resolve())
    return load_settings()


def _database(settings: Settings) -> Database:
    from filerestore.db import open_database

    return open_database(settings)


def check_port(host: str, port: int) -> None:
    """PortInUseError when ``host:port`` cannot be listened on because something holds it,
    checked the way uvicorn binds (SO_REUSEADDR) before anything is prepared or printed."""
    from filerestore.errors import PortInUseError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {port} on {host} is in use by another program "
                    f"(a filerestore serve already running?): choose another with --port"
                ) from None
            raise


@app.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="TCP port to listen on.")
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes; a dead one is replaced.",
)
@config_opt
@click.option(
    "--demo",
    is_flag=True,
    help="Register the demo repository and print its admin token (kept in the state directory "
    "and reused by the next --demo run).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="Least severe log lines written.",
)
@click.option(
    "--log-format",
    default=None,
    type=click.Choice(LOG_FORMATS),
    help="json: one JSON object a line; text: for people; auto (default, or the log_format "
    "setting): text on a terminal, else JSON.",
)
def serve(
    host: str,
    port: int,
    workers: int,
    config: Path | None,
    demo: bool,
    log_level: str,
    log_format: str | None,
) -> None:
    """Run the REST API and the web page.

    The API is under /api/v1 (its docs at /docs), the page at /, with the cleanup worker, in
    WORKERS processes. Logs go to stderr in one format (see --log-format).
    """
    from filerestore import catalog, logs

    settings = _settings(config)
    check_port(host, port)
    chosen = logs.resolve_format(log_format or settings.log_format)
    os.environ[logs.FORMAT_ENV] = chosen  # the workers log as the supervisor does
    logs.configure(chosen, log_level)
    if demo:
        settings = _demo(settings, host, port)
    db = _database(settings)  # migrate once, before the workers start
    try:
        added = catalog.sync_configured(db, settings.repositories)
    finally:
        db.dispose()
    if added:
        logs.log.info("repositories added from the settings file: %s", ", ".join(added))
    with _shared_metrics(workers):
        _run(host, port, workers, log_level, logs.config_dict(chosen, log_level))


@contextmanager
def _shared_metrics(workers: int) -> Iterator[None]:
    """With several workers, an empty directory for Prometheus' multiprocess mode, so that
    /metrics sums them all (see filerestore.api.metrics), removed afterwards."""
    from filerestore.api.metrics import MULTIPROC_ENV

    if workers < 2 or os.environ.get(MULTIPROC_ENV):  # one process, or the operator's own
        yield
        return
    with tempfile.TemporaryDirectory(prefix="filerestore-metrics-") as directory:
        os.environ[MULTIPROC_ENV] = directory
        try:
            yield
        finally:
            del os.environ[MULTIPROC_ENV]


def _run(host: str, port: int, workers: int, log_level: str, log_config: dict[str, Any]) -> None:
    import uvicorn

    try:
        uvicorn.run(
            "filerestore.api.worker:worker_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            log_config=log_config,
            access_log=False,  # the application writes one line per request itself
            timeout_graceful_shutdown=10,
        )
    except SystemExit as exc:
        # uvicorn exits 3 when it cannot start (the port taken since the check above):
        # 3 is "not found" here, so say what happened in our terms
        if exc.code not in (0, None):
            check_port(host, port)
            raise click.ClickException("the server could not start (see the log above)") from None
        raise


def _demo(settings: Settings, host: str, port: int) -> Settings:
    from filerestore.api.demo import prepare_demo
    from filerestore.settings import load_settings

    if not os.environ.get("FILERESTORE_STATE_DIR") and settings.database_url is None:
        state = Path("~/.local/state/filerestore-demo").expanduser()
        os.environ["FILERESTORE_STATE_DIR"] = str(state)
        settings = load_settings()
    found = prepare_demo(settings)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host  # noqa: S104
    reused = " (reused: kept in the state directory)" if found.reused else ""
    click.echo(f"filerestore demo: http://{shown}:{port}/ (API docs: /docs)")
    click.echo(f"  state directory: {settings.state_dir}")
    click.echo(f"  demo repository: {found.repository} (backups {found.backup_ids})")
    click.echo(f"  admin token: {found.token}{reused}")
    click.echo(
        f"  try: curl -H 'Authorization: Bearer {found.token}' http://{shown}:{port}/api/v1/backups"
    )
    return settings


@token_app.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May see every session.")
@config_opt
@json_opt
def token_create(name: str, admin: bool, config: Path | None, json: bool) -> None:
    """Create a token named NAME and print it (it is stored hashed: shown this once)."""
    from filerestore.service.tokens import create_token

    db = _database(_settings(config))
    try:
        info, token = create_token(db, name, admin)
    finally:
        db.dispose()
    if json:
        json_output.print_document(json_output.record(info, token=token))
    else:
        click.echo(token)


@token_app.command("list")
@config_opt
@json_opt
def token_list(config: Path | None, json: bool) -> None:
    """List tokens (never their secrets)."""
    from filerestore.cli.catalog_commands import print_records
    from filerestore.service.tokens import TokenInfo, list_tokens

    db = _database(_settings(config))
    try:
        tokens = list_tokens(db)
    finally:
        db.dispose()

    def row(t: TokenInfo) -> dict[str, Any]:
        return {
            "id": t.id,
            "name": t.name,
            "role": "admin" if t.admin else "user",
            "state": f"revoked {t.revoked_at.isoformat()}" if t.revoked_at else "active",
            "created_at": t.created_at,
        }

    print_records(tokens, json, row, ["id", "name", "role", "state", "created_at"])


@token_app.command("revoke")
@click.argument("name")
@config_opt
def token_revoke(name: str, config: Path | None) -> None:
    """Revoke the token NAME: requests with it are refused from now on."""
    from filerestore.service.tokens import list_tokens, revoke_token

    db = _database(_settings(config))
    try:
        already = any(t.name == name and t.revoked_at for t in list_tokens(db))
        info = revoke_token(db, name)
    finally:
        db.dispose()
    when = f"{info.revoked_at:%Y-%m-%d %H:%M:%S} UTC" if info.revoked_at else "-"
    if already:
        click.echo(f"token {info.name!r} (id {info.id}) was already revoked at {when}")
    else:
        click.echo(f"revoked token {info.name!r} (id {info.id}): requests with it are refused")

"""``serve`` (the REST API and its cleanup worker) and ``token create|list|revoke``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from filerestore import catalog
from filerestore.cli import json_output
from filerestore.cli.app import JsonOpt, app
from filerestore.db import Database, open_database
from filerestore.settings import CONFIG_ENV, Settings, load_settings

token_app = typer.Typer(help="API tokens: create (shown once), list, revoke.", no_args_is_help=True)
app.add_typer(token_app, name="token")

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="Settings file (TOML); sets FILERESTORE_CONFIG.")
]


def _settings(config: Path | None) -> Settings:
    if config is not None:
        os.environ[CONFIG_ENV] = str(config.expanduser().resolve())
    return load_settings()


def _database(settings: Settings) -> Database:
    return open_database(settings)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8080,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes; a dead one is replaced.")
    ] = 2,
    config: ConfigOpt = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo", help="Register the demo repository, create an admin token and print it."
        ),
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the REST API (docs at /docs) with the cleanup worker, in WORKERS processes."""
    import uvicorn

    settings = _settings(config)
    if demo:
        from filerestore.api.demo import prepare_demo

        if not os.environ.get("FILERESTORE_STATE_DIR") and settings.database_url is None:
            state = Path("~/.local/state/filerestore-demo").expanduser()
            os.environ["FILERESTORE_STATE_DIR"] = str(state)
            settings = load_settings()
        found = prepare_demo(settings)
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host  # noqa: S104
        typer.echo(f"filerestore demo: http://{shown}:{port}/ (API docs: /docs)")
        typer.echo(f"  state directory: {settings.state_dir}")
        typer.echo(f"  demo repository: {found.repository} (backups {found.backup_ids})")
        typer.echo(f"  admin token: {found.token}")
        typer.echo(
            f"  try: curl -H 'Authorization: Bearer {found.token}' "
            f"http://{shown}:{port}/api/v1/backups"
        )
    db = _database(settings)  # migrate once, before the workers start
    try:
        added = catalog.sync_configured(db, settings.repositories)
    finally:
        db.dispose()
    if added:
        typer.echo(f"repositories added from the settings file: {', '.join(added)}")
    uvicorn.run(
        "filerestore.api.worker:worker_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        timeout_graceful_shutdown=10,
    )


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="A name for the token (unique).")],
    admin: Annotated[bool, typer.Option("--admin", help="May see every session.")] = False,
    config: ConfigOpt = None,
    json: JsonOpt = False,
) -> None:
    """Create a token and print it (it is stored hashed and cannot be shown again)."""
    from filerestore.service.tokens import create_token

    db = _database(_settings(config))
    try:
        info, token = create_token(db, name, admin)
    finally:
        db.dispose()
    if json:
        json_output.print_document(json_output.record(info, token=token))
    else:
        typer.echo(token)


@token_app.command("list")
def token_list(config: ConfigOpt = None, json: JsonOpt = False) -> None:
    """List tokens (never their secrets)."""
    from filerestore.service.tokens import list_tokens

    db = _database(_settings(config))
    try:
        tokens = list_tokens(db)
    finally:
        db.dispose()
    if json:
        json_output.print_array(json_output.record(t) for t in tokens)
        return
    for t in tokens:
        revoked = t.revoked_at.isoformat() if t.revoked_at else None
        state = f"revoked {revoked}" if revoked else "active"
        typer.echo(f"{t.id}\t{t.name}\t{'admin' if t.admin else 'user'}\t{state}")


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")], config: ConfigOpt = None
) -> None:
    """Revoke a token: requests with it are refused from now on."""
    from filerestore.service.tokens import revoke_token

    db = _database(_settings(config))
    try:
        revoke_token(db, name)
    finally:
        db.dispose()

"""The Typer application every command module registers its commands on.

Command modules import ``app`` from here and decorate their functions; ``main`` imports the
command modules (one line each) and runs the application.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="filerestore",
    help="Read files out of QCOW2 VM disk backups, read-only, without mounting them.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root() -> None:
    """Read files out of QCOW2 VM disk backups, read-only, without mounting them."""


# Arguments and options shared by the commands that open a backup image.
ImageArg = Annotated[
    Path, typer.Argument(help="The backup image (QCOW2 or raw), top of its backing chain.")
]
VolumeOpt = Annotated[
    str | None,
    typer.Option(
        "--volume",
        "-V",
        help="Volume id (p1, lvm/vg/lv, disk; see `inspect`). "
        "May be left out when only one volume holds a filesystem.",
    ),
]
RepositoryOpt = Annotated[
    Path | None,
    typer.Option(
        "--repository",
        help="Root directory that backing files must stay in (default: the image's directory).",
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="One JSON document: an object, or an array for a list.")
]
MetadataBudgetOpt = Annotated[
    int | None,
    typer.Option(
        "--metadata-budget",
        envvar="FILERESTORE_IMAGE_METADATA_BUDGET",
        min=1 << 20,
        help="Bytes of image tables the backing chain may keep in memory "
        "(the image_metadata_budget setting; default 64 MiB).",
    ),
]

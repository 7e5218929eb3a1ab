"""Generated reference documents: ``python -m filerestore.docgen [--check] [DOCS_DIR]``.

Writes into the docs directory (default: ``docs/`` of the checkout), each from the code it
describes:

- ``errors.md``: every error code with its HTTP status, CLI exit code and description, from
  :mod:`filerestore.errors` (:mod:`~filerestore.docgen.errors_doc`);
- ``settings.md``: every setting with its environment variable, type, default and
  description, from :mod:`filerestore.settings` (:mod:`~filerestore.docgen.settings_doc`);
- ``cli.md``: the ``--help`` of every command of the ``filerestore`` CLI
  (:mod:`~filerestore.docgen.cli_doc`);
- ``metrics.md``: every metric of ``/metrics`` with its type, labels and meaning, from
  :mod:`filerestore.api.metrics` (:mod:`~filerestore.docgen.metrics_doc`).

With ``--check`` nothing is written: the exit status says whether the committed files are
current (a test runs this check).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from filerestore.docgen.cli_doc import cli_markdown
from filerestore.docgen.errors_doc import errors_markdown
from filerestore.docgen.metrics_doc import metrics_markdown
from filerestore.docgen.settings_doc import settings_markdown

CHECKOUT_DOCS = Path(__file__).resolve().parents[3] / "docs"

#: file name -> generator
DOCUMENTS: dict[str, Callable[[], str]] = {
    "errors.md": errors_markdown,
    "metrics.md": metrics_markdown,
    "settings.md": settings_markdown,
    "cli.md": cli_markdown,
}


def stale(docs: Path) -> list[str]:
    """The generated documents under ``docs`` that differ from what the code generates."""
    out = []
    for name, make in DOCUMENTS.items():
        path = docs / name
        if not path.is_file() or path.read_text(encoding="utf-8") != make():
            out.append(name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m filerestore.docgen", description=__doc__)
    parser.add_argument("docs", nargs="?", type=Path, default=CHECKOUT_DOCS)
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    docs: Path = args.docs
    if args.check:
        outdated = stale(docs)
        for name in outdated:
            print(f"{docs / name} is out of date: run scripts/gen_docs", file=sys.stderr)
        return 1 if outdated else 0
    docs.mkdir(parents=True, exist_ok=True)
    for name, make in DOCUMENTS.items():
        (docs / name).write_text(make(), encoding="utf-8")
    return 0


__all__ = ["CHECKOUT_DOCS", "DOCUMENTS", "main", "stale"]

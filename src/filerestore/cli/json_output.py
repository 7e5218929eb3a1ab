"""The CLI's one JSON style, for every ``--json``.

A command prints ONE JSON document: an object for one thing (``inspect``, ``stat``,
``token create``), an array for a list (``ls``, ``repo list``, ``backups``, ``mounts``,
``token list``), even of one or no element. It is indented by two spaces, with the fields
in the order of the core's record and named as the API names them (see
:mod:`filerestore.api.schemas`). Times of entries are integers in nanoseconds; other times
are ISO 8601 strings. A long array (``ls -R``) is written element by element, never held
in memory whole.

Text is ASCII-only JSON: a guest name's bytes that are not UTF-8 come out as ``\\udcXX``
escapes, which ``json.loads`` turns back into the same surrogate-escaped string the
filesystem layer accepts as a path, so a name from ``ls --json`` can be given back to
``cat`` or ``get``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from enum import Enum
from typing import Any

INDENT = 2


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return record(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def record(value: object, **extra: Any) -> dict[str, Any]:
    """A record's fields by name (shallow), plus ``extra``."""
    fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}  # type: ignore[arg-type]
    return fields | extra


def document(data: Any) -> str:
    import json  # only for --json: not on the plain listing's start-up path

    return json.dumps(data, ensure_ascii=True, indent=INDENT, default=_plain)


def array(items: Iterable[Any]) -> Iterator[str]:
    """The lines of ``document(list(items))``, produced one element at a time."""
    first = True
    for item in items:
        body = document(item).replace("\n", "\n" + " " * INDENT)
        yield ("[\n" if first else ",\n") + " " * INDENT + body
        first = False
    yield "[]" if first else "\n]"


def print_document(data: Any) -> None:
    sys.stdout.write(document(data) + "\n")


def print_array(items: Iterable[Any]) -> None:
    for text in array(items):
        sys.stdout.write(text)
    sys.stdout.write("\n")

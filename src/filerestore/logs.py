"""The service's one log format: every line from filerestore, uvicorn and Alembic, on stderr.

``json``: one JSON object a line (``time``, ``level``, ``logger``, ``message`` and the
record's structured fields), what a log collector wants. ``text``: the same record for a
person (``time level logger message key=value ...``). ``auto`` picks text when stderr (where
the lines go) is a terminal and JSON otherwise; ``serve`` resolves it once and hands the
choice to its workers in ``FILERESTORE_LOG_FORMAT``, so every process writes the same format.

Structured fields travel in ``extra={"fields": {...}}`` (the access log's method, route,
status; an audit event's actor, action, outcome ...). Alembic's per-migration INFO lines
("Context impl SQLiteImpl", "Will assume transactional DDL") are below the threshold: a
worker that finds the schema current says nothing, one that migrates says so once at INFO
through filerestore's own logger.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from datetime import UTC, datetime
from typing import Any, Literal

FORMAT_ENV = "FILERESTORE_LOG_FORMAT"
Format = Literal["json", "text"]

log = logging.getLogger("filerestore.serve")

# LogRecord attributes that are not fields of the event itself
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


def resolve_format(choice: str, stream: Any = None) -> Format:
    """``json`` or ``text`` for a setting of ``auto``, ``json`` or ``text``."""
    if choice in ("json", "text"):
        return choice  # type: ignore[return-value]
    out = stream if stream is not None else sys.stderr
    return "text" if getattr(out, "isatty", lambda: False)() else "json"


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The record's structured fields: ``extra={"fields": {...}}`` and any other extras."""
    found: dict[str, Any] = {}
    for key, value in vars(record).items():
        if key == "fields" and isinstance(value, dict):
            found.update(value)
        elif key not in _STANDARD and not key.startswith("_"):
            found[key] = value
    return found


class StructuredFormatter(logging.Formatter):
    """One line per record, as JSON or as text (see the module docstring)."""

    def __init__(self, format: Format = "json") -> None:
        super().__init__()
        self.json = format == "json"

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        message = record.getMessage()
        fields = fields_of(record)
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        if self.json:
            line = {
                "time": moment.isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": message,
                "pid": record.process,
                **fields,
            }
            return json.dumps(line, ensure_ascii=False, default=str)
        extra = " ".join(f"{k}={_text_value(v)}" for k, v in fields.items() if k != "exception")
        text = f"{moment:%Y-%m-%d %H:%M:%S} {record.levelname:<7} {record.name}: {message}"
        text += f" {extra}" if extra else ""
        if "exception" in fields:
            text += "\n" + str(fields["exception"])
        return text


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text


def config_dict(fmt: Format, level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dictionary (uvicorn's ``log_config``)."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": StructuredFormatter, "format": fmt}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "structured",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # uvicorn's own handlers would write its text format: its lines go to the root's
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": True},
            "alembic": {"handlers": [], "level": "WARNING", "propagate": True},
            # the audit trail is written whatever the level (--log-level warning keeps it)
            "filerestore.audit": {"handlers": [], "level": "INFO", "propagate": True},
        },
    }


def configure(fmt: Format, level: str = "info") -> None:
    """Route this process's logging through the one format."""
    logging.config.dictConfig(config_dict(fmt, level))

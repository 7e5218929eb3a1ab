"""The audit trail's one writer: every event is an ``audit_events`` row and one JSON line on
the ``filerestore.audit`` logger.

Events that belong to a change of state (a mount, an unmount, a cleanup, a download's end)
are added to the transaction that makes the change (:func:`add`), so the row exists exactly
when the change does; their log line is written when that transaction commits. Events of
their own (a refused request, a refused token) use :func:`record`, whose database errors
are logged and swallowed (the line is still written): recording must never turn a served
request into a failed one.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session as DbSession

from filerestore.db.engine import Database
from filerestore.db.models import AuditEvent
from filerestore.errors import FileRestoreError

log = logging.getLogger("filerestore.audit")

_PENDING = "filerestore.audit.pending"  # key in DbSession.info: lines to log on commit


@dataclass(frozen=True, slots=True)
class Event:
    actor: str
    action: str
    outcome: str
    backup_id: int | None = None
    mount_id: str | None = None
    path: str | None = None
    bytes: int | None = None
    detail: str | None = None


def _text(value: str | None) -> str | None:
    """Guest names may carry surrogate escapes: stored and logged as ``\\xNN``."""
    if value is None:
        return None
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _row(event: Event, now: datetime) -> AuditEvent:
    return AuditEvent(
        time=now,
        actor=event.actor[:255],
        action=event.action[:64],
        outcome=event.outcome[:32],
        backup_id=event.backup_id,
        mount_id=event.mount_id,
        path=_text(event.path),
        bytes=event.bytes,
        detail=_text(event.detail),
    )


def _log(event: Event, now: datetime) -> None:
    line = {"event_time": now.isoformat(), **asdict(event)}
    line["path"], line["detail"] = _text(event.path), _text(event.detail)
    # the fields travel as the record's own (filerestore.logs writes them in its one format)
    log.info("%s %s by %s", event.action, event.outcome, event.actor, extra={"fields": line})


def _log_pending(session: DbSession) -> None:
    for event, now in session.info.pop(_PENDING, []):
        _log(event, now)


def add(session: DbSession, event: Event) -> None:
    """Add ``event`` to the caller's transaction; its log line follows the commit."""
    now = datetime.now(UTC)
    session.add(_row(event, now))
    pending = session.info.setdefault(_PENDING, [])
    if not pending:
        sa_event.listen(session, "after_commit", _log_pending, once=True)
    pending.append((event, now))


def record(db: Database, event: Event) -> None:
    """Write ``event`` in a transaction of its own (see the module docstring)."""
    try:
        with db.write() as session:
            add(session, event)
    except FileRestoreError:
        log.exception("could not record audit event %s/%s", event.action, event.outcome)
        _log(event, datetime.now(UTC))

"""The audit trail's one writer: every event is an ``audit_events`` row and one JSON line on
the ``filerestore.audit`` logger.

Events that belong to a change of state (a mount, an unmount, a cleanup) are added to the
transaction that makes the change (:meth:`AuditLog.add`), so the row exists exactly when
the change does; their log line is written when that transaction commits. A download's row
is written before its first byte, in the transaction that checks the session out
(:meth:`AuditLog.begin`, outcome ``started``), and completed when it ends
(:meth:`AuditLog.finish`): a download whose row cannot be written is not served.
Events of their own (a refused request) use :meth:`AuditLog.record`, whose database errors
are logged as one line and swallowed (the event's line is still written): recording must
never turn a served request into a failed one.

No request can make a row large: paths and details are cut at ``audit_text_limit``
characters. Requests without a valid token write no row at all (see
:mod:`~filerestore.service.refusals`), and rows older than ``audit_retention_days`` are
deleted by the cleanup worker.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import event as sa_event
from sqlalchemy import update
from sqlalchemy.orm import Session as DbSession

from filerestore.db.engine import Database
from filerestore.db.models import AuditEvent
from filerestore.errors import FileRestoreError

log = logging.getLogger("filerestore.audit")

_PENDING = "filerestore.audit.pending"  # key in DbSession.info: lines to log on commit
DEFAULT_TEXT_LIMIT = 1024  # the audit_text_limit setting's default
STARTED = "started"  # a download's outcome until it ends


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


def cap_text(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters, saying how many were left out."""
    if len(value) <= limit:
        return value
    return f"{value[:limit]}...[{len(value) - limit} more characters]"


def stored_text(value: str, limit: int) -> str:
    """``value`` as a row and a log line keep it: guest names' surrogate escapes as
    ``\\xNN`` (any other lone surrogate escaped too), cut at ``limit`` characters."""
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "backslashreplace")
    return cap_text(raw.decode("utf-8", "backslashreplace"), limit)


def _text(value: str | None, limit: int) -> str | None:
    return None if value is None else stored_text(value, limit)


def _capped(event: Event, limit: int) -> Event:
    return replace(
        event,
        actor=event.actor[:255],
        action=event.action[:64],
        outcome=event.outcome[:32],
        path=_text(event.path, limit),
        detail=_text(event.detail, limit),
    )


def _row(event: Event, now: datetime) -> AuditEvent:
    return AuditEvent(time=now, **asdict(event))


def _log(event: Event, now: datetime) -> None:
    line = {"event_time": now.isoformat(), **asdict(event)}
    # the fields travel as the record's own (filerestore.logs writes them in its one format)
    log.info("%s %s by %s", event.action, event.outcome, event.actor, extra={"fields": line})


def _log_pending(session: DbSession) -> None:
    for event, now in session.info.pop(_PENDING, []):
        _log(event, now)


def _log_on_commit(session: DbSession, event: Event, now: datetime) -> None:
    pending = session.info.setdefault(_PENDING, [])
    if not pending:
        sa_event.listen(session, "after_commit", _log_pending, once=True)
    pending.append((event, now))


def add(session: DbSession, event: Event, text_limit: int = DEFAULT_TEXT_LIMIT) -> None:
    """Add ``event`` to the caller's transaction; its log line follows the commit."""
    now = datetime.now(UTC)
    event = _capped(event, text_limit)
    session.add(_row(event, now))
    _log_on_commit(session, event, now)


def record(db: Database, event: Event, text_limit: int = DEFAULT_TEXT_LIMIT) -> None:
    """Write ``event`` in a transaction of its own (see the module docstring)."""
    try:
        with db.write() as session:
            add(session, event, text_limit)
    except FileRestoreError as exc:
        # a handled failure (the database away or full): one line, and the event's line
        log.warning("could not record audit event %s/%s: %s", event.action, event.outcome, exc)
        _log(_capped(event, text_limit), datetime.now(UTC))


class AuditLog:
    """The audit trail of one database, with the settings' limits."""

    def __init__(self, db: Database, text_limit: int = DEFAULT_TEXT_LIMIT) -> None:
        self.db = db
        self.text_limit = text_limit

    def add(self, session: DbSession, event: Event) -> None:
        add(session, event, self.text_limit)

    def record(self, event: Event) -> None:
        record(self.db, event, self.text_limit)

    def log_only(self, event: Event) -> None:
        """The event's log line without a row (an event whose row could not be written)."""
        _log(_capped(event, self.text_limit), datetime.now(UTC))

    def begin(self, session: DbSession, event: Event) -> int:
        """Insert ``event`` as ``started`` in the caller's transaction (no log line yet);
        the row's id, for :meth:`finish`."""
        row = _row(_capped(replace(event, outcome=STARTED), self.text_limit), datetime.now(UTC))
        session.add(row)
        session.flush()
        return row.id

    def finish(self, session: DbSession, row_id: int, event: Event) -> None:
        """Complete the row :meth:`begin` wrote with ``event``'s outcome, bytes and detail,
        in the caller's transaction; the event's log line follows the commit."""
        event = _capped(event, self.text_limit)
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.id == row_id)
            .values(outcome=event.outcome, bytes=event.bytes, detail=event.detail)
        )
        _log_on_commit(session, event, datetime.now(UTC))

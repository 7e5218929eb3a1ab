"""Database failures injected into a real database: statements it refuses as a full or
failing disk would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from filerestore.db import Database


@contextmanager
def statements_fail(db: Database, prefix: str, error: str) -> Iterator[None]:
    """The database refuses every statement that starts with ``prefix`` (SQL, upper case)
    while inside, with an OperationalError saying ``error``, as a full or failing disk does."""

    def refuse(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(prefix):
            raise OperationalError(statement, None, Exception(error))

    event.listen(db.engine, "before_cursor_execute", refuse)
    try:
        yield
    finally:
        event.remove(db.engine, "before_cursor_execute", refuse)

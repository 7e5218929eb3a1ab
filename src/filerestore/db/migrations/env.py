"""Alembic environment: always run on a connection handed over by filerestore.db.migrate."""

from __future__ import annotations

from alembic import context

from filerestore.db import models_auth, models_jobs  # noqa: F401 - their tables are in the metadata too
from filerestore.db.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things: batch mode recreates the table instead
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

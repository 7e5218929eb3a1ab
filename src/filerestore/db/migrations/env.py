"""Alembic environment: always run on a connection handed over by filerestore.db.migrate."""

from __future__ import annotations

from alembic import context

from filerestore.db import (  # noqa: F401 - their tables are in the metadata too
    models_auth,
    models_index,
    models_jobs,
)
from filerestore.db.models import Base
from filerestore.db.models_index import include_object_for

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things: batch mode recreates the table instead
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_object=include_object_for(connection.dialect.name),
)
with context.begin_transaction():
    context.run_migrations()

"""Database fixtures (SQLite and PostgreSQL) for these tests: see tests/dbfixtures.py."""

from tests.dbfixtures import database_url, db, make_settings, pg_server_url, settings  # noqa: F401

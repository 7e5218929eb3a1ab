"""Fixtures every service test uses: the databases (SQLite and PostgreSQL, see
tests/dbfixtures.py) and the backups of a scanned repository (sessionsetup.py)."""

from tests.dbfixtures import database_url, db, make_settings, pg_server_url, settings  # noqa: F401
from tests.service.sessionsetup import backups  # noqa: F401

"""The name search's statement is planned for its values on PostgreSQL, never prepared.

psycopg prepares a statement on the server after its fifth run on a connection, and
PostgreSQL then switches to a generic plan, which for ``name ILIKE $1 ... ORDER BY id LIMIT``
walked all the names in id order (60-100 ms over 110,000 names, bench/index_scale.py)
instead of using the trigram index (3 ms). What the server prepared is read from its own
``pg_prepared_statements``.
"""

from __future__ import annotations

from filerestore.db import Database
from filerestore.index.store import IndexStore

NAMES = "SELECT id FROM index_names WHERE name {op} ? AND id > ? ORDER BY id LIMIT ?"


def _prepared(store: IndexStore) -> list[str]:
    rows = store.query("SELECT statement FROM pg_prepared_statements")
    return [r[0] for r in rows if "index_names" in r[0]]


def test_a_custom_plan_statement_is_never_prepared(db: Database) -> None:
    with db.write() as s:
        store = IndexStore(s)
        store.execute("INSERT INTO index_names (id, name) VALUES (1, 'report-1.txt')")
        store.execute("INSERT INTO index_names (id, name) VALUES (2, 'notes.txt')")
        names = NAMES.format(op="ILIKE" if store.dialect == "postgresql" else "LIKE")
        for _ in range(8):
            rows = store.query(names, ("%report%", 0, 10), custom_plan=True)
            assert rows == [(1,)]
        if store.dialect != "postgresql":
            return
        assert _prepared(store) == []
        # the control: the same statement run as usual is prepared by then
        for _ in range(8):
            assert store.query(names, ("%notes%", 0, 10)) == [(2,)]
        assert len(_prepared(store)) == 1

"""The full-text twin of a table's ``body`` column, for migrations: FTS5 kept in step by triggers on SQLite,
a generated tsvector column with a GIN index on PostgreSQL."""

from __future__ import annotations

from alembic import op


def _triggers(table: str) -> tuple[str, str, str]:
    return f"{table}_ai", f"{table}_ad", f"{table}_au"


def create_full_text(table: str, fts: str) -> None:
    """Index ``table.body`` (SQLite: the virtual table ``fts`` over the table's rowid)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('english', body)) STORED"
        )
        op.execute(f"CREATE INDEX ix_{table}_tsv ON {table} USING GIN (tsv)")
        return
    inserted, deleted, updated = _triggers(table)
    op.execute(
        f"CREATE VIRTUAL TABLE {fts} USING fts5(body, content='{table}', content_rowid='rowid', "
        "tokenize='porter unicode61')"
    )
    op.execute(
        f"CREATE TRIGGER {inserted} AFTER INSERT ON {table} BEGIN "
        f"INSERT INTO {fts}(rowid, body) VALUES (new.rowid, new.body); END"
    )
    op.execute(
        f"CREATE TRIGGER {deleted} AFTER DELETE ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, body) VALUES ('delete', old.rowid, old.body); END"
    )
    op.execute(
        f"CREATE TRIGGER {updated} AFTER UPDATE ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, body) VALUES ('delete', old.rowid, old.body); "
        f"INSERT INTO {fts}(rowid, body) VALUES (new.rowid, new.body); END"
    )


def drop_full_text(table: str, fts: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        return  # the tsvector column and its index go with the table
    for trigger in _triggers(table):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute(f"DROP TABLE IF EXISTS {fts}")

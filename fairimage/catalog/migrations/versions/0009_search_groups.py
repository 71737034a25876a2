"""Search groups: the text an image's study and component give it is kept once per group of images that
share it (and their facet signature), with the group's size, so a query matches and counts groups rather
than millions of image rows; each image's document keeps only its own words (names, its annotations).

The index is rebuilt from the catalog: the old documents are dropped here and the repository reindexes
every image when it opens after this upgrade.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TRIGGERS = {
    "search_documents": ("search_fts", "search_documents_ai", "search_documents_ad", "search_documents_au"),
    "search_groups": ("search_group_fts", "search_groups_ai", "search_groups_ad", "search_groups_au"),
}


def _full_text(table: str) -> None:
    """FTS5 over ``table.body`` kept in step by triggers (SQLite); a generated tsvector and GIN index on
    PostgreSQL."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('english', body)) STORED"
        )
        op.execute(f"CREATE INDEX ix_{table}_tsv ON {table} USING GIN (tsv)")
        return
    fts, inserted, deleted, updated = _TRIGGERS[table]
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


def _drop_full_text(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        return  # the tsvector column and its index go with the table
    fts, *triggers = _TRIGGERS[table]
    for trigger in triggers:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute(f"DROP TABLE IF EXISTS {fts}")


def upgrade() -> None:
    _drop_full_text("search_documents")
    op.drop_table("search_documents")
    op.execute("DELETE FROM search_signatures")
    op.create_table(
        "search_groups",
        sa.Column("group_key", sa.String(32), primary_key=True),
        sa.Column("study_id", sa.String(40), sa.ForeignKey("studies.id"), nullable=False, index=True),
        sa.Column("signature", sa.String(32), nullable=False, index=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("images", sa.Integer, nullable=False),
    )
    _full_text("search_groups")
    op.create_table(
        "search_documents",
        sa.Column("image_id", sa.String(40), sa.ForeignKey("images.id"), primary_key=True),
        sa.Column("study_id", sa.String(40), sa.ForeignKey("studies.id"), nullable=False, index=True),
        sa.Column("signature", sa.String(32), nullable=False, index=True),
        sa.Column("group_key", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_search_documents_group", "search_documents", ["group_key", "image_id"])
    _full_text("search_documents")


def downgrade() -> None:
    for table in ("search_documents", "search_groups"):
        _drop_full_text(table)
        op.drop_table(table)
    op.execute("DELETE FROM search_signatures")
    op.create_table(
        "search_documents",
        sa.Column("image_id", sa.String(40), sa.ForeignKey("images.id"), primary_key=True),
        sa.Column("study_id", sa.String(40), sa.ForeignKey("studies.id"), nullable=False, index=True),
        sa.Column("signature", sa.String(32), nullable=False, index=True),
        sa.Column("body", sa.Text, nullable=False),
    )
    _full_text("search_documents")

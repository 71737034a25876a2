"""The search index: one document per image (its text, ranked by full-text search: FTS5 on SQLite, a
generated tsvector with a GIN index on PostgreSQL) and its facet signature: images with the same facet
values share one signature, whose values are stored once, so facet counts group a few signatures rather
than millions of rows.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_documents",
        sa.Column("image_id", sa.String(40), sa.ForeignKey("images.id"), primary_key=True),
        sa.Column("study_id", sa.String(40), sa.ForeignKey("studies.id"), nullable=False, index=True),
        sa.Column("signature", sa.String(32), nullable=False, index=True),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "search_signatures",
        sa.Column("signature", sa.String(32), primary_key=True),
        sa.Column("facet", sa.String(40), primary_key=True),
        sa.Column("value", sa.String(255), primary_key=True),
        sa.Column("direct", sa.Boolean, nullable=False),
    )
    op.create_index("ix_search_signatures_value", "search_signatures", ["facet", "value", "signature"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE search_documents ADD COLUMN tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('english', body)) STORED"
        )
        op.execute("CREATE INDEX ix_search_documents_tsv ON search_documents USING GIN (tsv)")
        return
    op.execute(
        "CREATE VIRTUAL TABLE search_fts USING fts5(body, content='search_documents', "
        "content_rowid='rowid', tokenize='porter unicode61')"
    )
    op.execute(
        "CREATE TRIGGER search_documents_ai AFTER INSERT ON search_documents BEGIN "
        "INSERT INTO search_fts(rowid, body) VALUES (new.rowid, new.body); END"
    )
    op.execute(
        "CREATE TRIGGER search_documents_ad AFTER DELETE ON search_documents BEGIN "
        "INSERT INTO search_fts(search_fts, rowid, body) VALUES ('delete', old.rowid, old.body); END"
    )
    op.execute(
        "CREATE TRIGGER search_documents_au AFTER UPDATE ON search_documents BEGIN "
        "INSERT INTO search_fts(search_fts, rowid, body) VALUES ('delete', old.rowid, old.body); "
        "INSERT INTO search_fts(rowid, body) VALUES (new.rowid, new.body); END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for trigger in ("search_documents_ai", "search_documents_ad", "search_documents_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_table("search_signatures")
    op.drop_table("search_documents")

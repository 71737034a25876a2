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

from fairimage.catalog.fulltext import create_full_text, drop_full_text

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_FTS = {"search_documents": "search_fts", "search_groups": "search_group_fts"}


def _full_text(table: str) -> None:
    create_full_text(table, _FTS[table])


def _drop_full_text(table: str) -> None:
    drop_full_text(table, _FTS[table])


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

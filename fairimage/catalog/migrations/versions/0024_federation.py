"""Federation: the peers a node harvests (their pinned signing keys and where harvesting got to) and what
was harvested from them, kept apart from the node's own studies: studies, their search groups (with a
full-text twin) and the groups' facet values.

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op

from fairimage.catalog.fulltext import create_full_text, drop_full_text

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "peers",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("url", sa.String(1024), nullable=False, unique=True),
        sa.Column("public_key", sa.String(64), nullable=False, unique=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(255), nullable=False),
        sa.Column("cursor", sa.String(64), nullable=False, server_default=""),
        sa.Column("harvested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "harvested_studies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("peer", sa.String(64), sa.ForeignKey("peers.name"), nullable=False, index=True),
        sa.Column("pid", sa.String(1024), nullable=False, unique=True),
        sa.Column("pid_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("origin_id", sa.String(40), nullable=False),
        sa.Column("access", sa.String(20), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("images", sa.Integer, nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
        sa.Column("stamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("harvested_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "harvested_groups",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "study_id",
            sa.Integer,
            sa.ForeignKey("harvested_studies.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("images", sa.Integer, nullable=False),
    )
    create_full_text("harvested_groups", "harvested_group_fts")
    op.create_table(
        "harvested_facets",
        sa.Column(
            "group_id",
            sa.Integer,
            sa.ForeignKey("harvested_groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("facet", sa.String(40), primary_key=True, index=True),
        sa.Column("value", sa.String(255), primary_key=True, index=True),
        sa.Column("direct", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("harvested_facets")
    drop_full_text("harvested_groups", "harvested_group_fts")
    op.drop_table("harvested_groups")
    op.drop_table("harvested_studies")
    op.drop_table("peers")

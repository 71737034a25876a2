"""Datasets for machine learning: immutable, numbered versions of a list of images (with a label each, where
asked), each in a split (train/validation/test) chosen so that no group (plate, well, patient, ...) is on two
sides.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("studies", sa.JSON, nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("excluded", sa.JSON, nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_datasets_name_version"),
    )
    op.create_table(
        "dataset_items",
        sa.Column("dataset_id", sa.String(40), sa.ForeignKey("datasets.id"), primary_key=True),
        sa.Column("image_id", sa.String(40), sa.ForeignKey("images.id"), primary_key=True),
        sa.Column("label_id", sa.String(40), sa.ForeignKey("labels.id"), nullable=True),
        sa.Column("split", sa.String(16), nullable=False),
        sa.Column("group_key", sa.String(255), nullable=False),
        sa.Column("stratum", sa.String(255), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=True),
        sa.Column("ai_generated", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_table("dataset_items")
    op.drop_table("datasets")

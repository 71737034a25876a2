"""High-content screening plates: a plate's geometry, acquisitions and channels, the wells with what the
platemap says was done to each, and for an image that is a field of a plate, its plate, well and field.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plates",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("study_id", sa.String(40), sa.ForeignKey("studies.id"), nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("rows", sa.JSON, nullable=False),
        sa.Column("columns", sa.JSON, nullable=False),
        sa.Column("acquisitions", sa.JSON, nullable=False),
        sa.Column("channels", sa.JSON, nullable=False),
        sa.Column("field_count", sa.Integer, nullable=False),
        sa.Column("source", sa.JSON, nullable=False),
        sa.Column("missing", sa.JSON, nullable=False),
        sa.Column("storage_key", sa.String(255), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("ingest_runs.id"), nullable=True, index=True),
    )
    op.create_table(
        "wells",
        sa.Column("plate_id", sa.String(40), sa.ForeignKey("plates.id"), primary_key=True),
        sa.Column("row", sa.String(4), primary_key=True),
        sa.Column("column", sa.String(4), primary_key=True),
        sa.Column("compound", sa.String(255), nullable=True, index=True),
        sa.Column("concentration", sa.Float, nullable=True),
        sa.Column("concentration_unit", sa.String(20), nullable=True),
        sa.Column("control", sa.String(20), nullable=True, index=True),
        sa.Column("replicate", sa.Integer, nullable=True),
        sa.Column("extra", sa.JSON, nullable=True),
    )
    # Plain ALTER TABLE ... ADD COLUMN on both engines: a batch copy of "images" would trip over the
    # foreign keys that point at it, and SQLite cannot add a constraint to a table in place, so plate_id is
    # an indexed column that ingest fills from the plates it publishes in the same transaction.
    op.add_column("images", sa.Column("plate_id", sa.String(40), nullable=True))
    op.add_column("images", sa.Column("well_row", sa.String(4), nullable=True))
    op.add_column("images", sa.Column("well_column", sa.String(4), nullable=True))
    op.add_column("images", sa.Column("field", sa.Integer, nullable=True))
    op.create_index("ix_images_plate_id", "images", ["plate_id"])


def downgrade() -> None:
    op.drop_index("ix_images_plate_id", "images")
    for column in ("field", "well_column", "well_row", "plate_id"):
        op.drop_column("images", column)
    op.drop_table("wells")
    op.drop_table("plates")

"""Label images (segmentation masks, instance labels) of images, stored as OME-NGFF labels; each records who
or what made it: a person (an annotator) or a model (AI-generated).

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("image_id", sa.String(40), sa.ForeignKey("images.id"), nullable=False, index=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("made_by_kind", sa.String(16), nullable=False),
        sa.Column("made_by", sa.String(255), nullable=False),
        sa.Column("added_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("source_name", sa.String(1024), nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("dtype", sa.String(20), nullable=False),
        sa.Column("axes", sa.JSON, nullable=False),
        sa.Column("shape", sa.JSON, nullable=False),
        sa.Column("levels", sa.JSON, nullable=False),
        sa.Column("label_values", sa.JSON, nullable=False),
        sa.Column("image_label", sa.JSON, nullable=False),
        sa.Column("storage_key", sa.String(255), nullable=False),
        sa.Column("manifest_key", sa.String(255), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger, nullable=False),
        sa.Column("object_count", sa.Integer, nullable=False),
        sa.UniqueConstraint("image_id", "name", name="uq_labels_image_name"),
    )


def downgrade() -> None:
    op.drop_table("labels")

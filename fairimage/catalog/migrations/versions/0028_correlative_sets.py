"""Correlative sets: images of one sample from different modalities registered into one reference image's
space, each member with its affine (a matrix given, or fitted to landmarks with its residual).

Revision ID: 0028
Revises: 0027
"""

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "correlative_sets",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("study_id", sa.String(40), sa.ForeignKey("studies.id"), nullable=False, index=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("reference_image_id", sa.String(40), sa.ForeignKey("images.id"), nullable=False),
        sa.Column("reference_modality", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("study_id", "name", name="uq_correlative_sets_study_name"),
    )
    op.create_table(
        "correlative_members",
        sa.Column("set_id", sa.String(40), sa.ForeignKey("correlative_sets.id"), primary_key=True),
        sa.Column("image_id", sa.String(40), sa.ForeignKey("images.id"), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("modality", sa.String(64), nullable=False),
        sa.Column("colour", sa.String(6), nullable=False),
        sa.Column("matrix", sa.JSON(), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("landmarks", sa.JSON(), nullable=False),
        sa.Column("residual", sa.Float(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("correlative_members")
    op.drop_table("correlative_sets")

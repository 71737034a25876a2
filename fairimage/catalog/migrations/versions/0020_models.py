"""Trained models: a bioimage.io package or a model card of our own, each with the dataset versions it was
trained and evaluated on.

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("card", sa.JSON, nullable=False),
        sa.Column("registered_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("source_name", sa.String(255), nullable=False),
        sa.Column("package_sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(255), nullable=False),
        sa.Column("files", sa.JSON, nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_models_name_version"),
    )
    op.create_table(
        "model_datasets",
        sa.Column("model_id", sa.String(40), sa.ForeignKey("models.id"), primary_key=True),
        sa.Column("dataset_id", sa.String(40), sa.ForeignKey("datasets.id"), primary_key=True),
        sa.Column("role", sa.String(16), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("model_datasets")
    op.drop_table("models")

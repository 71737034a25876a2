"""Studies, original files and images.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "original_files",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("study_id", sa.String(40), sa.ForeignKey("studies.id"), nullable=False, index=True),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("source_path", sa.Text, nullable=False),
        sa.Column("format", sa.String(40), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("study_id", sa.String(40), sa.ForeignKey("studies.id"), nullable=False, index=True),
        sa.Column("file_id", sa.String(40), sa.ForeignKey("original_files.id"), nullable=False, index=True),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("series_index", sa.Integer, nullable=False),
        sa.Column("axes", sa.JSON, nullable=False),
        sa.Column("shape", sa.JSON, nullable=False),
        sa.Column("dtype", sa.String(20), nullable=False),
        sa.Column("source_dtype", sa.String(20), nullable=False),
        sa.Column("scale", sa.JSON, nullable=False),
        sa.Column("channels", sa.JSON, nullable=False),
        sa.Column("levels", sa.JSON, nullable=False),
        sa.Column("storage_key", sa.String(255), nullable=False),
        sa.Column("manifest_key", sa.String(255), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger, nullable=False),
        sa.Column("object_count", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("images")
    op.drop_table("original_files")
    op.drop_table("studies")

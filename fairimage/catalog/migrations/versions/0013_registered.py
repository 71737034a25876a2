"""Registered OME-Zarr: images and plates catalogued where they already are (a folder, a .ozx file, an
HTTP or S3 URL), never copied. ``location`` names that root; their ``storage_key`` is relative to it.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite has it): a batch copy would drop and rebuild tables other rows refer to.
    op.add_column("images", sa.Column("location", sa.Text, nullable=True))
    op.add_column("plates", sa.Column("location", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("plates", "location")  # SQLite 3.35+ drops a column in place
    op.drop_column("images", "location")

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
    with op.batch_alter_table("images") as images:
        images.add_column(sa.Column("location", sa.Text, nullable=True))
    with op.batch_alter_table("plates") as plates:
        plates.add_column(sa.Column("location", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("plates") as plates:
        plates.drop_column("location")
    with op.batch_alter_table("images") as images:
        images.drop_column("location")

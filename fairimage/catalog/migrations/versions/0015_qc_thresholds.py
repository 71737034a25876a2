"""A study's own QC thresholds: the ones that differ from the defaults (model/qc/thresholds.py).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite has it): a batch copy would drop and rebuild a table other rows refer to.
    op.add_column("studies", sa.Column("qc_thresholds", sa.JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("studies", "qc_thresholds")  # SQLite 3.35+ drops a column in place

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
    with op.batch_alter_table("studies") as studies:
        studies.add_column(sa.Column("qc_thresholds", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("studies") as studies:
        studies.drop_column("qc_thresholds")

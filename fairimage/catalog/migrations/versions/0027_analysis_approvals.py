"""Analyses that go to the data: a study owner's or data steward's approval of a plan (an analysis, on a
dataset, by a requester) that must be given before the run starts, for federated training over restricted
studies, whose weights leave the node each round.

Revision ID: 0027
Revises: 0026
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analysis_approvals",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("analysis", sa.String(64), nullable=False),
        sa.Column("dataset_id", sa.String(40), nullable=False),
        sa.Column("requester", sa.String(255), nullable=False),
        sa.Column("approved_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("analysis", "dataset_id", "requester", name="uq_analysis_approvals_plan"),
    )


def downgrade() -> None:
    op.drop_table("analysis_approvals")

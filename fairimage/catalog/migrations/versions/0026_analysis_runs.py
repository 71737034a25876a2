"""Analyses that go to the data: each run of an allow-listed analysis, its checked outputs and whether
they were released.

Revision ID: 0026
Revises: 0025
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analysis_runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("analysis", sa.String(64), nullable=False),
        sa.Column("dataset_id", sa.String(40), nullable=False, index=True),
        sa.Column("studies", sa.JSON, nullable=False),
        sa.Column("requester", sa.String(255), nullable=False, index=True),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("images", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("outputs", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_by", sa.String(255), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("analysis_runs")

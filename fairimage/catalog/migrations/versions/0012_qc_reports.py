"""Quality-control reports of plates: the thresholds a run used, the plate's statistics (Z' as a column, to
find plates below a cut-off), and every field's measures and flags.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qc_reports",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("plate_id", sa.String(40), sa.ForeignKey("plates.id"), nullable=False, index=True),
        sa.Column("study_id", sa.String(40), sa.ForeignKey("studies.id"), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("z_prime", sa.Float, nullable=True, index=True),
        sa.Column("flagged_fields", sa.Integer, nullable=False, server_default="0"),
        sa.Column("plate_flags", sa.JSON, nullable=False),
        sa.Column("thresholds", sa.JSON, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("qc_reports")

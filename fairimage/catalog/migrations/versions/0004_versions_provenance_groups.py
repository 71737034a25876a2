"""Study versions, ingest runs (the provenance of images), and groups of users that grants can name.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("software", sa.JSON, nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
    )
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("run_id", sa.String(40), nullable=True))
        batch.create_foreign_key("fk_images_run", "ingest_runs", ["run_id"], ["id"])
        batch.create_index("ix_images_run_id", ["run_id"])
    op.create_table(
        "study_versions",
        sa.Column("id", sa.String(60), primary_key=True),
        sa.Column("study_id", sa.String(40), sa.ForeignKey("studies.id"), nullable=False, index=True),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("content", sa.JSON, nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_by", sa.String(255), nullable=True),
        sa.UniqueConstraint("study_id", "number", name="uq_study_versions_number"),
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.String(40), sa.ForeignKey("groups.id"), primary_key=True),
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id"), primary_key=True, index=True),
    )
    with op.batch_alter_table("grants") as batch:
        batch.alter_column("user_id", existing_type=sa.String(40), nullable=True)
        batch.add_column(sa.Column("group_id", sa.String(40), nullable=True))
        batch.create_foreign_key("fk_grants_group", "groups", ["group_id"], ["id"])
        batch.create_index("ix_grants_group_id", ["group_id"])


def downgrade() -> None:
    with op.batch_alter_table("grants") as batch:
        batch.drop_index("ix_grants_group_id")
        batch.drop_constraint("fk_grants_group", type_="foreignkey")
        batch.drop_column("group_id")
        batch.alter_column("user_id", existing_type=sa.String(40), nullable=False)
    op.drop_table("group_members")
    op.drop_table("groups")
    op.drop_table("study_versions")
    with op.batch_alter_table("images") as batch:
        batch.drop_index("ix_images_run_id")
        batch.drop_constraint("fk_images_run", type_="foreignkey")
        batch.drop_column("run_id")
    op.drop_table("ingest_runs")

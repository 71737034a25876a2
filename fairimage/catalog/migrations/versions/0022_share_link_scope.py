"""Share links for one version of a study, and links that open for a limited number of clients: the
version a link shows (none: the study as it is), how many client addresses it may serve, and the addresses
it has served (each one a use, in the audit log too).

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("share_links") as batch:
        batch.add_column(sa.Column("version", sa.Integer, nullable=True))
        batch.add_column(sa.Column("max_uses", sa.Integer, nullable=True))
    op.create_table(
        "share_link_uses",
        sa.Column("link_id", sa.String(40), sa.ForeignKey("share_links.id"), primary_key=True),
        sa.Column("origin", sa.String(255), primary_key=True),
        sa.Column("used_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("share_link_uses")
    with op.batch_alter_table("share_links") as batch:
        batch.drop_column("max_uses")
        batch.drop_column("version")

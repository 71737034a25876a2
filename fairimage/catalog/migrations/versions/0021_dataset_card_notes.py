"""What people write on a dataset's card (a description, intended uses, limitations, biases): the card is
generated from the catalog and these notes, which its maker or a steward may edit; the items never change.

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("datasets", sa.Column("notes", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("notes")

"""AI-generated images: the model that made an image and the images it was made from, kept with the image.
Every image gets the search facet ``origin`` (acquired or ai-generated): the index is emptied here and
rebuilt when the repository is opened (``index_missing``), as for any catalog the index does not cover.

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN (SQLite has it): a batch copy of ``images`` would break the foreign keys to it
    op.add_column("images", sa.Column("generated", sa.JSON, nullable=True))
    for table in ("search_documents", "search_groups", "search_signatures"):
        op.execute(f"DELETE FROM {table}")


def downgrade() -> None:
    op.drop_column("images", "generated")

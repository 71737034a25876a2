"""An index on original files' sizes: ingest asks, for every file, whether any stored original has exactly
its size (if none has, its content is new and is hashed while it converts). Without the index that
question scanned the whole table: 690 ms a file at 10 million originals (docs/scaling.md).

Revision ID: 0029
Revises: 0028
"""

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_original_files_size", "original_files", ["size"])


def downgrade() -> None:
    op.drop_index("ix_original_files_size", table_name="original_files")

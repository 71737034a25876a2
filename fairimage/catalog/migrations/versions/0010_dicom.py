"""A DICOM image's de-identified header, as the DICOM JSON model, kept with the image; images that may
show burned-in identifying text are quarantined (why, and who cleared them), and a study counts its
uncleared ones: while any is left, only its owner and stewards read it. What the PHI scanner found in a
study's text, and who acknowledged it, is kept with the study; an original file kept encrypted
(Crypt4GH) names its store keys.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("dicom", sa.JSON, nullable=True))
        batch.add_column(sa.Column("quarantine", sa.JSON, nullable=True))
    with op.batch_alter_table("original_files") as batch:
        batch.add_column(sa.Column("kept", sa.JSON, nullable=True))
    with op.batch_alter_table("studies") as batch:
        batch.add_column(sa.Column("quarantined", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("phi", sa.JSON, nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+, PostgreSQL): a batch copy of the tables would trip
    # over the foreign keys that point at them.
    for table, column in (
        ("studies", "phi"),
        ("studies", "quarantined"),
        ("original_files", "kept"),
        ("images", "quarantine"),
        ("images", "dicom"),
    ):
        op.drop_column(table, column)

"""Witnessing and mirrors: the name a peer calls itself (the signer of its checkpoints); the signed
checkpoints of this node's audit log, and the peers' checkpoints this node witnessed; and, on studies and
images copied from another node, their PID there (they are read-only here).

Revision ID: 0025
Revises: 0024
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("peers") as batch:
        batch.add_column(sa.Column("node_name", sa.String(64), nullable=False, server_default=""))
    op.execute("UPDATE peers SET node_name = name")  # peers added before this kept the name they gave
    op.create_table(
        "audit_checkpoints",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("subtrees", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "witnessed_checkpoints",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("origin", sa.String(255), nullable=False, index=True),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("cosignature", sa.Text, nullable=False),
        sa.Column("witnessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("origin", "size", name="uq_witnessed_origin_size"),
    )
    for table in ("studies", "images"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("mirror_of", sa.String(1024), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+ and PostgreSQL), not a batch copy: SQLite's copy would drop
    # tables that other tables' rows refer to, which the catalog's foreign keys refuse.
    for table in ("studies", "images"):
        op.execute(f"ALTER TABLE {table} DROP COLUMN mirror_of")
    op.drop_table("witnessed_checkpoints")
    op.drop_table("audit_checkpoints")
    op.execute("ALTER TABLE peers DROP COLUMN node_name")

"""Alembic environment: runs on the connection fairimage hands over (see catalog/db.py)."""

from alembic import context

from fairimage.catalog.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

"""The catalog: SQLAlchemy tables, Alembic migrations and query functions. No business rules here."""

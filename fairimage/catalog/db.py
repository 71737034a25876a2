"""Opening the catalog database and bringing its schema up to date with Alembic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from fairimage.model.errors import StorageError

MIGRATIONS = Path(__file__).parent / "migrations"


def open_engine(url: str) -> Engine:
    """An engine for the catalog URL; SQLite gets WAL (readers never wait on an ingest) and foreign keys."""
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError) as exc:
        raise StorageError(f"catalog {redact(url)}: cannot open ({exc})") from exc
    return engine


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def migrate(engine: Engine) -> bool:
    """Create or upgrade the catalog tables to the newest revision; whether any revision was applied."""
    from alembic.runtime.migration import MigrationContext

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as connection:
            before = MigrationContext.configure(connection).get_current_revision()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            return MigrationContext.configure(connection).get_current_revision() != before
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc  # the driver's own error, where SQLAlchemy wraps one
        raise StorageError(
            f"catalog {redact(str(engine.url))}: cannot reach or upgrade it "
            f"({type(cause).__name__}: {str(cause).strip().splitlines()[0]})"
        ) from exc


def redact(url: str) -> str:
    """A database URL without its password, fit for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as given, minus nothing we could parse
        return url.split("@")[-1]

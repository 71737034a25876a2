"""Opening the catalog database and bringing its schema up to date with Alembic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from fairimage.model.errors import StorageError

MIGRATIONS = Path(__file__).parent / "migrations"
# Each revision is named by its file's number ("0019_generated_images.py" is revision "0019"), so the newest
# is known without loading Alembic and every migration script, which costs each command ~0.3 s.
HEAD = max(path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


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
    try:
        if current_revision(engine) == HEAD:
            return False
        return _upgrade(engine)
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc  # the driver's own error, where SQLAlchemy wraps one
        raise StorageError(
            f"catalog {redact(str(engine.url))}: cannot reach or upgrade it "
            f"({type(cause).__name__}: {str(cause).strip().splitlines()[0]})"
        ) from exc


def _upgrade(engine: Engine) -> bool:
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        return MigrationContext.configure(connection).get_current_revision() != before


def current_revision(engine: Engine) -> str | None:
    """The catalog's revision as Alembic recorded it; None for a catalog without tables."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("select version_num from alembic_version")).scalar()


def redact(url: str) -> str:
    """A database URL without its password, fit for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as given, minus nothing we could parse
        return url.split("@")[-1]

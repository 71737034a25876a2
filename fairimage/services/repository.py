"""A repository: its settings, catalog engine and object store, opened once and passed around."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from fairimage.catalog.db import migrate, open_engine
from fairimage.model.errors import ConflictError, NotFoundError
from fairimage.services.audit import ReadLog
from fairimage.settings import Settings, write_config
from fairimage.storage import Store, open_store


@dataclass
class Repository:
    settings: Settings
    engine: Engine
    store: Store
    sessions: sessionmaker[Session]
    read_log: ReadLog = field(default_factory=ReadLog)  # reads of protected data recorded lately
    upgraded: bool = False  # whether opening it applied catalog migrations

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed together at the end, or not at all."""
        with self.sessions.begin() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()


def _connect(settings: Settings) -> Repository:
    store = open_store(settings.storage, settings.s3_endpoint)  # first: it names a bad storage URL clearly
    engine = open_engine(settings.db)
    upgraded = migrate(engine)
    return Repository(
        settings=settings,
        engine=engine,
        store=store,
        sessions=sessionmaker(engine, expire_on_commit=False),
        upgraded=upgraded,
    )


def init_repository(settings: Settings) -> Repository:
    """Create the repository folder, its config, catalog tables and object store; nothing is left behind
    if any of them cannot be made."""
    if settings.config_path.exists():
        raise ConflictError(f"{settings.repo} is already a fairimage repository; use it with --repo")
    created = not settings.repo.exists()
    settings.repo.mkdir(parents=True, exist_ok=True)
    try:
        repository = _connect(settings)
        write_config(settings)
    except BaseException:
        if created:
            shutil.rmtree(settings.repo, ignore_errors=True)
        raise
    return repository


def open_repository(settings: Settings) -> Repository:
    """Open an existing repository, upgrading its catalog and clearing what crashed runs left staged."""
    if not settings.config_path.is_file():
        raise NotFoundError(
            f"{settings.repo} is not a fairimage repository; create it with 'fairimage init {settings.repo}'"
        )
    from fairimage.services.runs import clean_stale_runs
    from fairimage.services.search import index_missing
    from fairimage.services.versions import record_unversioned

    repository = _connect(settings)
    clean_stale_runs(repository)
    record_unversioned(repository)
    if repository.upgraded:  # images are indexed as they are published; only older catalogs lack entries
        index_missing(repository)
    return repository

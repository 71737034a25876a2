"""A repository: its settings, catalog engine and object store, opened once and passed around."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from fairimage.catalog.db import migrate, open_engine
from fairimage.model.errors import ConflictError
from fairimage.settings import Settings, write_config
from fairimage.storage import Store, open_store


class ReadLog:
    """Which reads of protected data were recorded lately, so that a viewer fetching a thousand chunks of
    one image makes one audit entry per ``window_seconds``, not a thousand; a changed decision (a grant
    given or revoked in between) is always recorded. Kept in memory, per process."""

    def __init__(self, window_seconds: float = 900.0, capacity: int = 10_000) -> None:
        self.window_seconds = window_seconds
        self.capacity = capacity
        self._seen: dict[tuple[str, str], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def is_new(self, actor: str, target: str, decision: str) -> bool:
        """Whether this read should be recorded (and, if so, remember that it was)."""
        now = time.monotonic()
        with self._lock:
            last = self._seen.get((actor, target))
            if last is not None and last[1] == decision and now - last[0] < self.window_seconds:
                return False
            if len(self._seen) >= self.capacity:
                cutoff = now - self.window_seconds
                self._seen = {key: seen for key, seen in self._seen.items() if seen[0] > cutoff}
            self._seen[(actor, target)] = (now, decision)
            return True


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


def connect(settings: Settings) -> Repository:
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
        repository = connect(settings)
        write_config(settings)
    except BaseException:
        if created:
            shutil.rmtree(settings.repo, ignore_errors=True)
        raise
    return repository

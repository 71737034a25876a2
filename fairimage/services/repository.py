"""A repository: its settings, catalog engine and object store, opened once and passed around."""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from fairimage.catalog import queries
from fairimage.catalog.db import migrate, open_engine
from fairimage.model.errors import ConflictError, NotFoundError
from fairimage.settings import Settings, write_config
from fairimage.storage import ImagePrefix, Store, open_store
from fairimage.storage.sources import open_source


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


T = TypeVar("T")
_MISSING = object()
CHANGES_FILE = ".catalog-changes"


class ChangeCounter:
    """A number in a small file of the repository folder that every committed transaction raises, so that
    every process on this machine (server workers, the command line) learns of a change with one ``pread``.
    """

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def read(self) -> int:
        return int.from_bytes(os.pread(self._fd, 8, 0).ljust(8, b"\0"), "little")

    def bump(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            os.pwrite(self._fd, (self.read() + 1).to_bytes(8, "little"), 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


class RecentLookups:
    """Catalog lookups that every chunk and tile request makes (the study and policy of an image, the user
    behind a token), remembered so that a viewer's thousand requests make one query.

    They are forgotten when any process on this machine commits a change (``changes``, raised by
    ``Repository.transaction``), so a revoked grant or token counts at the next request; and after
    ``ttl_seconds`` in any case, which bounds how long a change made on another machine sharing the catalog
    (PostgreSQL) goes unseen. A lookup that raced a commit is not kept."""

    def __init__(
        self, changes: ChangeCounter | None = None, ttl_seconds: float = 1.0, capacity: int = 50_000
    ) -> None:
        self.changes = changes
        self.ttl_seconds = ttl_seconds
        self.capacity = capacity
        self._found: dict[Hashable, tuple[float, Any]] = {}
        self._generation = 0
        self._seen_changes = changes.read() if changes is not None else 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        now = time.monotonic()
        known = self._recent(key, now)
        if known is not _MISSING:
            value: T = known
            return value
        generation = self._generation
        value = load()
        with self._lock:
            if generation == self._generation:
                if len(self._found) >= self.capacity:
                    self._found = {k: v for k, v in self._found.items() if now - v[0] < self.ttl_seconds}
                self._found[key] = (now, value)
        return value

    def knows(self, key: Hashable) -> bool:
        """Whether ``get(key, ...)`` would answer from memory."""
        return self._recent(key, time.monotonic()) is not _MISSING

    def peek(self, key: Hashable) -> Any:
        """What ``get(key, ...)`` would answer from memory, or None."""
        known = self._recent(key, time.monotonic())
        return None if known is _MISSING else known

    def _recent(self, key: Hashable, now: float) -> Any:
        if self.changes is not None and self.changes.read() != self._seen_changes:
            self.forget()
        known = self._found.get(key)
        if known is None or now - known[0] >= self.ttl_seconds:
            return _MISSING
        return known[1]

    def forget(self) -> None:
        with self._lock:
            self._generation += 1
            self._found = {}
            if self.changes is not None:
                self._seen_changes = self.changes.read()

    def changed(self) -> None:
        """A change was committed here: forget, and tell the other processes."""
        if self.changes is not None:
            self.changes.bump()
        self.forget()

    def close(self) -> None:
        if self.changes is not None:
            self.changes.close()
            self.changes = None


@dataclass
class Repository:
    settings: Settings
    engine: Engine
    store: Store
    sessions: sessionmaker[Session]
    read_log: ReadLog = field(default_factory=ReadLog)  # reads of protected data recorded lately
    recent: RecentLookups = field(default_factory=RecentLookups)  # the hot read path's catalog lookups
    upgraded: bool = False  # whether opening it applied catalog migrations
    sources: dict[str, Store] = field(default_factory=dict)  # registered roots opened, by location
    _sources_lock: threading.Lock = field(default_factory=threading.Lock)
    _http: httpx.Client | None = None

    def http_client(self) -> httpx.Client:
        """One HTTP client for asking other nodes (its connections and TLS set up once, then kept)."""
        with self._sources_lock:
            if self._http is None:
                self._http = httpx.Client(follow_redirects=False, limits=httpx.Limits(max_connections=64))
            return self._http

    def store_at(self, location: str | None) -> Store:
        """The store holding what the catalog says is at ``location``: the repository's own (None), or a
        registered root, opened once."""
        if location is None:
            return self.store
        store = self.sources.get(location)
        if store is None:
            with self._sources_lock:
                store = self.sources.get(location)
                if store is None:
                    store = open_source(location, self.settings.s3_endpoint)
                    self.sources[location] = store
        return store

    def image_root(self, image_id: str) -> ImagePrefix:
        """Where an image's OME-Zarr group is, in the repository's store or where it was registered (a
        recent lookup: every chunk request asks)."""
        return self._root(("image place", image_id), queries.image_place, image_id, "image")

    def plate_root(self, plate_id: str) -> ImagePrefix:
        """Where a plate's own group documents are."""
        return self._root(("plate place", plate_id), queries.plate_place, plate_id, "plate")

    def _root(
        self,
        lookup: tuple[str, str],
        find: Callable[[Session, str], tuple[str | None, str] | None],
        key: str,
        what: str,
    ) -> ImagePrefix:
        def load() -> tuple[str | None, str] | None:
            with self.reading() as session:
                return find(session, key)

        place = self.recent.get(lookup, load)
        if place is None:
            raise NotFoundError(f"{what} {key!r} not found")
        return ImagePrefix(self.store_at(place[0]), place[1])

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed together at the end, or not at all."""
        try:
            with self.sessions.begin() as session:
                yield session
        finally:
            self.recent.changed()  # whatever it changed (a policy, a grant, a token) counts at once

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()
        self.recent.close()
        if self._http is not None:
            self._http.close()


def connect(settings: Settings) -> Repository:
    store = open_store(settings.storage, settings.s3_endpoint)  # first: it names a bad storage URL clearly
    engine = open_engine(settings.db)
    upgraded = migrate(engine)
    return Repository(
        settings=settings,
        engine=engine,
        store=store,
        sessions=sessionmaker(engine, expire_on_commit=False),
        recent=RecentLookups(_change_counter(settings)),
        upgraded=upgraded,
    )


def _change_counter(settings: Settings) -> ChangeCounter | None:
    """The repository's change counter; None (changes elsewhere are seen within a second) where the
    folder is read-only."""
    try:
        return ChangeCounter(settings.repo / CHANGES_FILE)
    except OSError:
        return None


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

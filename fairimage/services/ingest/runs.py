"""Ingest runs and crash safety.

A run stages images under ``staging/{run}/`` in the store and holds an exclusive lock on
``REPO/runs/{run}.lock`` while it lives; the kernel drops the lock when the process dies, even by kill -9.
Before it moves a staged image to its final place it appends the image id to ``{run}.intents`` (fsynced), and
the catalog row is committed last. Any later command that finds a run whose lock is free removes its staging
area and every intended image the catalog does not know: a crash leaves nothing visible and nothing behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fairimage.catalog.queries import existing_image_ids, existing_label_ids, existing_model_ids
from fairimage.catalog.tables import ImageRow, IngestRunRow
from fairimage.model.study import new_id
from fairimage.services.governance import versions
from fairimage.services.repository import Repository
from fairimage.storage import layout

SOFTWARE = ("fairimage", "zarr", "numcodecs", "tifffile", "imagecodecs", "numpy", "pillow")


@dataclass
class Run:
    id: str
    intents_path: Path
    actor: str = "operator"  # who ingests: recorded in the audit log with each published file
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    parameters: dict[str, Any] = field(default_factory=dict)  # how images are written, for provenance
    studies: set[str] = field(default_factory=set)  # studies that got images: each gets a new version
    files: int = 0  # files published
    recorded: bool = False  # whether its catalog row (the provenance activity) exists yet
    generated: dict[str, Any] | None = None  # its files are a model's output: every image it makes is marked

    def record(self, session: Session) -> None:
        """The run's catalog row, in the transaction of the first file it publishes."""
        if not self.recorded:
            session.add(
                IngestRunRow(
                    id=self.id,
                    actor=self.actor,
                    started_at=self.started_at,
                    software=software_versions(),
                    parameters=self.parameters,
                )
            )
            session.flush()

    def published(self, study_id: str) -> None:
        """After a file's transaction committed."""
        self.recorded = True
        self.studies.add(study_id)
        self.files += 1

    def intend(self, image_id: str) -> None:
        """Record, durably, that ``image_id`` (or a label's id) is about to be published."""
        self.intend_all([image_id])

    def intend_all(self, image_ids: list[str]) -> None:
        """Record, durably and with one sync, that every one of ``image_ids`` is about to be published."""
        with self.intents_path.open("a") as f:
            f.write("".join(image_id + "\n" for image_id in image_ids))
            f.flush()
            os.fsync(f.fileno())


def software_versions() -> dict[str, str]:
    """The versions of fairimage and of the libraries that read and write pixels."""
    found = {}
    for name in SOFTWARE:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _runs_dir(repository: Repository) -> Path:
    path = repository.settings.repo / "runs"
    path.mkdir(exist_ok=True)
    return path


@contextmanager
def ingest_run(repository: Repository, actor: str = "operator") -> Iterator[Run]:
    runs = _runs_dir(repository)
    run_id = new_id("run")
    lock_path = runs / f"{run_id}.lock"
    hidden = runs / f".{run_id}.lock"
    with hidden.open("w") as lock:
        # Locked before it is visible, so a cleaner never sees an unlocked lock file of a live run.
        fcntl.flock(lock, fcntl.LOCK_EX)
        hidden.rename(lock_path)
        run = Run(id=run_id, intents_path=runs / f"{run_id}.intents", actor=actor)
        try:
            yield run
            _finish(repository, run)
        finally:
            repository.store.delete(layout.staging_prefix(run_id))
            run.intents_path.unlink(missing_ok=True)
            lock_path.unlink(missing_ok=True)


def _finish(repository: Repository, run: Run) -> None:
    """A run that published files: its end time, and a new version of each study it added images to."""
    if not run.recorded:
        return
    with repository.transaction() as session:
        row = session.get(IngestRunRow, run.id)
        if row is not None:
            row.ended_at = datetime.now(UTC)
    files = "1 file" if run.files == 1 else f"{run.files} files"
    versions.record_versions(repository, run.actor, run.studies, f"ingest {run.id}: {files}")


def clean_stale_runs(repository: Repository) -> list[str]:
    """Remove what dead runs left: staging areas and published-but-uncommitted images. Returns their ids."""
    cleaned = []
    runs = _runs_dir(repository)
    for lock_path in sorted(runs.glob("*.lock")):
        with _try_lock(lock_path) as lock:
            if lock is None:
                continue  # a live run
            run_id = lock_path.stem
            intents = runs / f"{run_id}.intents"
            intended = intents.read_text().split() if intents.exists() else []
            labels = [key for key in intended if key.startswith("lbl-")]
            models = [key for key in intended if key.startswith("model-")]
            with repository.reading() as session:
                known = existing_image_ids(session, intended) | existing_label_ids(session, labels)
                known |= existing_model_ids(session, models)
            for key in set(intended) - known:
                prefix = (
                    layout.label_prefix(key)
                    if key in labels
                    else layout.model_prefix(key)
                    if key in models
                    else layout.image_prefix(key)
                )
                repository.store.delete(prefix)
                repository.store.delete(layout.manifest_key(key))
            repository.store.delete(layout.staging_prefix(run_id))
            _version_interrupted(repository, run_id)
            intents.unlink(missing_ok=True)
            lock_path.unlink(missing_ok=True)
            cleaned.append(run_id)
    # Staging areas without a lock file at all (the lock was removed first) are dead too.
    locked = {path.stem for path in runs.glob("*.lock")}
    for run_id in repository.store.list_children(layout.STAGING):
        if run_id not in locked:
            repository.store.delete(layout.staging_prefix(run_id))
            cleaned.append(run_id)
    return cleaned


def _version_interrupted(repository: Repository, run_id: str) -> None:
    """What a killed run published stays (each file was committed whole); its studies get their version."""
    with repository.reading() as session:
        row = session.get(IngestRunRow, run_id)
        studies = set(session.scalars(select(ImageRow.study_id).where(ImageRow.run_id == run_id)))
    actor = row.actor if row is not None else "fairimage"
    versions.record_versions(repository, actor, studies, f"ingest {run_id}: interrupted")


@contextmanager
def _try_lock(path: Path) -> Iterator[IO[str] | None]:
    try:
        handle = path.open("a")
    except FileNotFoundError:
        yield None
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield handle

"""Background jobs: long work started over HTTP (a plate's QC, verifying a registered image's chunks) runs in
the server process's own threads while the request returns at once (202, with the job's address). Status,
progress and result are kept in the catalog, so any worker process answers ``GET /api/jobs/ID``; a job
whose process died (a restart, kill -9) is reported as interrupted, never as running forever."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from fairimage.catalog import queries
from fairimage.catalog.tables import JobRow
from fairimage.model.errors import FairimageError, NotFoundError
from fairimage.model.governance.policy import Principal
from fairimage.model.study import new_id
from fairimage.services.progress import Progress
from fairimage.services.repository import Repository

Work = Callable[["JobProgress"], dict[str, Any]]
PROGRESS_SECONDS = 0.5  # how often a running job's progress is written to the catalog at most


@dataclass(frozen=True)
class Job:
    """A job as the API shows it."""

    id: str
    kind: str
    target: str
    status: str  # queued, running, done, failed
    done: int
    total: int | None
    result: dict[str, Any] | None
    error: str | None
    actor: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None

    @classmethod
    def of(cls, row: JobRow) -> Job:
        return cls(
            id=row.id,
            kind=row.kind,
            target=row.target,
            status=row.status,
            done=row.done,
            total=row.total,
            result=row.result,
            error=row.error,
            actor=row.actor,
            created_at=queries.aware(row.created_at) or row.created_at,
            started_at=queries.aware(row.started_at),
            ended_at=queries.aware(row.ended_at),
        )


class JobProgress(Progress):
    """What a job's work reports as it goes (the ingest ``Progress`` protocol: a total, then advances),
    written to the job's row at most every ``PROGRESS_SECONDS``."""

    def __init__(self, repository: Repository, job_id: str) -> None:
        self.repository, self.job_id = repository, job_id
        self.done, self.total = 0, 0
        self._written = 0.0
        self._lock = threading.Lock()

    def start_file(self, path: Path, total_bytes: int) -> None:
        with self._lock:
            self.total += total_bytes
        self._write(force=True)

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self.done += nbytes
        self._write()

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written < PROGRESS_SECONDS:
            return
        self._written = now
        with self.repository.transaction() as session:
            row = session.get(JobRow, self.job_id)
            if row is not None:
                row.done, row.total = self.done, self.total


def _runner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobRunner:
    """The server process's job threads (one per core at most: the work itself uses threads)."""

    def __init__(self, repository: Repository, workers: int = 1) -> None:
        self.repository = repository
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        interrupt_orphans(repository)

    def submit(self, principal: Principal, kind: str, target: str, study_id: str | None, work: Work) -> Job:
        """Queue ``work``; the job as it is now (queued)."""
        with self.repository.transaction() as session:
            row = JobRow(
                id=new_id("job"),
                kind=kind,
                target=target,
                study_id=study_id,
                actor=principal.name,
                status="queued",
                done=0,
                runner=_runner(),
            )
            session.add(row)
            session.flush()
            job = Job.of(row)
        self._pool.submit(self._run, job.id, work)
        return job

    def _run(self, job_id: str, work: Work) -> None:
        self._update(job_id, status="running", started_at=datetime.now(UTC))
        progress = JobProgress(self.repository, job_id)
        try:
            result = work(progress)
        except FairimageError as exc:
            self._update(job_id, status="failed", error=exc.message, ended_at=datetime.now(UTC))
            return
        except Exception as exc:  # noqa: BLE001 - the job says what went wrong; the server goes on
            message = f"unexpected {type(exc).__name__}: {exc}; please report this"
            self._update(job_id, status="failed", error=message, ended_at=datetime.now(UTC))
            return
        try:
            self._update(
                job_id,
                status="done",
                result=result,
                done=progress.done,
                total=progress.total,
                ended_at=datetime.now(UTC),
            )
        except Exception as exc:  # noqa: BLE001 - a result the catalog cannot keep must not leave it running
            message = f"unexpected {type(exc).__name__} keeping the result: {exc}; please report this"
            self._update(job_id, status="failed", error=message[:2000], ended_at=datetime.now(UTC))

    def _update(self, job_id: str, **values: Any) -> None:
        with self.repository.transaction() as session:
            row = session.get(JobRow, job_id)
            if row is not None:
                for name, value in values.items():
                    setattr(row, name, value)

    def close(self) -> None:
        """Stop taking jobs; those still queued or running here are reported interrupted."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        _interrupt(self.repository, lambda runner: runner == _runner())


def get_job(repository: Repository, principal: Principal, job_id: str) -> Job:
    """A job, for the one who started it or those who govern every study; NotFoundError for others."""
    with repository.reading() as session:
        row = session.get(JobRow, job_id)
        if row is None or not (
            principal.sees_everything or (not principal.is_anonymous and row.actor == principal.name)
        ):
            raise NotFoundError(f"job {job_id!r} not found")
        return Job.of(row)


def interrupt_orphans(repository: Repository) -> int:
    """Jobs left queued or running by a process of this machine that no longer runs: failed, saying so."""
    host = socket.gethostname()

    def dead(runner: str) -> bool:
        name, _, pid = runner.rpartition(":")
        return name == host and pid.isdigit() and not _alive(int(pid))

    return _interrupt(repository, dead)


def _interrupt(repository: Repository, whose: Callable[[str], bool]) -> int:
    with repository.transaction() as session:
        rows = session.scalars(select(JobRow).where(JobRow.status.in_(("queued", "running"))))
        stopped = [row for row in rows if whose(row.runner)]
        for row in stopped:
            row.status = "failed"
            row.error = "interrupted: the server process running it stopped; start it again"
            row.ended_at = datetime.now(UTC)
    return len(stopped)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""Background jobs: a job's outcome is kept whatever its work does, and a job whose server process died is
reported interrupted instead of running forever."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from fairimage.catalog.tables import JobRow
from fairimage.model.errors import InvalidInputError
from fairimage.model.governance.policy import operator
from fairimage.services.jobs import Job, JobProgress, JobRunner, get_job
from fairimage.services.repository import Repository

STEWARD = operator("test")


def _finished(repository: Repository, job: Job) -> Job:
    deadline = time.monotonic() + 10
    while (job := get_job(repository, STEWARD, job.id)).status in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.02)
    return job


def test_a_job_keeps_its_result_its_error_or_what_went_wrong(repository: Repository) -> None:
    runner = JobRunner(repository)
    try:

        def counts(progress: JobProgress) -> dict[str, int]:
            progress.start_file(Path("plate"), 3)
            for _ in range(3):
                progress.advance(1)
            return {"answer": 42}

        def refuses(progress: JobProgress) -> dict[str, int]:
            raise InvalidInputError("plate P: no such channel; pick one of 0 to 1")

        def breaks(progress: JobProgress) -> dict[str, int]:
            return {"ratio": 1 // 0}

        done = _finished(repository, runner.submit(STEWARD, "test", "t1", None, counts))
        assert (done.status, done.result, done.done, done.total) == ("done", {"answer": 42}, 3, 3)
        refused = _finished(repository, runner.submit(STEWARD, "test", "t2", None, refuses))
        assert (refused.status, refused.error) == ("failed", "plate P: no such channel; pick one of 0 to 1")
        broken = _finished(repository, runner.submit(STEWARD, "test", "t3", None, breaks))
        assert broken.status == "failed" and broken.error is not None
        assert broken.error.startswith("unexpected ZeroDivisionError") and "please report" in broken.error
    finally:
        runner.close()


def test_a_job_whose_process_died_is_reported_interrupted(repository: Repository) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with repository.transaction() as session:
        for job_id, runner in (
            ("job-dead", f"{socket.gethostname()}:{gone.pid}"),
            ("job-elsewhere", "other:1"),
        ):
            session.add(
                JobRow(
                    id=job_id, kind="plate.qc", target="p", actor="a", status="running", done=0, runner=runner
                )
            )
    JobRunner(repository).close()  # a server starting on this machine
    dead = get_job(repository, STEWARD, "job-dead")
    assert dead.status == "failed" and dead.error is not None and dead.error.startswith("interrupted")
    assert (
        get_job(repository, STEWARD, "job-elsewhere").status == "running"
    )  # another machine's: not ours to judge

"""Background jobs over HTTP: long work answers 202 with the job's address at once; the job tells its
status, progress and, when done, its result."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from fairimage.api.deps import PrincipalDep, RepositoryDep
from fairimage.services import jobs as job_service
from fairimage.services.jobs import Job

router = APIRouter(tags=["jobs"])


def accepted(job: Job) -> JSONResponse:
    """202 Accepted for a job just started: the job, and where to follow it (``Location``)."""
    address = f"/api/jobs/{job.id}"
    return JSONResponse(
        jsonable_encoder({**asdict(job), "url": address}), status_code=202, headers={"Location": address}
    )


@router.get(
    "/api/jobs/{job_id}",
    summary="A background job: status (queued, running, done, failed), progress (done of total), result",
)
def get_job(job_id: str, repository: RepositoryDep, principal: PrincipalDep) -> dict[str, Any]:
    job = job_service.get_job(repository, principal, job_id)
    return {**asdict(job), "url": f"/api/jobs/{job.id}"}

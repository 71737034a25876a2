"""Analyses that go to the data, over HTTP: the node's allow-list, runs started as jobs (202), a run's
outputs once released, and their release by a study's owner or a data steward."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from fairimage.api.deps import JobsDep, NoBody, PrincipalDep, RepositoryDep
from fairimage.api.jobs import accepted
from fairimage.api.schemas import RequestBody
from fairimage.services.federation import compute
from fairimage.services.jobs import JobProgress

router = APIRouter(tags=["analyses"])


class AnalysisRunIn(RequestBody):
    dataset: Annotated[str, Field(max_length=300, description="NAME, NAME:VERSION or the dataset's id")]
    parameters: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=200)]] = Field(
        default_factory=dict, max_length=20
    )


@router.get("/api/analyses", summary="The analyses this node runs where its data are (its allow-list)")
def list_analyses() -> list[dict[str, Any]]:
    return [
        {
            "name": analysis.name,
            "summary": analysis.summary,
            "returns": analysis.returns,
            "parameters": {
                key: {"default": p.default, "help": p.help} for key, p in analysis.parameters.items()
            },
        }
        for analysis in compute.analyses()
    ]


@router.post(
    "/api/analyses/{name}/runs",
    summary="Run an analysis on a dataset you may read: 202 and the job to follow; aggregates only",
    status_code=202,
    response_class=JSONResponse,
)
async def start_run(
    name: str, body: AnalysisRunIn, repository: RepositoryDep, principal: PrincipalDep, runner: JobsDep
) -> JSONResponse:
    request = await run_in_threadpool(
        compute.prepare, repository, principal, name, body.dataset, body.parameters
    )

    def work(progress: JobProgress) -> dict[str, Any]:
        run = compute.execute(repository, principal, request)
        return {
            "run": run.id,
            "status": run.status,
            "error": run.error,
            "url": f"/api/analysis-runs/{run.id}",
        }

    return accepted(runner.submit(principal, "analysis", request.dataset.id, None, work))


class ApprovalIn(RequestBody):
    dataset: Annotated[str, Field(max_length=300, description="NAME:VERSION or the dataset's id")]
    requester: Annotated[str, Field(min_length=1, max_length=255, description="who may run it")]


@router.post(
    "/api/analyses/{name}/approvals",
    summary="Approve a plan before it runs (its studies' owner, a data steward, an admin): federated "
    "training over restricted studies starts only once approved",
)
def approve(
    name: str, body: ApprovalIn, repository: RepositoryDep, principal: PrincipalDep
) -> dict[str, Any]:
    return asdict(compute.approve(repository, principal, name, body.dataset, body.requester))


@router.get("/api/analysis-runs/{run_id}", summary="A run: its status, and its outputs once released")
def get_run(run_id: str, repository: RepositoryDep, principal: PrincipalDep) -> dict[str, Any]:
    return asdict(compute.get_run(repository, principal, run_id))


@router.post(
    "/api/analysis-runs/{run_id}/release",
    summary="Release a run's outputs that wait for review (the studies' owner, a data steward, an admin)",
    dependencies=[NoBody],
)
def release_run(run_id: str, repository: RepositoryDep, principal: PrincipalDep) -> dict[str, Any]:
    return asdict(compute.release(repository, principal, run_id))

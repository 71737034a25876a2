"""Quality control of plates over HTTP: run it, read the latest report as JSON or CSV, find plates whose
Z'-factor is below a cut-off, and the report as a page with its plots."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from fairimage.api.deps import JobsDep, PrincipalDep, RepositoryDep
from fairimage.api.jobs import accepted
from fairimage.api.pages import templates
from fairimage.api.schemas import RequestBody
from fairimage.ngff.reader import Lru
from fairimage.services.jobs import JobProgress
from fairimage.services.plates import plates as plate_service
from fairimage.services.qc import datasets, thresholds
from fairimage.services.qc import plates as qc
from fairimage.web import charts

router = APIRouter(tags=["quality control"])
# A report never changes (a new QC run is a new report), so its plots are drawn once per report and platemap
# and kept: matplotlib takes a second or more for a plate's, far more than the page itself.
_PLOTS = Lru(
    capacity=32 << 20,
    size=lambda plots: (
        sum(len(p) for _, p in plots["heatmaps"]) + len(plots["focus"]) + len(plots["controls"])
    ),
)


class QcRunIn(RequestBody):
    readout_channel: int = Field(default=0, ge=0, description="the channel whose field means are the readout")


@router.post(
    "/api/plates/{plate_id}/qc",
    summary="Start quality control of a plate (owners, stewards, admins): 202 and the job to follow",
    status_code=202,
    response_class=JSONResponse,
)
async def run_qc(
    plate_id: str, body: QcRunIn, repository: RepositoryDep, principal: PrincipalDep, runner: JobsDep
) -> JSONResponse:
    plate = await run_in_threadpool(qc.check_plate_qc, repository, principal, plate_id, body.readout_channel)

    def work(progress: JobProgress) -> dict[str, Any]:
        report = qc.run_plate_qc(repository, principal, plate_id, body.readout_channel, progress=progress)
        return {
            "report": report["id"],
            "statistics": report["statistics"],
            "url": f"/api/plates/{plate_id}/qc",
        }

    return accepted(runner.submit(principal, "plate.qc", plate_id, plate.study_id, work))


@router.get("/api/plates/{plate_id}/qc", summary="A plate's latest QC report: plate statistics, every field")
def latest(plate_id: str, repository: RepositoryDep, principal: PrincipalDep) -> dict[str, Any]:
    return qc.latest_report(repository, principal, plate_id)


@router.get(
    "/api/plates/{plate_id}/qc.csv",
    summary="A plate's latest QC measures as CSV: a row per field and channel",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def latest_csv(plate_id: str, repository: RepositoryDep, principal: PrincipalDep) -> Response:
    report = qc.latest_report(repository, principal, plate_id)
    return _download(qc.report_csv(report).encode(), "text/csv", f"{plate_id}-qc.csv")


@router.get(
    "/api/plates/{plate_id}/qc.parquet",
    summary="A plate's latest QC measures as Parquet: a row per field and channel, typed columns",
    response_class=Response,
    responses={200: {"content": {"application/vnd.apache.parquet": {}}}},
)
def latest_parquet(plate_id: str, repository: RepositoryDep, principal: PrincipalDep) -> Response:
    report = qc.latest_report(repository, principal, plate_id)
    return _download(qc.report_parquet(report), "application/vnd.apache.parquet", f"{plate_id}-qc.parquet")


def _download(body: bytes, media_type: str, filename: str) -> Response:
    """A file to save, as browsers offer it."""
    return Response(
        body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@router.get(
    "/api/qc/images",
    summary="Fields the latest QC of each plate you may read flags: empty, dark, saturated, blurred, outlier",
)
def flagged(
    repository: RepositoryDep,
    principal: PrincipalDep,
    flag: Annotated[
        Literal["empty", "dark", "saturated", "blurred", "outlier"], Query(description="the flag")
    ],
) -> dict[str, list[dict[str, Any]]]:
    return {"images": qc.flagged_images(repository, principal, flag)}


@router.get(
    "/api/studies/{study_id}/qc",
    summary="Dataset QC of a study: images odd in shape or pixel size, duplicates, missing wells, metadata",
)
def dataset_qc(study_id: str, repository: RepositoryDep, principal: PrincipalDep) -> dict[str, Any]:
    return datasets.run_dataset_qc(repository, principal, study_id)


class QcThresholdsIn(RequestBody):
    """What a study changes of the default QC thresholds; those left out are the defaults (each with its
    reason in fairimage/model/qc/thresholds.py). Sending ``{}`` goes back to the defaults."""

    empty_std: float | None = Field(default=None, description="a plane is empty at or below this std")
    dark_fraction: float | None = Field(
        default=None, description="dark: max below this fraction of the ceiling"
    )
    saturated_percent: float | None = Field(
        default=None, description="saturated: above this % at the ceiling"
    )
    outlier_z: float | None = Field(default=None, description="outlier: |robust z| above this")
    blur_z: float | None = Field(
        default=None, description="blurred: power log-log slope's robust z below -this"
    )
    min_peers: int | None = Field(default=None, description="peers needed for robust z")
    outlier_metrics: list[str] | None = Field(default=None, description="measures tested for outliers")
    z_prime_min: float | None = Field(default=None, description="poor separation: Z' below this")
    edge_effect: float | None = Field(default=None, description="edge effect beyond this many robust SDs")
    line_effect: float | None = Field(
        default=None, description="row/column effect beyond this many robust SDs"
    )
    pixel_size_tolerance: float | None = Field(default=None, description="pixel sizes agree within this")


@router.get("/api/studies/{study_id}/qc-thresholds", summary="The QC thresholds of a study's plates")
def get_thresholds(study_id: str, repository: RepositoryDep, principal: PrincipalDep) -> dict[str, Any]:
    found = thresholds.study_thresholds(repository, principal, study_id)
    return {"thresholds": asdict(found), "changed": found.changed()}


@router.put(
    "/api/studies/{study_id}/qc-thresholds",
    summary="Set what a study changes of the default QC thresholds (owners, stewards, admins)",
)
def put_thresholds(
    study_id: str, body: QcThresholdsIn, repository: RepositoryDep, principal: PrincipalDep
) -> dict[str, Any]:
    found = thresholds.set_thresholds(repository, principal, study_id, body.model_dump(exclude_none=True))
    return {"thresholds": asdict(found), "changed": found.changed()}


@router.get("/api/qc/plates", summary="Plates whose latest QC report has a Z'-factor below a cut-off")
def plates_below(
    repository: RepositoryDep,
    principal: PrincipalDep,
    z_prime_below: Annotated[float, Query(description="e.g. 0.5: plates with Z' < 0.5")] = 0.5,
) -> dict[str, list[dict[str, Any]]]:
    return {"plates": qc.plates_below(repository, principal, z_prime_below)}


@router.get("/plates/{plate_id}/qc", response_class=HTMLResponse, include_in_schema=False)
def report_page(
    plate_id: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> HTMLResponse:
    plate = plate_service.get_plate(repository, principal, plate_id)
    report = qc.latest_report(repository, principal, plate_id)
    controls = {f"{well.row}{well.column}": well.control for well in plate.wells if well.control}
    flagged = [field for field in report["fields"] if field["flags"] or field["outliers"]]
    key = (report["id"], tuple(sorted(controls.items())))
    plots = _PLOTS.get(key)
    if plots is None:
        plots = {
            "heatmaps": charts.plate_heatmaps(report, list(plate.rows), list(plate.columns)),
            "focus": charts.focus_distribution(report),
            "controls": charts.control_readouts(report, controls),
        }
        _PLOTS.put(key, plots)
    context = {"plate": plate, "report": report, **plots, "flagged": flagged}
    return templates.TemplateResponse(request, "qc_report.html", context)

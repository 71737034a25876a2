from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from fairimage.api.deps import JobsDep, NoBody, PrincipalDep, RepositoryDep
from fairimage.api.jobs import accepted
from fairimage.api.schemas import ImageOut, ImagePageOut, LabelOut
from fairimage.model.errors import ConflictError
from fairimage.services.discovery import images as image_service
from fairimage.services.ingest import register
from fairimage.services.jobs import JobProgress
from fairimage.services.labels import labels

router = APIRouter(prefix="/api/images", tags=["images"])


@router.get("", response_model=ImagePageOut, summary="A page of images; follow `next` as `cursor`")
def list_images(
    request: Request,
    repository: RepositoryDep,
    principal: PrincipalDep,
    study: Annotated[str | None, Query(description="study id or name")] = None,
    limit: Annotated[int, Query(ge=1, le=image_service.MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(description="the `next` value of the previous page")] = None,
) -> ImagePageOut:
    page = image_service.list_images(repository, principal, study=study, limit=limit, cursor=cursor)
    base = str(request.base_url)
    return ImagePageOut(
        items=[ImageOut.of(image, base) for image in page.items], total=page.total, next=page.next
    )


@router.get(
    "/{image_id}",
    response_model=ImageOut,
    summary="One image with its OME-Zarr URL",
    responses={404: {"description": "No such image"}},
)
def get_image(
    image_id: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> ImageOut:
    return ImageOut.of(image_service.get_image(repository, principal, image_id), str(request.base_url))


@router.get(
    "/{image_id}/labels",
    response_model=list[LabelOut],
    summary="An image's label images (segmentation masks): who or what made each, where zarr clients read it",
    responses={404: {"description": "No such image"}},
)
def get_labels(
    image_id: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> list[LabelOut]:
    found = labels.list_labels(repository, principal, image_id)
    return [LabelOut.of(label, str(request.base_url)) for label in found]


@router.get(
    "/{image_id}/dicom",
    summary="A DICOM image's header, de-identified, as the DICOM JSON model (PS3.18 F.2)",
    response_class=JSONResponse,
    responses={
        200: {"content": {"application/dicom+json": {"schema": {"type": "object"}}}},
        404: {"description": "No such image, or not a DICOM image"},
    },
)
def get_dicom_header(image_id: str, repository: RepositoryDep, principal: PrincipalDep) -> JSONResponse:
    header = image_service.dicom_header(repository, principal, image_id)
    return JSONResponse(header, media_type="application/dicom+json")


@router.post(
    "/{image_id}/verification",
    summary="Start checksumming every chunk of a registered image (those who govern its study): 202, the job",
    status_code=202,
    response_class=JSONResponse,
    dependencies=[NoBody],
)
def verify_image(
    image_id: str, repository: RepositoryDep, principal: PrincipalDep, runner: JobsDep
) -> JSONResponse:
    study_id = register.check_verify(repository, principal, image_id)

    def work(progress: JobProgress) -> dict[str, Any]:
        outcome = register.verify_registered(repository, image_id, progress, actor=principal.name)
        if outcome.error:
            raise ConflictError(outcome.error)
        return asdict(outcome)

    return accepted(runner.submit(principal, "register.verify", image_id, study_id, work))

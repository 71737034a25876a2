from __future__ import annotations

from fastapi import APIRouter, Request

from fairimage.api.deps import PrincipalDep, RepositoryDep
from fairimage.api.schemas import StudyOut
from fairimage.services.discovery import images as image_service

router = APIRouter(prefix="/api/studies", tags=["studies"])


def _out(study: object, request: Request) -> StudyOut:
    out = StudyOut.model_validate(study, from_attributes=True)
    return out.model_copy(
        update={"images_url": str(request.url_for("list_images").include_query_params(study=out.id))}
    )


@router.get("", response_model=list[StudyOut], summary="All studies with their image counts")
def list_studies(request: Request, repository: RepositoryDep, principal: PrincipalDep) -> list[StudyOut]:
    return [_out(study, request) for study in image_service.list_studies(repository, principal)]


@router.get(
    "/{study_id}",
    response_model=StudyOut,
    summary="One study, by id or name",
    responses={404: {"description": "No such study"}},
)
def get_study(
    study_id: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> StudyOut:
    return _out(image_service.get_study(repository, principal, study_id), request)

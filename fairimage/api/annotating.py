"""Annotations over HTTP: key=value pairs and tags on studies and images."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from fairimage.api.deps import PrincipalDep, RepositoryDep
from fairimage.api.schemas import RequestBody
from fairimage.services.curation import annotations as annotation_service
from fairimage.services.curation.annotations import MAX_KEY, MAX_VALUE, Change

router = APIRouter(tags=["annotations"])


class AnnotationOut(BaseModel):
    id: str
    target: str
    kind: str
    key: str
    value: str
    created_by: str
    created_at: datetime


class AnnotationsIn(RequestBody):
    pairs: dict[str, str] = Field(default_factory=dict, description="key=value annotations", max_length=100)
    tags: list[str] = Field(default_factory=list, max_length=100)


def _add(
    repository: RepositoryDep, principal: PrincipalDep, target: str, body: AnnotationsIn
) -> list[AnnotationOut]:
    change = Change(tuple(body.pairs.items()), tuple(body.tags))
    added = annotation_service.annotate(repository, principal, target, change)
    return [AnnotationOut(**annotation.__dict__) for annotation in added]


def _list(repository: RepositoryDep, principal: PrincipalDep, target: str) -> list[AnnotationOut]:
    found = annotation_service.annotations_of(repository, principal, target)
    return [AnnotationOut(**annotation.__dict__) for annotation in found]


@router.get(
    "/api/studies/{study_id}/annotations",
    response_model=list[AnnotationOut],
    summary="A study's own annotations and tags",
    responses={404: {"description": "No such study"}},
)
def study_annotations(
    study_id: str, repository: RepositoryDep, principal: PrincipalDep
) -> list[AnnotationOut]:
    return _list(repository, principal, study_id)


@router.post(
    "/api/studies/{study_id}/annotations",
    response_model=list[AnnotationOut],
    status_code=201,
    summary=f"Annotate a study (keys up to {MAX_KEY}, values up to {MAX_VALUE} characters); its governors",
)
def annotate_study(
    study_id: str, body: AnnotationsIn, repository: RepositoryDep, principal: PrincipalDep
) -> list[AnnotationOut]:
    return _add(repository, principal, study_id, body)


@router.get(
    "/api/images/{image_id}/annotations",
    response_model=list[AnnotationOut],
    summary="An image's annotations and tags",
    responses={404: {"description": "No such image"}},
)
def image_annotations(
    image_id: str, repository: RepositoryDep, principal: PrincipalDep
) -> list[AnnotationOut]:
    return _list(repository, principal, image_id)


@router.post(
    "/api/images/{image_id}/annotations",
    response_model=list[AnnotationOut],
    status_code=201,
    summary="Annotate an image; the governors of its study",
)
def annotate_image(
    image_id: str, body: AnnotationsIn, repository: RepositoryDep, principal: PrincipalDep
) -> list[AnnotationOut]:
    return _add(repository, principal, image_id, body)


@router.delete(
    "/api/annotations/{annotation_id}",
    status_code=204,
    response_class=Response,
    summary="Remove an annotation",
)
def remove_annotation(annotation_id: str, repository: RepositoryDep, principal: PrincipalDep) -> Response:
    annotation_service.remove(repository, principal, annotation_id)
    return Response(status_code=204)

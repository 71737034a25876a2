"""Correlative sets over HTTP: made by a study's governors, read by its readers, drawn as overlays, and one
member resampled into the reference's space."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from fairimage.api.deps import PrincipalDep, RendererDep, RepositoryDep
from fairimage.api.tiles import IfNoneMatch, picture_response
from fairimage.model.errors import InvalidInputError
from fairimage.model.viewing.correlative import SetSpec
from fairimage.services.viewing import correlative

router = APIRouter(tags=["correlative sets"])


@router.post(
    "/api/studies/{study_id}/correlative-sets",
    status_code=201,
    summary="Register images of a study into one reference image's space (a matrix or landmarks per member); "
    "its governors",
)
def create_set(
    study_id: str, body: SetSpec, repository: RepositoryDep, principal: PrincipalDep
) -> dict[str, Any]:
    return correlative.create_set(repository, principal, study_id, body).described()


@router.get("/api/studies/{study_id}/correlative-sets", summary="A study's correlative sets")
def list_sets(study_id: str, repository: RepositoryDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    return [found.described() for found in correlative.list_sets(repository, principal, study_id)]


@router.get(
    "/api/correlative-sets/{set_id}",
    summary="A correlative set: its reference, members, their transforms and residuals",
    responses={404: {"description": "No such set, or its study is not readable"}},
)
def get_set(set_id: str, repository: RepositoryDep, principal: PrincipalDep) -> dict[str, Any]:
    return correlative.get_set(repository, principal, set_id).described()


def _opacities(text: str | None) -> dict[str, float]:
    """``IMAGE:0.7,IMAGE:0.2`` as a dict; one line naming the bad item otherwise."""
    found: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        image, _, value = item.partition(":")
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not 0 <= number <= 1:
            raise InvalidInputError(
                f"opacity: {item!r}; write IMAGE:VALUE with a value from 0 to 1, e.g. {image}:0.5"
            )
        found[image.strip()] = number
    return found


@router.get(
    "/api/correlative-sets/{set_id}/overlay",
    summary="The reference with every member drawn over it in its colour, in the reference's space (PNG)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 404: {"description": "No such set"}},
)
def overlay(
    set_id: str,
    renderer: RendererDep,
    principal: PrincipalDep,
    size: Annotated[int, Query(ge=16, le=2048)] = 1024,
    z: Annotated[int | None, Query(ge=0, description="the reference's plane (volumes)")] = None,
    opacity: Annotated[str | None, Query(description="IMAGE:VALUE per member, 0-1 (default 0.5)")] = None,
    region: Annotated[
        str | None, Query(description="x,y,w,h in the reference's level-0 pixels (default: all of it)")
    ] = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    picture = correlative.overlay(
        renderer, principal, set_id, size, z, _opacities(opacity), if_none_match, region
    )
    return picture_response(picture)


@router.get(
    "/api/correlative-sets/{set_id}/images/{image_id}/resampled",
    summary="A member's pixels on the reference's pixel grid, for a region of the reference: float32 TIFF "
    "(values, 0 outside the member) or a rendered PNG",
    response_class=Response,
    responses={200: {"content": {"image/tiff": {}, "image/png": {}}}, 404: {"description": "No such member"}},
)
def resampled(
    set_id: str,
    image_id: str,
    renderer: RendererDep,
    principal: PrincipalDep,
    region: Annotated[str | None, Query(description="x,y,w,h in the reference's level-0 pixels")] = None,
    size: Annotated[int | None, Query(ge=1, le=4096, description="fit into size x size")] = None,
    z: Annotated[int | None, Query(ge=0, description="the reference's plane (volumes)")] = None,
    format: Literal["tiff", "png"] = "tiff",
) -> Response:
    picture = correlative.resampled(renderer, principal, set_id, image_id, region, size, z, format)
    return picture_response(picture)

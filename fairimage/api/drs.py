"""GA4GH DRS 1.5 at /ga4gh/drs/v1: service-info, objects and their access URLs, behind the access service
(bearer tokens as everywhere else; what the caller may not read is a 404)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from fairimage.api.deps import PrincipalDep, RepositoryDep
from fairimage.model.errors import NotFoundError
from fairimage.model.governance.drs import AccessURL, DrsObject
from fairimage.services.federation import locate
from fairimage.services.governance import drs

router = APIRouter(prefix="/ga4gh/drs/v1", tags=["GA4GH DRS"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such object, or not one the caller may read"}
}


@router.get("/service-info", summary="GA4GH service-info for this DRS endpoint")
def service_info(request: Request, repository: RepositoryDep, principal: PrincipalDep) -> dict[str, object]:
    return drs.service_info(repository, principal, str(request.base_url))


@router.get(
    "/objects/{object_id}", response_model=DrsObject, response_model_exclude_none=True, responses=NOT_FOUND
)
def get_object(
    object_id: str,
    request: Request,
    repository: RepositoryDep,
    principal: PrincipalDep,
    expand: Annotated[bool, Query(description="nest each image's contents in a study bundle")] = False,
) -> DrsObject | RedirectResponse:
    try:
        return drs.get_object(
            repository, principal, object_id, request.url.netloc, str(request.base_url), expand
        )
    except NotFoundError:  # a peer's object: the same request there (307 keeps it as it is)
        path = f"/ga4gh/drs/v1/objects/{object_id}" + (f"?{request.url.query}" if request.url.query else "")
        elsewhere = locate.holder(repository, object_id, path, request.headers)
        if elsewhere is None:
            raise
        return RedirectResponse(elsewhere, status_code=307)


@router.get(
    "/objects/{object_id}/access/{access_id}",
    response_model=AccessURL,
    summary="A URL that serves the object's bytes (send the same bearer token there)",
    responses=NOT_FOUND,
)
def get_access_url(
    object_id: str, access_id: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> AccessURL:
    return drs.access_url(repository, principal, object_id, access_id, str(request.base_url))

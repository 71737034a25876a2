"""Share links over HTTP: those who govern a study make, list and revoke them; whoever holds one opens it
in a browser at ``/s/SECRET`` (a cookie keeps it for the pages and the viewer), or reads with it as a bearer
token or under ``/s/SECRET/...`` (zarr clients)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from fairimage.api.deps import SHARE_COOKIE, NoBody, PrincipalDep, RepositoryDep, origin_of
from fairimage.api.pages import not_found_page
from fairimage.api.schemas import RequestBody
from fairimage.model.errors import FairimageError
from fairimage.services.sharing import links

router = APIRouter(tags=["sharing"])


class ShareLinkIn(RequestBody):
    days: int = Field(default=30, ge=1, le=links.MAX_DAYS, description="how long the link works")
    note: str = Field(default="", max_length=255, description="who it is for, e.g. 'reviewers, Nature'")
    blind: bool = Field(default=False, description="double-blind review: authors' and owners' names hidden")
    version: int | None = Field(
        default=None, ge=1, description="share this version only (its images and metadata), not the study"
    )
    uses: int | None = Field(
        default=None, ge=1, le=links.MAX_USES, description="how many client addresses may use it"
    )


@router.post(
    "/api/studies/{study_id}/share-links",
    status_code=201,
    summary="Make a read-only link to a study (owners, stewards, admins); its secret is shown once",
)
def create(
    study_id: str, body: ShareLinkIn, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> dict[str, Any]:
    options = links.LinkOptions(body.days, body.note, body.blind, body.version, body.uses)
    link, secret = links.create_link(repository, principal, study_id, options)
    return {**asdict(link), "secret": secret, "url": f"{request.base_url}s/{secret}"}


@router.get("/api/studies/{study_id}/share-links", summary="A study's share links (owners, stewards, admins)")
def listing(study_id: str, repository: RepositoryDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    return [asdict(link) for link in links.list_links(repository, principal, study_id)]


@router.delete(
    "/api/share-links/{link_id}",
    summary="Revoke a share link: it stops working at once",
    dependencies=[NoBody],
)
def revoke(link_id: str, repository: RepositoryDep, principal: PrincipalDep) -> dict[str, Any]:
    return asdict(links.revoke_link(repository, principal, link_id))


@router.get("/s/{secret}", response_class=HTMLResponse, include_in_schema=False)
async def open_link(secret: str, request: Request, repository: RepositoryDep) -> Response:
    """A share link opened in a browser: remembered in a cookie, then the study's page (or the version's)."""
    try:
        principal, expires = await run_in_threadpool(
            links.link_expiry, repository, secret, origin_of(request)
        )
    except FairimageError as exc:
        return not_found_page(request, f"This share link cannot be opened: {exc.message}.")
    study_id = next(iter(principal.granted_studies))
    shown = principal.shown_version(study_id)
    page = f"/studies/{study_id}" if shown is None else f"/studies/{study_id}/versions/{shown}"
    response = RedirectResponse(page, status_code=303)
    seconds = int((expires - datetime.now(UTC)).total_seconds()) if expires else None
    response.set_cookie(
        SHARE_COOKIE,
        secret,
        max_age=seconds,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response

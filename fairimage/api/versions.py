"""A study's history over HTTP: versions, differences, publication, descriptions, the provenance of its
images, and the resolver of persistent identifiers (``/pid/{id}``)."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from fairimage.api.deps import NoBody, PrincipalDep, RepositoryDep
from fairimage.api.schemas import RequestBody
from fairimage.model.errors import NotFoundError
from fairimage.model.governance.policy import Principal
from fairimage.model.governance.version import Version, VersionContent, VersionDiff
from fairimage.services.datasets import datasets
from fairimage.services.discovery import exports, linked_data, pids
from fairimage.services.federation import locate
from fairimage.services.governance import policies, provenance, versions
from fairimage.services.models import models
from fairimage.services.repository import Repository

router = APIRouter(tags=["versions and provenance"])
JSON_LD = "application/ld+json"
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1, description="the version's number")]


class VersionOut(BaseModel):
    id: str = Field(description="the version's persistent identifier")
    pid_url: str
    study_id: str
    study_name: str
    number: int
    created_at: datetime
    created_by: str
    note: str
    content_sha256: str = Field(description="sha256 of the content as canonical JSON (sorted keys)")
    intact: bool = Field(description="whether the stored content still matches content_sha256")
    published_at: datetime | None
    published_by: str | None
    citation: str | None = Field(description="how to cite it, once published")
    image_count: int
    stored_bytes: int

    @classmethod
    def of(cls, version: Version, request: Request) -> VersionOut:
        url = pid_url(request, version.id)
        fields = version.model_dump(exclude={"content"})
        return cls(**fields, pid_url=url, citation=version.citation(url) if version.published else None)


class VersionDetailOut(VersionOut):
    content: VersionContent


class DescriptionIn(RequestBody):
    description: str = Field(max_length=20_000)


def pid_url(request: Request, pid: str) -> str:
    return str(request.url_for("resolve_pid", pid=pid))


@router.get(
    "/api/studies/{study_id}/versions",
    response_model=list[VersionOut],
    summary="A study's versions, oldest first",
    responses={404: {"description": "No such study"}},
)
def list_versions(
    study_id: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> list[VersionOut]:
    return [VersionOut.of(v, request) for v in versions.list_versions(repository, principal, study_id)]


@router.get(
    "/api/studies/{study_id}/versions/{number}",
    response_model=VersionDetailOut,
    summary="One version: its metadata and the manifest of its images with their checksums",
    responses={404: {"description": "No such study or version"}},
)
def get_version(
    study_id: str, number: VersionNumber, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> VersionDetailOut:
    version = versions.get_version(repository, principal, study_id, number)
    return VersionDetailOut(**VersionOut.of(version, request).model_dump(), content=version.content)


@router.get(
    "/api/studies/{study_id}/diff",
    response_model=VersionDiff,
    summary="What changed between two versions",
    responses={404: {"description": "No such study or version"}},
)
def diff(
    study_id: str,
    repository: RepositoryDep,
    principal: PrincipalDep,
    before: Annotated[int, Query(ge=1, le=2**31 - 1, description="the earlier version's number")],
    after: Annotated[int, Query(ge=1, le=2**31 - 1, description="the later version's number")],
) -> VersionDiff:
    return versions.diff(repository, principal, study_id, before, after)


@router.post(
    "/api/studies/{study_id}/versions/{number}/publish",
    response_model=VersionOut,
    summary="Publish (freeze for citing) a version; owners, data stewards and admins",
    responses={404: {"description": "No such study or version"}, 409: {"description": "Published already"}},
    dependencies=[NoBody],
)
def publish(
    study_id: str, number: VersionNumber, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> VersionOut:
    return VersionOut.of(versions.publish(repository, principal, study_id, number), request)


@router.put(
    "/api/studies/{study_id}/description",
    response_model=VersionOut,
    summary="Set a study's description (a new version); owners, data stewards and admins",
)
def describe(
    study_id: str, body: DescriptionIn, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> VersionOut:
    policies.describe_study(repository, principal, study_id, body.description)
    return VersionOut.of(versions.get_version(repository, principal, study_id, None), request)


@router.get(
    "/api/images/{image_id}/provenance",
    summary="The image's provenance as W3C PROV-O JSON-LD",
    response_class=JSONResponse,
    responses={
        200: {"content": {JSON_LD: {"schema": {"type": "object"}}}},
        404: {"description": "No such image"},
    },
)
def image_provenance(
    image_id: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> JSONResponse:
    base = str(request.url_for("resolve_pid", pid="_")).removesuffix("_")
    document = provenance.image_provenance(repository, principal, image_id, base)
    return JSONResponse(document, media_type=JSON_LD)


@router.get(
    "/pid/{pid}",
    summary="Resolve a persistent identifier: the landing page for browsers, JSON for machines",
    status_code=303,
    response_class=RedirectResponse,
    responses={303: {"description": "Where the identified thing is"}, 404: {"description": "Unknown"}},
)
def resolve_pid(
    pid: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> RedirectResponse:
    try:
        location = _here(repository, principal, pid, _negotiate(request.headers.get("accept", "")))
    except NotFoundError:
        elsewhere = locate.holder(repository, pid, f"/pid/{pid}", request.headers)
        if elsewhere is None:
            raise
        location = elsewhere  # a peer's: its PID there
    return RedirectResponse(location, status_code=303, headers={"Vary": "Accept"})


def _here(repository: Repository, principal: Principal, pid: str, wanted: str) -> str:
    """Where what ``pid`` names is on this node (a harvested study: its PID at its node)."""
    if pid.startswith("model-"):
        model = models.get_model(repository, principal, pid).id
        location = {"html": f"/models/{model}", "jsonld": f"/api/models/{model}/jsonld"}.get(
            wanted, f"/api/models/{model}"
        )
    elif pid.startswith("ds-"):
        dataset = datasets.find_dataset(repository, principal, pid)
        api = f"/api/datasets/{dataset.name}/{dataset.version}"
        location = {"jsonld": f"{api}/croissant.json", "html": f"{api}/README.md"}.get(wanted, api)
    else:
        location = _location(pids.resolve(repository, principal, pid), wanted)
    return location


def _location(found: pids.Resolved, wanted: str) -> str:
    """The page (html), the API's JSON (json) or schema.org JSON-LD (jsonld) of what a PID names; the
    PID at its node of what another node holds."""
    if found.url is not None:
        return found.url
    if found.kind == "version":
        api = "/api" if wanted != "html" else ""
        return f"{api}/studies/{found.study_id}/versions/{found.version}"
    path = f"/studies/{found.study_id}" if found.kind == "study" else f"/images/{found.image_id}"
    if wanted == "jsonld":
        return f"/api{path}/jsonld"
    return f"/api{path}" if wanted == "json" else path


def _negotiate(accept: str) -> str:
    """Content negotiation, simply: the first of HTML, JSON-LD or JSON the Accept header names."""
    kinds: list[Any] = [part.split(";")[0].strip() for part in accept.split(",")]
    for kind in kinds:
        if kind == JSON_LD:
            return "jsonld"
        if kind == "application/json":
            return "json"
        if kind in ("text/html", "application/xhtml+xml"):
            return "html"
    return "html"


@router.get(
    "/api/studies/{study_id}/jsonld",
    summary="The study as schema.org JSON-LD (a Dataset)",
    response_class=JSONResponse,
    responses={
        200: {"content": {JSON_LD: {"schema": {"type": "object"}}}},
        404: {"description": "No such study"},
    },
)
def study_jsonld(
    study_id: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> JSONResponse:
    document = linked_data.study_dataset(repository, principal, study_id, str(request.base_url))
    return JSONResponse(document, media_type=JSON_LD)


@router.get(
    "/api/images/{image_id}/jsonld",
    summary="The image as schema.org JSON-LD (an ImageObject)",
    response_class=JSONResponse,
    responses={
        200: {"content": {JSON_LD: {"schema": {"type": "object"}}}},
        404: {"description": "No such image"},
    },
)
def image_jsonld(
    image_id: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> JSONResponse:
    document = linked_data.image_object(repository, principal, image_id, str(request.base_url))
    return JSONResponse(document, media_type=JSON_LD)


@router.get(
    "/api/studies/{study_id}/export/{kind}",
    summary="Export a study: ro-crate (a zip, images linked), datacite (DataCite 4.5 JSON) or rembi-json",
    responses={
        200: {"content": {"application/zip": {}, "application/json": {"schema": {"type": "object"}}}},
        400: {"description": "Not an export kind"},
        404: {"description": "No such study"},
    },
)
def export_study(
    study_id: str,
    kind: str,
    request: Request,
    repository: RepositoryDep,
    principal: PrincipalDep,
    version: Annotated[
        int | None, Query(ge=1, description="DataCite: one published version's record (its own DOI)")
    ] = None,
) -> Response:
    with tempfile.TemporaryDirectory(prefix="fairimage-export-") as folder:
        target = FilePath(folder) / {"ro-crate": "crate.zip", "datacite-xml": "export.xml"}.get(
            kind, "export.json"
        )
        exports.export(repository, principal, study_id, kind, target, str(request.base_url), version=version)
        body = target.read_bytes()
    if kind == "ro-crate":
        disposition = f'attachment; filename="{study_id}-ro-crate.zip"'
        return Response(body, media_type="application/zip", headers={"Content-Disposition": disposition})
    return Response(body, media_type="application/xml" if kind == "datacite-xml" else "application/json")

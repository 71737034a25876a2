"""REMBI metadata over HTTP: a study's metadata with what its files said and its FAIR score, saving it
(owners, data stewards, admins), and validating a document without saving."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from fairimage.api.deps import PrincipalDep, RepositoryDep
from fairimage.services.curation import study_metadata

router = APIRouter(tags=["metadata"])
Document = Body(description="REMBI metadata, as 'fairimage template rembi' lays it out, in JSON")


@router.get(
    "/api/studies/{study_id}/metadata",
    summary="A study's REMBI metadata, the image data its files gave (extracted), problems and FAIR score",
    responses={404: {"description": "No such study"}},
)
def get_metadata(study_id: str, repository: RepositoryDep, principal: PrincipalDep) -> dict[str, Any]:
    return study_metadata.get_metadata(repository, principal, study_id).to_dict()


@router.put(
    "/api/studies/{study_id}/metadata",
    summary="Save a study's REMBI metadata (a new version); owners, data stewards and admins",
    responses={
        404: {"description": "No such study"},
        422: {"description": "Wrong values: every problem, one line each"},
    },
)
def set_metadata(
    study_id: str,
    repository: RepositoryDep,
    principal: PrincipalDep,
    document: dict[str, Any] = Document,
) -> Any:
    try:
        study_metadata.set_metadata(repository, principal, study_id, document)
    except study_metadata.MetadataError as exc:
        body = {"error": {"code": exc.code, "message": exc.message}, **exc.report.to_dict()}
        return JSONResponse(body, status_code=422)
    return study_metadata.get_metadata(repository, principal, study_id).to_dict()


@router.post("/api/metadata/validate", summary="Check REMBI metadata without saving it")
def validate(document: dict[str, Any] = Document) -> dict[str, Any]:
    return study_metadata.validate(document).to_dict()


@router.get(
    "/api/studies/{study_id}/fair-score",
    summary="A study's FAIR completeness score (0-100) and what would raise it",
    responses={404: {"description": "No such study"}},
)
def fair_score(study_id: str, repository: RepositoryDep, principal: PrincipalDep) -> dict[str, Any]:
    return study_metadata.get_metadata(repository, principal, study_id).score.to_dict()

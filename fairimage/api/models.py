"""Trained models over HTTP: their cards (JSON, schema.org/FAIR4ML JSON-LD, a page), and their stored files.
What a card says of a model's data is what the caller may see: datasets they may not read are never named."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from fairimage.api.deps import PrincipalDep, RepositoryDep
from fairimage.api.pages import templates
from fairimage.model.models import DataLink, Model, ModelCard
from fairimage.services.models import models

router = APIRouter(tags=["models"])
_MISSING: dict[int | str, dict[str, Any]] = {404: {"description": "No such model"}}
JSON_LD = "application/ld+json"
FILE_TYPES = {"package.zip": "application/zip", "rdf.yaml": "application/yaml"}


class ModelOut(BaseModel):
    id: str
    name: str
    version: str
    kind: Literal["bioimageio", "card"]
    card: ModelCard
    registered_by: str
    created_at: str | None
    package_sha256: str
    files: list[str]
    data: list[dict[str, Any]]
    trained_on_public_data: bool
    training_data: str

    @classmethod
    def of(cls, model: Model) -> ModelOut:
        created = model.created_at.isoformat() if model.created_at else None
        links = [_link(link) for link in model.data]
        return cls.model_validate(models.summary(model) | {"created_at": created, "data": links})


class ModelListOut(BaseModel):
    items: list[ModelOut]


def _link(link: DataLink) -> dict[str, Any]:
    return asdict(link) | {"pid": f"/pid/{link.dataset_id}"}


@router.get("/api/models", response_model=ModelListOut, summary="Registered models, newest first")
def list_models(repository: RepositoryDep, principal: PrincipalDep) -> ModelListOut:
    return ModelListOut(items=[ModelOut.of(m) for m in models.list_models(repository, principal)])


@router.get("/api/models/{model_id}", response_model=ModelOut, summary="A model's card", responses=_MISSING)
def get_model(model_id: str, repository: RepositoryDep, principal: PrincipalDep) -> ModelOut:
    return ModelOut.of(models.get_model(repository, principal, model_id))


@router.get(
    "/api/models/{model_id}/jsonld",
    summary="A model as schema.org JSON-LD in RDA FAIR4ML's terms (fair4ml:MLModel)",
    response_class=JSONResponse,
    responses={200: {"content": {JSON_LD: {}}}, **_MISSING},
)
def model_jsonld(
    model_id: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> JSONResponse:
    model = models.get_model(repository, principal, model_id)
    return JSONResponse(models.model_jsonld(model, str(request.base_url)), media_type=JSON_LD)


@router.get(
    "/api/models/{model_id}/files/{name}",
    summary="A stored file of the model: package.zip (the bioimage.io package), rdf.yaml, or its card",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, **_MISSING},
)
def model_file(model_id: str, name: str, repository: RepositoryDep, principal: PrincipalDep) -> Response:
    data = models.model_file(repository, principal, model_id, name)
    media = FILE_TYPES.get(name, "application/json" if name.endswith(".json") else "application/yaml")
    return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/models", response_class=HTMLResponse, include_in_schema=False)
def models_page(request: Request, repository: RepositoryDep, principal: PrincipalDep) -> HTMLResponse:
    found = models.list_models(repository, principal)
    return templates.TemplateResponse(request, "models.html", {"models": found})


@router.get("/models/{model_id}", response_class=HTMLResponse, include_in_schema=False)
def model_page(
    model_id: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> HTMLResponse:
    """A model card: what it is for and where it fails, its metrics, and the data it learnt from."""
    model = models.get_model(repository, principal, model_id)
    context = {"model": model, "jsonld": models.model_jsonld(model, str(request.base_url))}
    return templates.TemplateResponse(request, "model.html", context)

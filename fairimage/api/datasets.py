"""Datasets for machine learning over HTTP: versions with their items and splits, the leak check, and the
export's files (Croissant 1.1, items.csv, the dataset card), for those who may read every study in them."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel

from fairimage.api.deps import PrincipalDep, RepositoryDep
from fairimage.api.schemas import RequestBody
from fairimage.services.datasets import datasets, exports

router = APIRouter(prefix="/api/datasets", tags=["datasets"])
_MISSING: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such dataset, or one over a study the caller may not read"}
}
VersionPath = Annotated[int, Path(ge=1, description="the dataset's version")]


class DatasetListOut(BaseModel):
    items: list[datasets.Dataset]


class DatasetCheckOut(BaseModel):
    dataset: str
    ok: bool
    leaks: list[str]
    duplicates: list[str]
    balance: dict[str, dict[str, int]]


@router.get("", response_model=DatasetListOut, summary="Dataset versions the caller may read (no items)")
def list_datasets(repository: RepositoryDep, principal: PrincipalDep) -> DatasetListOut:
    found = datasets.list_datasets(repository, principal)
    return DatasetListOut(items=found)


@router.get(
    "/{name}",
    response_model=datasets.Dataset,
    summary="A dataset's latest version, every item with its split",
    responses=_MISSING,
)
def latest_dataset(name: str, repository: RepositoryDep, principal: PrincipalDep) -> datasets.Dataset:
    return datasets.get_dataset(repository, principal, name)


@router.get(
    "/{name}/{version}",
    response_model=datasets.Dataset,
    summary="One version of a dataset",
    responses=_MISSING,
)
def dataset_version(
    name: str, version: VersionPath, repository: RepositoryDep, principal: PrincipalDep
) -> datasets.Dataset:
    return datasets.get_dataset(repository, principal, name, version)


@router.get(
    "/{name}/{version}/check",
    response_model=DatasetCheckOut,
    summary="Leaks (a group or the same pixels in two splits) and the balance of each split",
    responses=_MISSING,
)
def check_dataset(
    name: str, version: VersionPath, repository: RepositoryDep, principal: PrincipalDep
) -> DatasetCheckOut:
    dataset, report = datasets.check_dataset(repository, principal, name, version)
    return DatasetCheckOut(dataset=dataset.id, ok=report.ok, **asdict(report))


class CardNotesIn(RequestBody):
    """What people write on a dataset version's card; a field left out stays as it is, "" clears it."""

    description: str | None = None
    intended_uses: str | None = None
    limitations: str | None = None
    biases: str | None = None


@router.patch(
    "/{name}/{version}/card",
    response_model=datasets.Dataset,
    summary="Write on a dataset version's card (its maker, a steward or an admin); its items never change",
    responses={**_MISSING, 403: {"description": "Not the dataset's maker, a steward or an admin"}},
)
def describe_dataset(
    name: str, version: VersionPath, body: CardNotesIn, repository: RepositoryDep, principal: PrincipalDep
) -> datasets.Dataset:
    return datasets.describe_dataset(
        repository, principal, name, version, body.model_dump(exclude_unset=True)
    )


@router.get(
    "/{name}/{version}/{document}",
    summary="A file of the dataset's export: croissant.json (Croissant 1.1), items.csv, card.json, "
    "README.md, ro-crate-metadata.json (RO-Crate 1.3)",
    response_class=Response,
    responses={200: {"content": {media: {} for media in exports.DOCUMENTS.values()}}, **_MISSING},
)
def dataset_document(
    name: str,
    version: VersionPath,
    document: Literal["croissant.json", "items.csv", "card.json", "README.md", "ro-crate-metadata.json"],
    request: Request,
    repository: RepositoryDep,
    principal: PrincipalDep,
) -> Response:
    files = exports.dataset_documents(
        repository, principal, name, version, str(request.base_url), served=True
    )
    return Response(files[document], media_type=exports.DOCUMENTS[document])

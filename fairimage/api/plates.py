"""High-content screening plates: listed, each with its wells (treatments, fields) and its OME-Zarr URL,
which ome-zarr-py's plate reader and zarr-python open as an OME-NGFF plate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from fairimage.api.deps import PrincipalDep, RepositoryDep
from fairimage.model.plates.plate import Plate
from fairimage.services.plates import plates as plate_service

router = APIRouter(prefix="/api/plates", tags=["plates"])


class PlateOut(Plate):
    ome_zarr_url: str

    @classmethod
    def of(cls, plate: Plate, base_url: str) -> PlateOut:
        return cls(**plate.model_dump(), ome_zarr_url=f"{base_url}zarr/{plate.id}.ome.zarr")


class PlateListOut(BaseModel):
    items: list[PlateOut]


@router.get("", response_model=PlateListOut, summary="Plates (newest first)")
def list_plates(
    request: Request,
    repository: RepositoryDep,
    principal: PrincipalDep,
    study: Annotated[str | None, Query(description="study id or name")] = None,
) -> PlateListOut:
    found = plate_service.list_plates(repository, principal, study)
    return PlateListOut(items=[PlateOut.of(plate, str(request.base_url)) for plate in found])


@router.get(
    "/{plate_id}",
    response_model=PlateOut,
    summary="One plate: geometry, channels, wells with their treatments and field images",
    responses={404: {"description": "No such plate"}},
)
def get_plate(
    plate_id: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> PlateOut:
    return PlateOut.of(plate_service.get_plate(repository, principal, plate_id), str(request.base_url))

"""Plates as the services hand them to interfaces: geometry, wells with their treatments and fields."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class WellFields(BaseModel):
    """A well: what the platemap says of it, and its field images in order."""

    model_config = ConfigDict(frozen=True)

    row: str
    column: str
    compound: str | None = None
    concentration: float | None = None
    concentration_unit: str | None = None
    control: str | None = None
    replicate: int | None = None
    extra: dict[str, str] | None = None
    images: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.row}{self.column}"


class Plate(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    study_id: str
    study_name: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    channels: tuple[dict[str, Any], ...]
    field_count: int
    layout: str
    missing: tuple[str, ...]
    created_at: datetime | None = None
    wells: tuple[WellFields, ...] = ()

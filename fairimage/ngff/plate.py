"""OME-NGFF 0.5 high-content screening layout: the ``plate`` attributes of a plate group and the ``well``
attributes of its well groups (plate -> row -> column -> field images), as zarr v3 group documents."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

NGFF_VERSION = "0.5"


@dataclass(frozen=True)
class PlacedField:
    """A stored field image's place in its plate: the well's row and column names, and its index there."""

    row: str
    column: str
    field: int
    acquisition: int = 0

    @property
    def well_path(self) -> str:
        return f"{self.row}/{self.column}"

    @property
    def path(self) -> str:
        return f"{self.row}/{self.column}/{self.field}"


@dataclass(frozen=True)
class PlateAcquisition:
    id: int
    name: str = ""
    starttime: int | None = None  # epoch seconds, as the spec asks
    endtime: int | None = None


def plate_attributes(
    name: str,
    rows: Sequence[str],
    columns: Sequence[str],
    fields: Sequence[PlacedField],
    acquisitions: Sequence[PlateAcquisition] = (),
) -> dict[str, Any]:
    """The plate group's attributes. Only wells that hold a field are listed (OME-NGFF 0.5, "plate": a well
    is listed if it exists); rows and columns keep the whole geometry so a viewer draws the full grid."""
    wells = sorted(
        {(f.row, f.column) for f in fields}, key=lambda rc: (rows.index(rc[0]), columns.index(rc[1]))
    )
    per_well: dict[tuple[str, str], int] = {}
    for placed in fields:
        per_well[(placed.row, placed.column)] = per_well.get((placed.row, placed.column), 0) + 1
    plate: dict[str, Any] = {
        "name": name,
        "rows": [{"name": row} for row in rows],
        "columns": [{"name": column} for column in columns],
        "wells": [
            {"path": f"{row}/{column}", "rowIndex": rows.index(row), "columnIndex": columns.index(column)}
            for row, column in wells
        ],
        "field_count": max(per_well.values(), default=1),
        # The 0.5 spec states the version once, under "ome"; ome-zarr-models still looks for it here too.
        "version": NGFF_VERSION,
    }
    if acquisitions:
        plate["acquisitions"] = [_acquisition_json(acquisition, fields) for acquisition in acquisitions]
    return {"ome": {"version": NGFF_VERSION, "plate": plate}}


def well_attributes(fields: Sequence[PlacedField]) -> dict[str, Any]:
    """A well group's attributes: its field images in order, each with its acquisition."""
    images = [
        {"path": str(f.field), "acquisition": f.acquisition} for f in sorted(fields, key=lambda f: f.field)
    ]
    return {"ome": {"version": NGFF_VERSION, "well": {"images": images}}}


def group_document(attributes: dict[str, Any] | None = None) -> bytes:
    """A zarr v3 group's ``zarr.json``."""
    document: dict[str, Any] = {"zarr_format": 3, "node_type": "group", "attributes": attributes or {}}
    return json.dumps(document, indent=2).encode()


def _acquisition_json(acquisition: PlateAcquisition, fields: Sequence[PlacedField]) -> dict[str, Any]:
    counts: dict[tuple[str, str], int] = {}
    for placed in fields:
        if placed.acquisition == acquisition.id:
            counts[(placed.row, placed.column)] = counts.get((placed.row, placed.column), 0) + 1
    entry: dict[str, Any] = {"id": acquisition.id, "maximumfieldcount": max(counts.values(), default=1)}
    if acquisition.name:
        entry["name"] = acquisition.name
    if acquisition.starttime is not None:
        entry["starttime"] = acquisition.starttime
    if acquisition.endtime is not None:
        entry["endtime"] = acquisition.endtime
    return entry

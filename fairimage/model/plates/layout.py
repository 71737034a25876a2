"""High-content screening plates as fairimage understands them, whatever the vendor: the plate's geometry,
its wells, the fields imaged in each and which file holds each plane. Pure data and rules."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from fairimage.model.errors import InvalidInputError

# Standard plate formats (ANSI/SLAS 1-2004): wells -> (rows, columns).
FORMATS: dict[int, tuple[int, int]] = {
    6: (2, 3), 12: (3, 4), 24: (4, 6), 48: (6, 8), 96: (8, 12), 384: (16, 24), 1536: (32, 48),
}  # fmt: skip
PLATE_ID_PREFIX = "plate-"  # plate ids look like plate-01a2...; image ids img-...
_WELL = re.compile(r"^([A-Za-z]{1,2})[-_ ]?0*(\d{1,3})$")


@dataclass(frozen=True)
class Geometry:
    """Rows and columns of a plate; rows are named A..Z, AA..AF (1536 wells), columns 1..N."""

    rows: int
    columns: int

    @classmethod
    def of_format(cls, wells: int) -> Geometry:
        if wells not in FORMATS:
            formats = ", ".join(str(count) for count in FORMATS)
            raise InvalidInputError(f"--wells {wells}: not a standard plate format; use one of {formats}")
        return cls(*FORMATS[wells])

    @classmethod
    def enclosing(cls, positions: list[tuple[int, int]], smallest: int = 96) -> Geometry:
        """The smallest standard plate, of at least ``smallest`` wells (screens rarely use fewer), that has
        every (row, column) in ``positions``."""
        rows = max((r for r, _ in positions), default=0) + 1
        columns = max((c for _, c in positions), default=0) + 1
        for count, (r, c) in sorted(FORMATS.items()):
            if count >= smallest and r >= rows and c >= columns:
                return cls(r, c)
        raise InvalidInputError(
            f"wells reach row {row_name(rows - 1)} and column {columns}: larger than a 1536-well plate"
        )

    @property
    def row_names(self) -> list[str]:
        return [row_name(index) for index in range(self.rows)]

    @property
    def column_names(self) -> list[str]:
        return [str(index + 1) for index in range(self.columns)]

    def contains(self, row: int, column: int) -> bool:
        return 0 <= row < self.rows and 0 <= column < self.columns


def row_name(index: int) -> str:
    """A, B, ..., Z, AA, AB, ...: row names as plates are labelled."""
    letters = string.ascii_uppercase
    return letters[index] if index < 26 else letters[index // 26 - 1] + letters[index % 26]


def row_index(name: str) -> int:
    name = name.upper()
    if len(name) == 1:
        return string.ascii_uppercase.index(name)
    return (string.ascii_uppercase.index(name[0]) + 1) * 26 + string.ascii_uppercase.index(name[1])


def parse_well(text: str) -> tuple[int, int]:
    """A well name (A1, A01, B-12, AF48) as 0-based (row, column); InvalidInputError if it is not one."""
    match = _WELL.match(text.strip())
    if match is None or int(match[2]) < 1:
        raise InvalidInputError(f"{text!r} is not a well name (a row letter and a column number, e.g. B07)")
    return row_index(match[1]), int(match[2]) - 1


def well_name(row: int, column: int) -> str:
    return f"{row_name(row)}{column + 1}"


@dataclass(frozen=True)
class PlateChannel:
    name: str
    emission_nm: float | None = None
    excitation_nm: float | None = None


@dataclass(frozen=True)
class Plane:
    """Where one (channel, z, t) plane of a field is: a file, and the page in it for multi-page files."""

    path: Path
    page: int = 0


@dataclass(frozen=True)
class Field:
    """One field of view of one well, at one acquisition: its planes by (channel, z, t), 0-based."""

    row: int
    column: int
    index: int
    planes: dict[tuple[int, int, int], Plane]
    acquisition: int = 0
    position_um: tuple[float, float] | None = None  # stage position of the field's centre, if known

    @property
    def well(self) -> str:
        return well_name(self.row, self.column)


@dataclass(frozen=True)
class PixelSize:
    x: float
    y: float
    z: float | None = None
    unit: str = "micrometer"


@dataclass(frozen=True)
class PlateLayout:
    """A plate as read from a vendor's folder: everything needed to store it, and what was missing."""

    name: str
    kind: str  # which layout it was read as: "imagexpress", "harmony", "pattern"
    geometry: Geometry
    channels: tuple[PlateChannel, ...]
    fields: tuple[Field, ...]
    z_planes: int = 1
    timepoints: int = 1
    pixel_size: PixelSize | None = None
    acquisitions: tuple[str, ...] = ("",)  # names, by acquisition id
    missing: tuple[str, ...] = field(default=())  # what the layout expected and no file holds

    @property
    def wells(self) -> list[tuple[int, int]]:
        return sorted({(f.row, f.column) for f in self.fields})

    def planes_expected(self) -> int:
        return len(self.channels) * self.z_planes * self.timepoints


def check_fields(fields: list[Field], geometry: Geometry, channels: int, z: int, t: int) -> list[str]:
    """Refuse fields outside the plate; list (c, z, t) planes a field lacks as missing, never invented."""
    missing = []
    for item in fields:
        if not geometry.contains(item.row, item.column):
            plane = next(iter(item.planes.values()))
            wells = geometry.rows * geometry.columns
            raise InvalidInputError(
                f"{plane.path}: well {item.well} is outside the {wells}-well plate ({geometry.rows} rows x "
                f"{geometry.columns} columns); check the plate format (--wells) or the file name"
            )
        lacking = [key for key in _all_planes(channels, z, t) if key not in item.planes]
        if lacking:
            c, zz, tt = lacking[0]
            missing.append(
                f"{item.well} field {item.index + 1}: {len(lacking)} plane(s) missing, e.g. channel {c + 1}"
                + (f" z {zz + 1}" if z > 1 else "") + (f" t {tt + 1}" if t > 1 else "")
            )  # fmt: skip
    return missing


def _all_planes(channels: int, z: int, t: int) -> list[tuple[int, int, int]]:
    return [(c, zz, tt) for c in range(channels) for zz in range(z) for tt in range(t)]


def missing_wells(geometry: Geometry, present: set[tuple[int, int]]) -> list[str]:
    """Wells of the plate with no field at all, for the record (a screen often leaves wells empty)."""
    absent = [
        well_name(r, c)
        for r in range(geometry.rows)
        for c in range(geometry.columns)
        if (r, c) not in present
    ]
    if not absent:
        return []
    shown = ", ".join(absent[:12]) + (" ..." if len(absent) > 12 else "")
    return [f"{len(absent)} well(s) without images: {shown}"]

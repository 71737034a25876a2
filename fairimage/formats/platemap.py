"""Platemaps as screens keep them: a CSV or Excel sheet with a row per well (well, compound or treatment,
concentration and unit, control type, replicate). Column names are matched loosely; other columns are kept."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

from fairimage.model.errors import InvalidInputError
from fairimage.model.plates.layout import Geometry, parse_well, well_name
from fairimage.model.plates.platemap import CONTROLS, Control, Treatment

_COLUMNS = {
    "well": ("well", "wellname", "well_name", "wellid", "position"),
    "compound": ("compound", "treatment", "compoundname", "compound_name", "drug", "perturbation", "sirna"),
    "concentration": ("concentration", "conc", "dose", "concentration_value"),
    "unit": ("unit", "units", "conc_unit", "concentration_unit", "concentrationunit"),
    "control": ("control", "control_type", "controltype", "type", "welltype", "role"),
    "replicate": ("replicate", "rep", "replicate_number"),
}
_CONTROL_WORDS: dict[str, Control] = {
    "positive": "positive", "pos": "positive", "positive control": "positive", "pc": "positive",
    "negative": "negative", "neg": "negative", "negative control": "negative", "nc": "negative",
    "neutral": "neutral", "vehicle": "neutral", "dmso": "neutral", "mock": "neutral",
}  # fmt: skip
_DOSE = re.compile(r"^\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*([A-Za-zµ%/]+)?\s*$")


def read_platemap(path: Path, geometry: Geometry) -> list[Treatment]:
    """The wells of a platemap, checked against the plate's geometry; errors name the file, row and column."""
    rows = list(_rows(path))
    if not rows:
        raise InvalidInputError(f"{path}: the platemap is empty; it needs a header row and a row per well")
    header = rows[0]
    where = {key: _find(header, names) for key, names in _COLUMNS.items()}
    if where["well"] is None:
        raise InvalidInputError(f"{path}: no 'well' column in the header ({', '.join(header)}); add one")
    known = {index for index in where.values() if index is not None}
    seen: dict[tuple[int, int], int] = {}
    treatments = []
    for number, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        treatment = _treatment(path, number, header, cells, where, known, geometry)
        if (treatment.row, treatment.column) in seen:
            first = seen[(treatment.row, treatment.column)]
            well = well_name(treatment.row, treatment.column)
            raise InvalidInputError(f"{path}, row {number}: well {well} is already on row {first}; keep one")
        seen[(treatment.row, treatment.column)] = number
        treatments.append(treatment)
    return treatments


def _treatment(
    path: Path,
    number: int,
    header: list[str],
    cells: list[str],
    where: dict[str, int | None],
    known: set[int],
    geometry: Geometry,
) -> Treatment:
    def cell(key: str) -> str:
        index = where[key]
        return cells[index].strip() if index is not None and index < len(cells) else ""

    try:
        row, column = parse_well(cell("well"))
    except InvalidInputError as exc:
        raise InvalidInputError(f"{path}, row {number}, column 'well': {exc}") from None
    if not geometry.contains(row, column):
        raise InvalidInputError(
            f"{path}, row {number}: well {cell('well')} is outside the plate "
            f"({geometry.rows} rows x {geometry.columns} columns)"
        )
    concentration, unit = _dose(path, number, cell("concentration"), cell("unit"))
    control = cell("control").lower()
    if control and control not in _CONTROL_WORDS and control not in ("", "sample", "treatment", "none"):
        raise InvalidInputError(
            f"{path}, row {number}, column 'control': {control!r} is not a control type; use "
            f"{', '.join(CONTROLS)} (or leave it empty)"
        )
    replicate = cell("replicate")
    if replicate and not replicate.isdigit():
        raise InvalidInputError(
            f"{path}, row {number}, column 'replicate': {replicate!r} is not a whole number"
        )
    extra = {
        name: cells[index].strip()
        for index, name in enumerate(header)
        if index not in known and index < len(cells) and name and cells[index].strip()
    }
    return Treatment(
        row=row,
        column=column,
        compound=cell("compound") or None,
        concentration=concentration,
        unit=unit,
        control=_CONTROL_WORDS.get(control),
        replicate=int(replicate) if replicate else None,
        extra=extra,
    )


def _dose(path: Path, number: int, text: str, unit: str) -> tuple[float | None, str | None]:
    """'10', '10 uM' or '1e-6 M', with the unit in its own column or the same cell."""
    if not text:
        return None, unit or None
    match = _DOSE.match(text)
    if match is None:
        raise InvalidInputError(
            f"{path}, row {number}, column 'concentration': {text!r} is not a number with an optional unit "
            "(e.g. 10 uM)"
        )
    return float(match[1]), (match[2] or unit or None)


def _find(header: list[str], names: tuple[str, ...]) -> int | None:
    simple = [re.sub(r"[^a-z_]", "", name.lower().replace(" ", "_")) for name in header]
    for name in names:
        if name in simple:
            return simple.index(name)
    return None


def _rows(path: Path) -> Iterator[list[str]]:
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such platemap file")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        yield from _sheet_rows(path)
        return
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    try:
        yield from csv.reader(text.splitlines(), _dialect(text))
    except csv.Error as exc:
        raise InvalidInputError(f"{path}: not a readable CSV file ({exc})") from None


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    """The delimiter the sheet uses; a sheet with one column has none to find, and is read as CSV."""
    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        return csv.excel


def _sheet_rows(path: Path) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    try:
        sheet = load_workbook(path, read_only=True, data_only=True).worksheets[0]
        # read-only sheets parse their XML while rows are read: read them here, where errors are translated
        rows = [
            ["" if value is None else str(value) for value in values]
            for values in sheet.iter_rows(values_only=True)
        ]
    except Exception as exc:  # openpyxl raises several kinds for a file that is not a workbook
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InvalidInputError(f"{path}: not a readable Excel workbook ({reason})") from None
    yield from rows

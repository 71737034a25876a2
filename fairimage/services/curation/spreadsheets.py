"""REMBI metadata as spreadsheets, one sheet per section, so facilities can fill it in with the tools they
have: a folder of CSV files or an XLSX workbook with the same sheets.

Lists inside a cell (keywords, imaging methods, variables) are separated by semicolons. Authors,
publications and specimen channels have sheets of their own (a channel row names its specimen).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from fairimage.model.errors import InvalidInputError

# sheet -> (where in the REMBI document, columns, columns holding lists)
TABLES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "authors": ("study.authors", ("name", "orcid", "affiliation", "email", "role"), ()),
    "publications": ("study.publications", ("title", "authors", "year", "doi", "pubmed_id"), ()),
    "study_components": (
        "study_components",
        (
            "name",
            "description",
            "imaging_methods",
            "biosample",
            "specimen",
            "acquisition",
            "files",
            "image_type",
            "image_processing",
            "contrast_inversion",
        ),
        ("imaging_methods", "files"),
    ),
    "biosamples": (
        "biosamples",
        (
            "id",
            "organism",
            "biological_entity",
            "description",
            "intrinsic_variables",
            "extrinsic_variables",
            "experimental_variables",
            "cell_types",
            "organism_parts",
        ),
        (
            "intrinsic_variables",
            "extrinsic_variables",
            "experimental_variables",
            "cell_types",
            "organism_parts",
        ),
    ),
    "specimens": (
        "specimens",
        (
            "id",
            "preparation_method",
            "preparation_terms",
            "signal_contrast_mechanism",
            "experimental_status",
            "location_within_biosample",
        ),
        ("preparation_terms",),
    ),
    "channels": ("specimens[].channels", ("specimen", "name", "content", "biological_entity"), ()),
    "image_acquisitions": (
        "image_acquisitions",
        ("id", "instrument", "parameters", "objective", "detector"),
        (),
    ),
    "analysed_data": (
        "analysed_data",
        ("type", "data_used", "method", "description", "operations"),
        ("operations",),
    ),
}
# sheets of one record, as field/value rows
RECORDS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "study": (
        "study",
        (
            "title",
            "description",
            "license",
            "study_type",
            "keywords",
            "funding",
            "acknowledgements",
            "topics",
        ),
        ("keywords", "funding", "topics"),
    ),
    "image_correlation": (
        "image_correlation",
        ("spatial_temporal_alignment", "fiducials", "transformation_matrix", "related_images"),
        (),
    ),
}
SHEETS = ("study", *TABLES, "image_correlation")


def to_sheets(document: dict[str, Any]) -> dict[str, list[list[str]]]:
    """A REMBI document (as ``Rembi.dump`` gives it) as sheets of rows, the first row the header."""
    sheets: dict[str, list[list[str]]] = {}
    for name in SHEETS:
        if name in RECORDS:
            place, fields, _ = RECORDS[name]
            record = document.get(place) or {}
            sheets[name] = [["field", "value"], *([field, _cell(record.get(field))] for field in fields)]
            continue
        place, columns, _ = TABLES[name]
        rows = [list(columns)]
        if name == "channels":
            for specimen in document.get("specimens", []):
                for channel in specimen.get("channels", []):
                    rows.append([specimen.get("id") or "", *(_cell(channel.get(c)) for c in columns[1:])])
        else:
            items = (
                document.get("study", {}).get(place.split(".")[1], [])
                if "." in place
                else document.get(place, [])
            )
            rows += [[_cell(item.get(column)) for column in columns] for item in items]
        sheets[name] = rows
    return sheets


def from_sheets(sheets: dict[str, list[list[str]]]) -> dict[str, Any]:
    """The REMBI document that sheets describe (unknown sheets and columns are reported, not dropped)."""
    unknown = sorted(set(sheets) - set(SHEETS))
    if unknown:
        raise InvalidInputError(
            f"sheet {unknown[0]!r} is not a REMBI section; the sheets are {', '.join(SHEETS)}"
        )
    document: dict[str, Any] = {}
    for name, (place, fields, lists) in RECORDS.items():
        rows = sheets.get(name, [])[1:]
        record = {
            row[0].strip(): _value(row[1] if len(row) > 1 else "", row[0].strip() in lists)
            for row in rows
            if row
        }
        record = {key: value for key, value in record.items() if value not in (None, [])}
        bad = sorted(set(record) - set(fields))
        if bad:
            raise InvalidInputError(
                f"sheet {name}: {bad[0]!r} is not a field of {place}; use {', '.join(fields)}"
            )
        if record:
            document[place] = record
    specimens: list[dict[str, Any]] = []
    for name, (place, columns, lists) in TABLES.items():
        items = _table(name, sheets.get(name, []), columns, lists)
        if name == "channels":
            for item in items:
                owner = item.pop("specimen", None)
                target = next((s for s in specimens if s.get("id") == owner), None)
                if target is None:
                    raise InvalidInputError(
                        f"sheet channels: specimen {owner!r} is not in the specimens sheet"
                    )
                target.setdefault("channels", []).append(item)
        elif items:
            if place.startswith("study."):
                document.setdefault("study", {})[place.split(".")[1]] = items
            else:
                document[place] = items
            if name == "specimens":
                specimens = items
    return document


def _table(
    name: str, rows: list[list[str]], columns: tuple[str, ...], lists: tuple[str, ...]
) -> list[dict[str, Any]]:
    if not rows:
        return []
    header = [cell.strip() for cell in rows[0]]
    bad = [cell for cell in header if cell and cell not in columns]
    if bad:
        raise InvalidInputError(
            f"sheet {name}: column {bad[0]!r} is not known; the columns are {', '.join(columns)}"
        )
    items = []
    for row in rows[1:]:
        item = {
            column: _value(cell, column in lists) for column, cell in zip(header, row, strict=False) if column
        }
        item = {key: value for key, value in item.items() if value not in (None, [])}
        if item:
            items.append(item)
    return items


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(_cell(item) for item in value)
    if isinstance(value, dict):  # an ontology term: its id, else its label
        return str(value.get("id") or value.get("label") or "")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _value(cell: Any, is_list: bool) -> Any:
    text = "" if cell is None else str(cell).strip()
    if is_list:
        return [part.strip() for part in text.split(";") if part.strip()]
    if text.lower() in ("yes", "true"):
        return True
    if text.lower() in ("no", "false"):
        return False
    return text or None


def write_sheets(document: dict[str, Any], target: Path) -> Path:
    """Write the sheets: an ``.xlsx`` workbook, or CSV files into a folder."""
    sheets = to_sheets(document)
    if target.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        book = Workbook()
        book.remove(book.active)
        for name, rows in sheets.items():
            sheet = book.create_sheet(name)
            for row in rows:
                sheet.append(row)
        book.save(target)
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name, rows in sheets.items():
        with (target / f"{name}.csv").open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
    return target


def read_sheets(source: Path) -> dict[str, Any]:
    """The REMBI document in an ``.xlsx`` workbook or a folder of CSV files."""
    sheets: dict[str, list[list[str]]] = {}
    if source.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        try:
            book = load_workbook(source, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises several kinds for a file that is not a workbook
            raise InvalidInputError(f"{source}: not an XLSX workbook ({type(exc).__name__})") from None
        for sheet in book.worksheets:
            sheets[sheet.title] = [
                ["" if cell is None else str(cell) for cell in row]
                for row in sheet.iter_rows(values_only=True)
            ]
        return from_sheets(sheets)
    for path in sorted(source.glob("*.csv")):
        with path.open(newline="", encoding="utf-8-sig") as f:
            sheets[path.stem] = list(csv.reader(f))
    if not sheets:
        raise InvalidInputError(f"{source}: no CSV sheets in it; write them with 'fairimage metadata export'")
    return from_sheets(sheets)

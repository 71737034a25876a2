"""Landmark files: pairs of corresponding points, one per row of a CSV, as registration tools export them.

Columns (any order, a header row): ``image_x, image_y, reference_x, reference_y`` (and ``image_z``,
``reference_z`` for volumes), in level-0 pixels of each image; other columns (a name, a note) are ignored.
"""

from __future__ import annotations

import csv
from pathlib import Path

from fairimage.model.errors import InvalidInputError
from fairimage.model.viewing.correlative import Landmark

_REQUIRED = ("image_x", "image_y", "reference_x", "reference_y")


def read_landmarks(path: Path) -> tuple[Landmark, ...]:
    """The landmark pairs of a CSV file; InvalidInputError naming the file, row and column otherwise."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
            header = [name.strip().lower() for name in (rows[0].keys() if rows else [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInputError(f"{path}: cannot read the landmarks ({exc})") from None
    missing = [name for name in _REQUIRED if name not in header]
    if not rows or missing:
        raise InvalidInputError(
            f"{path}: needs a header row with {', '.join(_REQUIRED)} (and image_z, reference_z for volumes)"
            + (f"; missing {', '.join(missing)}" if rows else "; the file has no rows")
        )
    depth = "image_z" in header and "reference_z" in header
    axes = ("x", "y", "z") if depth else ("x", "y")
    pairs = []
    for number, row in enumerate(rows, start=2):
        cells = {key.strip().lower(): (value or "").strip() for key, value in row.items() if key}
        try:
            image = tuple(float(cells[f"image_{axis}"]) for axis in axes)
            reference = tuple(float(cells[f"reference_{axis}"]) for axis in axes)
        except ValueError:
            bad = next(
                name
                for name in cells
                if name.startswith(("image_", "reference_")) and not _number(cells[name])
            )
            raise InvalidInputError(f"{path}: row {number}, {bad} {cells[bad]!r} is not a number") from None
        pairs.append(Landmark(image=image, reference=reference))
    return tuple(pairs)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True

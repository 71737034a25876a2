"""A platemap: what was done to each well (compound or treatment, concentration, control type,
replicate), as a screen's design records it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Control = Literal["positive", "negative", "neutral"]
CONTROLS: tuple[Control, ...] = ("positive", "negative", "neutral")


@dataclass(frozen=True)
class Treatment:
    """One well of a platemap; ``extra`` keeps the platemap's other columns as they were written."""

    row: int
    column: int
    compound: str | None = None
    concentration: float | None = None
    unit: str | None = None
    control: Control | None = None
    replicate: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

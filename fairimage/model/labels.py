"""Label images (segmentation masks, instance labels) as the domain sees them: who or what made each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal


@dataclass(frozen=True)
class MadeBy:
    """Who or what made a label: a person (an annotator), a model (then the label is AI-generated), or
    nobody knows (copied from an OME-Zarr input whose labels do not say: a dataset card counts them)."""

    kind: Literal["person", "model", "unknown"]
    name: str


@dataclass(frozen=True)
class Label:
    id: str
    image_id: str
    name: str
    made_by: MadeBy
    added_by: str
    created_at: datetime | None
    source_name: str
    dtype: str
    shape: list[int]
    values: int  # object ids in it, background (0) not counted

    @property
    def ai_generated(self) -> bool:
        return self.made_by.kind == "model"

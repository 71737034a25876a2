"""Studies, original files and stored images as the services hand them to interfaces."""

from __future__ import annotations

import secrets
import time
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from fairimage.model.governance.duo import DataUse
from fairimage.model.image import Axis, Channel


def new_id(prefix: str) -> str:
    """A stable identifier that sorts by creation time: prefix, 12 hex digits of ms, 8 random hex digits."""
    return f"{prefix}-{int(time.time() * 1000):012x}{secrets.token_hex(4)}"


class Study(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    description: str
    created_at: datetime
    image_count: int
    policy: str = "public"
    embargo_until: datetime | None = None
    data_use: DataUse | None = None  # consent terms, for restricted studies
    may_read: bool = True  # whether the caller may read its images (else: request access)


class OriginalFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    format: str
    size: int
    sha256: str


class Level(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    scale: tuple[float, ...]


class Image(BaseModel):
    """A stored OME-Zarr image and where it came from."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    study_id: str
    study_name: str
    original_file: OriginalFile
    series_index: int
    axes: tuple[Axis, ...]
    shape: tuple[int, ...]
    dtype: str
    source_dtype: str
    scale: tuple[float, ...]
    channels: tuple[Channel, ...]
    levels: tuple[Level, ...]
    stored_bytes: int
    object_count: int
    created_at: datetime
    acquisition: dict[str, str] = {}  # what the file says of its acquisition (extracted)

    @property
    def axis_names(self) -> str:
        return "".join(axis.name for axis in self.axes)

    @property
    def physical_sizes(self) -> dict[str, dict[str, float | str | None]]:
        """Pixel size and unit per space/time axis: {"x": {"size": 0.2, "unit": "micrometer"}, ...}."""
        return {
            axis.name: {"size": s, "unit": axis.unit}
            for axis, s in zip(self.axes, self.scale, strict=True)
            if axis.type != "channel"
        }


class ImagePage(BaseModel):
    items: list[Image]
    total: int
    next: str | None

"""The JSON shapes of the API (and of the CLI's --json), built from domain models plus URLs."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from fairimage.model.governance.drs import drs_uri
from fairimage.model.image import Axis, Channel
from fairimage.model.labels import Label
from fairimage.model.study import Generated, Image, Level, OriginalFile, Study


class RequestBody(BaseModel):
    """What a client sends: a field the endpoint does not know is refused (422 naming it), never dropped, so
    nobody believes they set what was ignored."""

    model_config = ConfigDict(extra="forbid")


class StudyRef(BaseModel):
    id: str
    name: str


class PhysicalSize(BaseModel):
    size: float
    unit: str | None


class LabelOut(BaseModel):
    """A label image of an image (OME-NGFF labels/NAME), and who or what made it."""

    id: str
    image_id: str
    name: str
    made_by: dict[str, str]  # {"kind": "person" | "model", "name": ...}
    ai_generated: bool
    added_by: str
    created_at: datetime | None
    source_name: str
    dtype: str
    shape: list[int]
    objects: int
    ome_zarr_url: str

    @classmethod
    def of(cls, label: Label, base_url: str) -> LabelOut:
        return cls(
            id=label.id,
            image_id=label.image_id,
            name=label.name,
            made_by={"kind": label.made_by.kind, "name": label.made_by.name},
            ai_generated=label.ai_generated,
            added_by=label.added_by,
            created_at=label.created_at,
            source_name=label.source_name,
            dtype=label.dtype,
            shape=label.shape,
            objects=label.values,
            ome_zarr_url=f"{base_url.rstrip('/')}/zarr/{label.image_id}.ome.zarr/labels/{label.name}",
        )


class ImageOut(BaseModel):
    id: str
    name: str
    study: StudyRef
    original_file: OriginalFile
    series_index: int
    shape: tuple[int, ...]
    axes: tuple[Axis, ...]
    dtype: str
    source_dtype: str
    physical_sizes: dict[str, PhysicalSize]
    channels: tuple[Channel, ...]
    levels: tuple[Level, ...]
    pyramid_levels: int
    stored_bytes: int
    created_at: datetime
    ome_zarr_url: str | None
    drs_uri: str | None = None  # the image as a GA4GH DRS bundle
    acquisition: dict[str, str] = {}  # what the file says of its acquisition (extracted, not curated)
    ai_generated: bool = False  # a model made it: see generated
    generated: Generated | None = None  # the model, and the images it was made from

    @classmethod
    def of(cls, image: Image, base_url: str | None) -> ImageOut:
        return cls(
            id=image.id,
            name=image.name,
            study=StudyRef(id=image.study_id, name=image.study_name),
            original_file=image.original_file,
            series_index=image.series_index,
            shape=image.shape,
            axes=image.axes,
            dtype=image.dtype,
            source_dtype=image.source_dtype,
            physical_sizes={k: PhysicalSize.model_validate(v) for k, v in image.physical_sizes.items()},
            channels=image.channels,
            levels=image.levels,
            pyramid_levels=len(image.levels),
            stored_bytes=image.stored_bytes,
            created_at=image.created_at,
            ome_zarr_url=f"{base_url.rstrip('/')}/zarr/{image.id}.ome.zarr" if base_url else None,
            drs_uri=drs_uri(urlsplit(base_url).netloc, image.id) if base_url else None,
            acquisition=image.acquisition,
            ai_generated=image.ai_generated,
            generated=image.generated,
        )


class ImagePageOut(BaseModel):
    items: list[ImageOut]
    total: int
    next: str | None


class StudyOut(Study):
    images_url: str | None = None

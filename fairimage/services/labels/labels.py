"""Label images: a mask file (TIFF, PNG, an OME-Zarr) added to an image as an OME-NGFF label.

A label is stored like an image (chunked, a pyramid halved by the mode of each 2x2 square so no level invents
an object id, verified, checksummed in its own manifest) under ``labels/LABEL.ome.zarr``, and served where
OME-NGFF puts it: ``/zarr/IMAGE.ome.zarr/labels/zarr.json`` lists the image's labels and
``labels/NAME/...`` is each one, through the image's access check. Its pixel grid must be the image's:
every axis but the channels, the same length. Labels are never replaced: a name is used once per image.
Each records who or what made it: a person (an annotator) or a model, whose output is marked AI-generated.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from fairimage.catalog import queries
from fairimage.catalog.tables import ImageRow, LabelRow
from fairimage.formats import ImageSource, open_file
from fairimage.formats.base import Region
from fairimage.model.errors import ConflictError, CorruptFileError, InvalidInputError, NotFoundError
from fairimage.model.governance.policy import Principal
from fairimage.model.image import ImageMetadata, make_axes
from fairimage.model.labels import Label, MadeBy
from fairimage.model.study import new_id
from fairimage.ngff.writer import (
    WriteOptions,
    WrittenImage,
    create_image,
    finish_image,
    plan_image,
    write_planes,
)
from fairimage.services.governance import access, audit
from fairimage.services.ingest.conversion import build_manifest, content_sha256, verify_staged
from fairimage.services.ingest.intake import conversion_for
from fairimage.services.ingest.runs import ingest_run
from fairimage.services.progress import Progress
from fairimage.services.repository import Repository
from fairimage.storage import ImagePrefix, layout

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_COLOURED_VALUES = 1000  # ids given a colour in image-label; more are left to the viewer's own table


def to_label(row: LabelRow) -> Label:
    return Label(
        id=row.id,
        image_id=row.image_id,
        name=row.name,
        made_by=MadeBy(row.made_by_kind, row.made_by),  # type: ignore[arg-type]
        added_by=row.added_by,
        created_at=queries.aware(row.created_at),
        source_name=row.source_name,
        dtype=row.dtype,
        shape=list(row.shape),
        values=len(row.label_values),
    )


def list_labels(repository: Repository, principal: Principal, image_id: str) -> list[Label]:
    """The labels of an image the caller may read (NotFoundError otherwise), by name."""
    access.check_image(repository, principal, image_id)
    with repository.reading() as session:
        rows = session.scalars(select(LabelRow).where(LabelRow.image_id == image_id).order_by(LabelRow.name))
        return [to_label(row) for row in rows]


def add_label(
    repository: Repository,
    principal: Principal,
    image_id: str,
    path: Path,
    name: str,
    made_by: MadeBy,
    progress: Progress | None = None,
) -> Label:
    """Store the mask at ``path`` as the label ``name`` of the image; the caller must govern its study.
    Staged, verified and checksummed first; published in one transaction, or not at all."""
    progress = progress or Progress()
    if not NAME.fullmatch(name):
        raise InvalidInputError(
            f"label name {name!r}: use letters, digits, '.', '_' or '-' (at most 64), starting with a letter "
            "or digit"
        )
    if not made_by.name.strip():
        raise InvalidInputError(f"label {name!r}: say who made it (--annotator NAME or --model MODEL)")
    with repository.reading() as session:
        grid = _grid(_unlabelled_image(session, principal, image_id, name))
    sha256, _ = content_sha256(path)
    with open_file(path) as opened:
        if len(opened.images) != 1:
            raise InvalidInputError(f"{path}: holds {len(opened.images)} images; a label file holds one mask")
        source = _on_grid(opened.images[0], grid, path, image_id)
        with ingest_run(repository, principal.name) as run:
            options = replace(conversion_for(repository, run).options, pyramid="mode")
            staged = _stage(repository, run.id, options, source, path, progress)
            row = LabelRow(
                id=staged.label_id,
                image_id=image_id,
                name=name,
                made_by_kind=made_by.kind,
                made_by=made_by.name.strip(),
                added_by=principal.name,
                source_name=path.name,
                source_sha256=sha256,
                dtype=staged.written.dtype,
                axes=[axis.model_dump() for axis in source.metadata.axes],
                shape=list(source.metadata.shape),
                levels=[
                    {"path": level.path, "shape": list(level.shape), "chunks": list(level.chunks)}
                    for level in staged.written.levels
                ],
                label_values=[int(v) for v in staged.values],
                image_label=staged.image_label,
                storage_key=layout.label_prefix(staged.label_id),
                manifest_key=layout.manifest_key(staged.label_id),
                manifest_sha256=hashlib.sha256(staged.manifest).hexdigest(),
                stored_bytes=sum(entry.size for entry in staged.written.chunks.values()),
                object_count=len(staged.written.chunks),
            )
            run.intend(staged.label_id)
            return _publish(repository, principal, run.id, row, staged.manifest)


def copy_input_label(
    repository: Repository,
    principal: Principal,
    image_id: str,
    source: Path,
    name: str,
    made_by: MadeBy | None = None,
    progress: Progress | None = None,
) -> Label:
    """Label ``name`` of an OME-Zarr input (one of ``input_label_names``), stored as a label of the image it
    became, so an ingest copies it rather than dropping it. OME-Zarr does not say who made a label: that is
    ``made_by`` where the caller knows it, else unknown. It is checked and stored as ``add_label`` does."""
    maker = made_by or MadeBy("unknown", f"copied from {source.name}")
    return add_label(repository, principal, image_id, source / "labels" / name, name, maker, progress)


def input_label_names(source: Path) -> list[str]:
    """The names an OME-Zarr folder lists in ``labels/zarr.json`` (0.5) or ``labels/.zattrs`` (0.4)."""
    for document in (source / "labels" / "zarr.json", source / "labels" / ".zattrs"):
        if document.is_file():
            try:
                attributes = json.loads(document.read_text())
            except (OSError, ValueError) as exc:
                raise CorruptFileError(f"{document}: not valid JSON ({exc})") from exc
            attributes = attributes.get("attributes", attributes)
            listed = attributes.get("ome", attributes).get("labels", [])
            if not isinstance(listed, list) or not all(isinstance(name, str) for name in listed):
                raise CorruptFileError(f"{document}: 'labels' must be a list of names")
            return [name for name in listed if (source / "labels" / name).is_dir()]
    return []


@dataclass(frozen=True)
class _Staged:
    label_id: str
    written: WrittenImage
    values: np.ndarray
    image_label: dict[str, Any]
    manifest: bytes


def _stage(
    repository: Repository,
    run_id: str,
    options: WriteOptions,
    source: _LabelSource,
    path: Path,
    progress: Progress,
) -> _Staged:
    """Write the label into the run's staging area with a mode pyramid, verify it, make its manifest."""
    store = repository.store
    label_id = new_id("lbl")
    prefix = layout.staged_image_prefix(run_id, label_id)
    target = ImagePrefix(store, prefix)
    plan = plan_image(source.metadata, options)
    progress.start_file(path, source.metadata.nbytes)
    create_image(plan, target)
    part = write_planes(plan, source, target, on_progress=progress.advance)
    values = _values(source)
    image_label = _image_label(values)
    written = finish_image(plan, target, [part], image_label)
    verify_staged(store, prefix, str(path), written)
    manifest = build_manifest(store, prefix, written.chunks)
    return _Staged(
        label_id, written, values, image_label, json.dumps(manifest, indent=1, sort_keys=True).encode()
    )


def _publish(
    repository: Repository, principal: Principal, run_id: str, row: LabelRow, manifest: bytes
) -> Label:
    """Move the staged label to its place and catalogue it; undone if the transaction fails."""
    store = repository.store
    store.move(layout.staged_image_prefix(run_id, row.id), layout.label_prefix(row.id))
    try:
        store.write(layout.manifest_key(row.id), manifest)
        with repository.transaction() as session:
            _unlabelled_image(session, principal, row.image_id, row.name)  # still so, at the moment it counts
            session.add(row)
            session.flush()
            audit.record(
                session,
                principal.name,
                "label.add",
                f"image:{row.image_id}",
                origin=principal.origin,
                label=row.id,
                name=row.name,
                made_by=f"{row.made_by_kind}:{row.made_by}",
                sha256=row.source_sha256,
            )
            return to_label(row)
    except BaseException:
        store.delete(layout.label_prefix(row.id))
        store.delete(layout.manifest_key(row.id))
        raise


def _unlabelled_image(session: Any, principal: Principal, image_id: str, name: str) -> ImageRow:
    """The image, if the caller governs its study and it has no label ``name`` yet."""
    image = _governed_image(session, principal, image_id)
    if _label_row(session, image_id, name) is not None:
        raise ConflictError(
            f"image {image_id} already has a label {name!r}; labels are never replaced: give another name"
        )
    return image


def _governed_image(session: Any, principal: Principal, image_id: str) -> ImageRow:
    image = session.get(ImageRow, image_id)
    if image is None or not access.may_read_study(principal, image.study):
        raise NotFoundError(f"image {image_id!r} not found")
    access.governed_study(session, principal, image.study_id)
    return image


def _label_row(session: Any, image_id: str, name: str) -> LabelRow | None:
    return session.scalars(
        select(LabelRow).where(LabelRow.image_id == image_id, LabelRow.name == name)
    ).first()


@dataclass(frozen=True)
class _Grid:
    """An image's pixel grid as a label must match it: its axes without the channels."""

    axes: str
    shape: tuple[int, ...]
    scale: tuple[float, ...]
    units: dict[str, str | None]


def _grid(image: ImageRow) -> _Grid:
    kept = [i for i, axis in enumerate(image.axes) if axis["name"] != "c"]
    return _Grid(
        axes="".join(image.axes[i]["name"] for i in kept),
        shape=tuple(int(image.shape[i]) for i in kept),
        scale=tuple(float(image.scale[i]) for i in kept),
        units={image.axes[i]["name"]: image.axes[i].get("unit") for i in kept},
    )


class _LabelSource:
    """A mask as a label of the image: the image's axes (channels left out), physical sizes, integer ids."""

    def __init__(self, source: ImageSource, grid: _Grid, squeeze: tuple[int, ...], dtype: str) -> None:
        self._source, self._squeeze = source, squeeze
        axes = make_axes(grid.axes, grid.units)
        self._metadata = ImageMetadata(
            name=source.metadata.name, axes=axes, shape=grid.shape, dtype=dtype, scale=grid.scale
        )

    @property
    def metadata(self) -> ImageMetadata:
        return self._metadata

    def read(self, region: Region) -> np.ndarray:
        full = list(region)
        for axis in self._squeeze:
            full.insert(axis, slice(0, 1))
        block = self._source.read(tuple(full))
        if self._squeeze:
            block = block.reshape([n for i, n in enumerate(block.shape) if i not in self._squeeze])
        return block.astype(self._metadata.dtype, copy=False)


def _on_grid(source: ImageSource, grid: _Grid, path: Path, image_id: str) -> _LabelSource:
    """The mask read as a label of the image, or one line saying how it does not fit."""
    meta = source.metadata
    dtype = np.dtype(meta.dtype)
    if dtype.kind not in "uib":
        raise InvalidInputError(
            f"{path}: pixels of type {meta.dtype}; a label holds integer object ids (or a 0/1 mask): save it "
            "as an integer image"
        )
    stored = "uint8" if dtype.kind == "b" else dtype.name
    squeeze = tuple(
        i for i, axis in enumerate(meta.axis_names) if axis not in grid.axes and meta.shape[i] == 1
    )
    axes = "".join(a for i, a in enumerate(meta.axis_names) if i not in squeeze)
    shape = tuple(n for i, n in enumerate(meta.shape) if i not in squeeze)
    if axes != grid.axes or shape != grid.shape:
        raise InvalidInputError(
            f"{path}: a {'x'.join(map(str, shape))} ({axes}) mask for the {'x'.join(map(str, grid.shape))} "
            f"({grid.axes}) pixel grid of image {image_id}; a label must match its image pixel for pixel"
        )
    return _LabelSource(source, grid, squeeze, stored)


def _values(source: _LabelSource) -> np.ndarray:
    """The object ids the label holds (0, the background, left out), read a band at a time."""
    meta = source.metadata
    found: set[int] = set()
    height = meta.shape[-2]
    lead = tuple(slice(None) for _ in meta.shape[:-2])
    step = max(1, (64 << 20) // max(1, meta.nbytes // max(1, height)))
    for start in range(0, height, step):
        block = source.read((*lead, slice(start, min(start + step, height)), slice(None)))
        found.update(int(v) for v in np.unique(block))
    found.discard(0)
    return np.array(sorted(found), dtype=np.int64)


def _image_label(values: np.ndarray) -> dict[str, Any]:
    """OME-NGFF image-label metadata: a distinct colour per id (up to MAX_COLOURED_VALUES), the source image
    two levels up."""
    colours = [
        {"label-value": int(value), "rgba": _colour(int(value))} for value in values[:MAX_COLOURED_VALUES]
    ]
    label: dict[str, Any] = {"source": {"image": "../../"}}
    if colours:
        label["colors"] = colours
    return label


def _colour(value: int) -> list[int]:
    """A bright colour that differs between neighbouring ids (the golden-angle hue walk)."""
    import colorsys

    hue = (value * 0.618033988749895) % 1.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.75, 1.0)
    return [round(red * 255), round(green * 255), round(blue * 255), 255]

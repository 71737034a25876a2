"""OME-Zarr input: single images (OME-NGFF 0.1-0.5), bioformats2raw folders (one image per series) and
HCS plates (one image per field of view). Level 0 is read; fairimage writes its own 0.5 pyramid."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from fairimage.formats.base import ImageSource, OpenedFile, Region
from fairimage.model.errors import CorruptFileError, InvalidInputError, UnsupportedError
from fairimage.model.image import ImageMetadata, default_channels, make_axes
from fairimage.model.plates.layout import Field, Geometry, PlateChannel, PlateLayout, missing_wells
from fairimage.ngff.metadata import parse_multiscale


def is_zarr_dir(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in ("zarr.json", ".zattrs", ".zgroup"))


class OmeZarrReader:
    name = "ome-zarr"

    @contextmanager
    def open(self, path: Path) -> Iterator[OpenedFile]:
        try:
            root = zarr.open_group(str(path), mode="r")
            attrs = _attributes(root)
        except Exception as exc:  # zarr raises many kinds for a damaged folder; all mean "unreadable"
            raise CorruptFileError(f"{path}: not a readable zarr group ({exc})") from exc
        ome = attrs.get("ome", attrs)
        images: list[ImageSource]
        if ome.get("bioformats2raw.layout") == 3:
            kind, images = "bioformats2raw", _series(path, root, ome)
        elif "plate" in ome:
            kind, images = "ome-zarr-plate", _fields(path, root, ome["plate"])
        else:
            kind, images = "ome-zarr", [OmeZarrSource(path, root, path.name)]
        yield OpenedFile(format=kind, images=images)


def _series(path: Path, root: zarr.Group, ome: dict[str, Any]) -> list[ImageSource]:
    """bioformats2raw layout 3: series listed by OME/ .attrs "series", else numbered groups 0, 1, ..."""
    listed: list[str] | None = None
    if "OME" in root:
        meta = _attributes(root["OME"])
        listed = meta.get("ome", meta).get("series")
    names = [str(name) for name in listed] if listed else _numbered(root)
    if not names:
        raise CorruptFileError(f"{path}: a bioformats2raw folder without any series")
    return [OmeZarrSource(path, root[name], f"{path.name} [{name}]") for name in names]


def _attributes(node: Any) -> dict[str, Any]:
    """A group's attributes as plain JSON values (zarr types them as a union a reader cannot use)."""
    return dict(node.attrs.asdict())


def _numbered(root: zarr.Group) -> list[str]:
    names: list[str] = []
    while str(len(names)) in root:
        names.append(str(len(names)))
    return names


def _fields(path: Path, root: zarr.Group, plate: dict[str, Any]) -> list[ImageSource]:
    """Each field of view of each well of an HCS plate (OME-NGFF "plate" and "well" metadata)."""
    images: list[ImageSource] = []
    for well in plate.get("wells", []):
        meta = _attributes(root[well["path"]])
        for field in meta.get("ome", meta).get("well", {}).get("images", []):
            key = f"{well['path']}/{field['path']}"
            images.append(OmeZarrSource(path, root[key], f"{path.name} [{key}]"))
    if not images:
        raise CorruptFileError(f"{path}: a plate whose wells list no images")
    return images


@dataclass(frozen=True)
class ZarrPlate:
    """An existing OME-Zarr plate as a plate layout, with each field's image as a source."""

    layout: PlateLayout
    sources: dict[tuple[int, int, int], ImageSource]  # (row, column, field), 0-based


def read_zarr_plate(path: Path, name: str | None = None) -> ZarrPlate:
    """An OME-Zarr 0.4 or 0.5 plate: its rows, columns and acquisitions, and its wells' fields in order."""
    try:
        root = zarr.open_group(str(path), mode="r")
        attrs = _attributes(root)
    except Exception as exc:  # zarr raises many kinds for a damaged folder; all mean "unreadable"
        raise CorruptFileError(f"{path}: not a readable zarr group ({exc})") from exc
    plate = attrs.get("ome", attrs).get("plate")
    if not isinstance(plate, dict):
        raise InvalidInputError(f"{path}: an OME-Zarr without plate metadata; ingest it without --plate")
    rows, columns = [r["name"] for r in plate.get("rows", [])], [c["name"] for c in plate.get("columns", [])]
    sources: dict[tuple[int, int, int], ImageSource] = {}
    fields = []
    for well in plate.get("wells", []):
        row, column = _well_index(well, rows, columns, path)
        meta = _attributes(root[well["path"]])
        for index, item in enumerate(meta.get("ome", meta).get("well", {}).get("images", [])):
            key = f"{well['path']}/{item['path']}"
            sources[(row, column, index)] = OmeZarrSource(path, root[key], f"{path.name} [{key}]")
            fields.append(Field(row, column, index, {}, acquisition=int(item.get("acquisition", 0) or 0)))
    if not fields:
        raise CorruptFileError(f"{path}: a plate whose wells list no images")
    first = next(iter(sources.values())).metadata
    geometry = Geometry(len(rows), len(columns))
    layout = PlateLayout(
        name=name or str(plate.get("name") or path.name.removesuffix(".zarr").removesuffix(".ome")),
        kind="ome-zarr",
        geometry=geometry,
        channels=tuple(PlateChannel(channel.label) for channel in first.channels),
        fields=tuple(fields),
        acquisitions=tuple(str(a.get("name", "")) for a in plate.get("acquisitions", [])) or ("",),
        missing=tuple(missing_wells(geometry, {(f.row, f.column) for f in fields})),
    )
    return ZarrPlate(layout, sources)


def _well_index(well: dict[str, Any], rows: list[str], columns: list[str], path: Path) -> tuple[int, int]:
    """A well's (row, column): its rowIndex/columnIndex (0.4+), else the names in its path."""
    if "rowIndex" in well and "columnIndex" in well:
        return int(well["rowIndex"]), int(well["columnIndex"])
    row, _, column = str(well["path"]).partition("/")
    if row not in rows or column not in columns:
        raise CorruptFileError(f"{path}: well {well['path']!r} names a row or column the plate does not list")
    return rows.index(row), columns.index(column)


class OmeZarrSource:
    def __init__(self, path: Path, group: Any, name: str) -> None:
        where = name
        multiscale = parse_multiscale(group.attrs.asdict(), where)
        try:
            self._array = group[multiscale.datasets[0].path]
        except KeyError as exc:
            raise CorruptFileError(f"{where}: level {multiscale.datasets[0].path!r} is missing") from exc
        axes = "".join(axis.name for axis in multiscale.axes)
        try:
            make_axes(axes)
        except ValueError as exc:
            raise UnsupportedError(f"{where}: {exc}") from exc
        if len(axes) != self._array.ndim:
            raise CorruptFileError(f"{where}: {len(axes)} axes for a {self._array.ndim}-dimensional array")
        count = self._array.shape[axes.index("c")] if "c" in axes else 1
        channels = multiscale.channels if len(multiscale.channels) == count else default_channels(count)
        self._metadata = ImageMetadata(
            name=name,
            axes=multiscale.axes,
            shape=tuple(self._array.shape),
            dtype=np.dtype(self._array.dtype).name,
            scale=multiscale.datasets[0].scale,
            channels=tuple(c.model_copy(update={"window": None}) for c in channels),
        )

    @property
    def metadata(self) -> ImageMetadata:
        return self._metadata

    def read(self, region: Region) -> np.ndarray:
        try:
            return np.asarray(self._array[region])
        except Exception as exc:  # a damaged chunk surfaces as a codec or store error of any kind
            raise CorruptFileError(f"{self._metadata.name}: chunk data unreadable ({exc})") from exc

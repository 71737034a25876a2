"""OME-Zarr input: single images (OME-NGFF 0.1-0.5), bioformats2raw folders (one image per series) and
HCS plates (one image per field of view). Level 0 is read; fairimage writes its own 0.5 pyramid."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from fairimage.formats.base import ImageSource, OpenedFile, Region
from fairimage.model.errors import CorruptFileError, UnsupportedError
from fairimage.model.image import ImageMetadata, default_channels, make_axes
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

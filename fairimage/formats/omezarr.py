"""OME-Zarr input: single images (OME-NGFF 0.1-0.5), bioformats2raw folders (one image per series) and
HCS plates (one image per field of view). Level 0 is read; fairimage writes its own 0.5 pyramid."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from fairimage.formats.base import ImageSource, OpenedFile, Region, check_declared
from fairimage.model.errors import CorruptFileError, InvalidInputError, UnsupportedError
from fairimage.model.image import ImageMetadata, default_channels, make_axes
from fairimage.model.plates.layout import FORMATS, Field, Geometry, PlateChannel, PlateLayout, missing_wells
from fairimage.ngff.metadata import check_node_path, parse_multiscale

MAX_ROWS, MAX_COLUMNS = FORMATS[max(FORMATS)]  # a 1536-well plate's


def is_zarr_dir(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in ("zarr.json", ".zattrs", ".zgroup"))


class OmeZarrReader:
    name = "ome-zarr"

    @contextmanager
    def open(self, path: Path) -> Iterator[OpenedFile]:
        root, ome = _open_root(path)
        images: list[ImageSource]
        with _malformed(path):
            if ome.get("bioformats2raw.layout") == 3:
                kind, images = "bioformats2raw", _series(path, root, ome)
            elif "plate" in ome:
                kind, images = "ome-zarr-plate", _fields(path, root, ome["plate"])
            else:
                kind, images = "ome-zarr", [OmeZarrSource(root, path.name)]
        yield OpenedFile(format=kind, images=images)


def _open_root(path: Path) -> tuple[zarr.Group, dict[str, Any]]:
    """The root group and its OME metadata (under "ome" in 0.5, at the top level before)."""
    try:
        _refuse_links_outside(path)
    except OSError as exc:
        raise CorruptFileError(f"{path}: not a readable zarr group ({exc})") from None
    try:
        root = zarr.open_group(str(path), mode="r")
        attrs = _attributes(root)
    except Exception as exc:  # zarr raises many kinds for a damaged folder; all mean "unreadable"
        raise CorruptFileError(f"{path}: not a readable zarr group ({_first_line(exc)})") from exc
    ome = attrs.get("ome", attrs)
    if not isinstance(ome, dict):
        raise CorruptFileError(f"{path}: its 'ome' attribute is not a JSON object; the metadata is damaged")
    return root, ome


def _refuse_links_outside(path: Path) -> None:
    """A symbolic link in the folder that leads out of it (to /etc, another user's data) is refused:
    zarr would follow it and ingest would store what it points to."""
    inside = path.resolve()
    folders = [path]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.is_symlink():
                    if not Path(entry.path).resolve().is_relative_to(inside):
                        raise InvalidInputError(
                            f"{entry.path}: a symbolic link out of the OME-Zarr folder {path}; copy what it "
                            "points to into the folder instead"
                        )
                elif entry.is_dir():
                    folders.append(Path(entry.path))


@contextmanager
def _malformed(path: Path | str) -> Iterator[None]:
    """Metadata of the wrong shape (a number where a list belongs, a well without a path) is damage."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        reason = f"no {exc.args[0]!r}" if isinstance(exc, KeyError) and exc.args else _first_line(exc)
        raise CorruptFileError(
            f"{path}: malformed OME-Zarr metadata ({reason}); the image is damaged"
        ) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _node(parent: zarr.Group, key: Any, where: str) -> Any:
    """The group or array at ``key`` under ``parent``, a path the metadata gives (checked to stay inside)."""
    key = check_node_path(key, where)
    try:
        return parent[key]
    except KeyError:
        raise CorruptFileError(f"{where}: {key!r} is missing; the image is incomplete") from None
    except Exception as exc:  # zarr raises many kinds for damaged metadata; all mean "unreadable"
        raise CorruptFileError(f"{where}: {key!r} is not readable zarr ({_first_line(exc)})") from exc


def _has(parent: zarr.Group, key: str, where: str) -> bool:
    try:
        return key in parent
    except Exception as exc:  # zarr reads the child's metadata to answer, and raises as _node says
        raise CorruptFileError(f"{where}: {key!r} is not readable zarr ({_first_line(exc)})") from exc


def _series(path: Path, root: zarr.Group, ome: dict[str, Any]) -> list[ImageSource]:
    """bioformats2raw layout 3: series listed by OME/ .attrs "series", else numbered groups 0, 1, ..."""
    listed: list[str] | None = None
    if _has(root, "OME", path.name):
        meta = _attributes(_node(root, "OME", path.name))
        listed = meta.get("ome", meta).get("series")
    names = [str(name) for name in listed] if listed else _numbered(root, path.name)
    if not names:
        raise CorruptFileError(f"{path}: a bioformats2raw folder without any series")
    return [OmeZarrSource(_node(root, name, path.name), f"{path.name} [{name}]") for name in names]


def _attributes(node: Any) -> dict[str, Any]:
    """A group's attributes as plain JSON values (zarr types them as a union a reader cannot use)."""
    return dict(node.attrs.asdict())


def _numbered(root: zarr.Group, where: str) -> list[str]:
    names: list[str] = []
    while _has(root, str(len(names)), where):
        names.append(str(len(names)))
    return names


def _fields(path: Path, root: zarr.Group, plate: dict[str, Any]) -> list[ImageSource]:
    """Each field of view of each well of an HCS plate (OME-NGFF "plate" and "well" metadata)."""
    images: list[ImageSource] = []
    for well in plate.get("wells", []):
        meta = _attributes(_node(root, well["path"], path.name))
        for field in meta.get("ome", meta).get("well", {}).get("images", []):
            key = f"{well['path']}/{field['path']}"
            images.append(OmeZarrSource(_node(root, key, path.name), f"{path.name} [{key}]"))
    if not images:
        raise CorruptFileError(f"{path}: a plate whose wells list no images")
    return images


@dataclass(frozen=True)
class ZarrPlate:
    """An existing OME-Zarr plate as a plate layout, with each field's image as a source."""

    layout: PlateLayout
    sources: dict[tuple[int, int, int], ImageSource]  # (row, column, field), 0-based
    nodes: tuple[str, ...] = ()  # the groups and arrays read: the root (""), wells, fields, their level 0


def read_zarr_plate(path: Path, name: str | None = None) -> ZarrPlate:
    """An OME-Zarr 0.4 or 0.5 plate in a folder: its rows, columns and acquisitions, and its wells' fields
    in order."""
    root, _ = _open_root(path)
    return open_zarr_plate(root, str(path), name)


def open_zarr_plate(root: zarr.Group, where: str, name: str | None = None) -> ZarrPlate:
    """The plate whose root group is ``root``, wherever its store is (a folder, HTTP, S3, a zip);
    ``where`` names it in messages and gives its default name."""
    with _malformed(where):
        attrs = _attributes(root)
        ome = attrs.get("ome", attrs)
        plate = ome.get("plate") if isinstance(ome, dict) else None
        if not isinstance(plate, dict):
            raise InvalidInputError(f"{where}: an OME-Zarr without plate metadata; ingest it without --plate")
        return _plate(where, root, plate, name)


def _plate(where: str, root: zarr.Group, plate: dict[str, Any], name: str | None) -> ZarrPlate:
    rows, columns = [r["name"] for r in plate.get("rows", [])], [c["name"] for c in plate.get("columns", [])]
    if not 0 < len(rows) <= MAX_ROWS or not 0 < len(columns) <= MAX_COLUMNS:
        raise CorruptFileError(
            f"{where}: a plate of {len(rows)} rows x {len(columns)} columns; plates have 1 to {MAX_ROWS} "
            f"rows and 1 to {MAX_COLUMNS} columns"
        )
    base = where.rstrip("/").rsplit("/", 1)[-1]
    sources: dict[tuple[int, int, int], ImageSource] = {}
    fields = []
    nodes = [""]
    for well in plate.get("wells", []):
        row, column = well_index(well, rows, columns, where)
        meta = _attributes(_node(root, well["path"], base))
        nodes.append(str(well["path"]))
        for index, item in enumerate(meta.get("ome", meta).get("well", {}).get("images", [])):
            key = f"{well['path']}/{item['path']}"
            source = OmeZarrSource(_node(root, key, base), f"{base} [{key}]")
            sources[(row, column, index)] = source
            nodes += [key, f"{key}/{source.level_path}"]
            fields.append(Field(row, column, index, {}, acquisition=int(item.get("acquisition", 0) or 0)))
    if not fields:
        raise CorruptFileError(f"{where}: a plate whose wells list no images")
    first = next(iter(sources.values())).metadata
    geometry = Geometry(len(rows), len(columns))
    layout = PlateLayout(
        name=name
        or str(plate.get("name") or base.removesuffix(".ozx").removesuffix(".zarr").removesuffix(".ome")),
        kind="ome-zarr",
        geometry=geometry,
        channels=tuple(PlateChannel(channel.label) for channel in first.channels),
        fields=tuple(fields),
        acquisitions=tuple(str(a.get("name", "")) for a in plate.get("acquisitions", [])) or ("",),
        missing=tuple(missing_wells(geometry, {(f.row, f.column) for f in fields})),
    )
    return ZarrPlate(layout, sources, tuple(nodes))


def _stem(name: str) -> str:
    for suffix in (".ozx", ".zarr", ".ome"):
        name = name.removesuffix(suffix)
    return name


def well_index(
    well: dict[str, Any], rows: list[str], columns: list[str], path: Path | str
) -> tuple[int, int]:
    """A well's (row, column): its rowIndex/columnIndex (0.4+), else the names in its path."""
    if "rowIndex" in well and "columnIndex" in well:
        row, column = int(well["rowIndex"]), int(well["columnIndex"])
        if not (0 <= row < len(rows) and 0 <= column < len(columns)):
            raise CorruptFileError(
                f"{path}: well {well['path']!r} is at row {row}, column {column}, off the plate"
            )
        return row, column
    row_name, _, column_name = str(well["path"]).partition("/")
    if row_name not in rows or column_name not in columns:
        raise CorruptFileError(f"{path}: well {well['path']!r} names a row or column the plate does not list")
    return rows.index(row_name), columns.index(column_name)


class OmeZarrSource:
    def __init__(self, group: Any, name: str) -> None:
        where = name
        if not isinstance(group, zarr.Group):
            raise CorruptFileError(f"{where}: an array where an image group belongs; the metadata is damaged")
        multiscale = parse_multiscale(group.attrs.asdict(), where)
        self.level_path = check_node_path(multiscale.datasets[0].path, where)  # the level read: level 0
        self._array = _node(group, self.level_path, where)
        if not isinstance(self._array, zarr.Array):
            raise CorruptFileError(f"{where}: level {multiscale.datasets[0].path!r} is not an array")
        axes = "".join(axis.name for axis in multiscale.axes)
        try:
            make_axes(axes)
        except ValueError as exc:
            raise UnsupportedError(f"{where}: {exc}") from exc
        if "y" not in axes or "x" not in axes:
            raise UnsupportedError(
                f"{where}: axes {axes!r} have no y/x plane; fairimage reads 2D to 5D images"
            )
        if len(axes) != self._array.ndim:
            raise CorruptFileError(f"{where}: {len(axes)} axes for a {self._array.ndim}-dimensional array")
        count = self._array.shape[axes.index("c")] if "c" in axes else 1
        itemsize = np.dtype(self._array.dtype).itemsize
        check_declared(where, self._array.shape, itemsize, piece=self._array.chunks, channels=count)
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

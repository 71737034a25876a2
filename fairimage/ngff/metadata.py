"""OME-NGFF metadata, one class per spec version that knows how to read (and, for 0.5, write) it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from fairimage.model.errors import CorruptFileError, UnsupportedError
from fairimage.model.image import AXIS_TYPES, Axis, Channel, Window, default_channels
from fairimage.model.units import space_unit, time_unit


@dataclass(frozen=True)
class Dataset:
    path: str
    scale: tuple[float, ...]  # physical pixel size of this level, global transforms applied


@dataclass(frozen=True)
class Multiscale:
    version: str
    name: str
    axes: tuple[Axis, ...]
    datasets: tuple[Dataset, ...]
    channels: tuple[Channel, ...]


class NgffVersion(Protocol):
    version: str

    def matches(self, attrs: dict[str, Any]) -> bool: ...

    def parse(self, attrs: dict[str, Any], where: str) -> Multiscale: ...


class Ngff04:
    """OME-NGFF 0.4 (and the 0.1-0.3 layouts it grew from): zarr v2, attributes at the top level."""

    version = "0.4"

    def matches(self, attrs: dict[str, Any]) -> bool:
        return "multiscales" in attrs

    def parse(self, attrs: dict[str, Any], where: str) -> Multiscale:
        multiscale = attrs["multiscales"][0]
        version = str(multiscale.get("version", "0.4"))
        return _parse_multiscale(multiscale, attrs.get("omero"), version, where)


class Ngff05:
    """OME-NGFF 0.5: zarr v3, everything under the ``ome`` attribute, version stated once there."""

    version = "0.5"

    def matches(self, attrs: dict[str, Any]) -> bool:
        return isinstance(attrs.get("ome"), dict) and "multiscales" in attrs["ome"]

    def parse(self, attrs: dict[str, Any], where: str) -> Multiscale:
        ome = attrs["ome"]
        return _parse_multiscale(ome["multiscales"][0], ome.get("omero"), str(ome.get("version")), where)

    def build(
        self,
        name: str,
        axes: tuple[Axis, ...],
        scales: list[tuple[float, ...]],
        channels: tuple[Channel, ...],
        method: dict[str, Any],
        kind: str = "mean",
    ) -> dict[str, Any]:
        """The group attributes of an image (OME-NGFF 0.5 "multiscales" and transitional "omero")."""
        multiscale = {
            "name": name,
            "axes": [_axis_json(axis) for axis in axes],
            "datasets": [
                {"path": str(level), "coordinateTransformations": [{"type": "scale", "scale": list(scale)}]}
                for level, scale in enumerate(scales)
            ],
            "type": kind,
            "metadata": method,
        }
        ome: dict[str, Any] = {"version": self.version, "multiscales": [multiscale]}
        if channels:
            ome["omero"] = _omero_json(channels, axes)
        return {"ome": ome}


VERSIONS: tuple[NgffVersion, ...] = (Ngff05(), Ngff04())


def parse_multiscale(attrs: dict[str, Any], where: str) -> Multiscale:
    """The first multiscale image described by a group's attributes, whatever the spec version; metadata
    of the wrong shape (a missing key, a string for a list) is a CorruptFileError naming ``where``."""
    for version in VERSIONS:
        if version.matches(attrs):
            try:
                return version.parse(attrs, where)
            except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                reason = f"no {exc.args[0]!r}" if isinstance(exc, KeyError) and exc.args else str(exc)
                raise CorruptFileError(
                    f"{where}: malformed OME-NGFF multiscales metadata ({reason}); the image is damaged"
                ) from None
    raise UnsupportedError(
        f"{where}: a zarr group without OME-NGFF multiscales metadata; fairimage reads "
        "OME-Zarr images (0.1 to 0.5), bioformats2raw folders and HCS plates"
    )


def _parse_multiscale(
    multiscale: dict[str, Any], omero: dict[str, Any] | None, version: str, where: str
) -> Multiscale:
    axes = tuple(_parse_axis(axis, where) for axis in multiscale.get("axes", list("tczyx")))
    ndim = len(axes)
    global_scale = _scale_of(multiscale.get("coordinateTransformations"), ndim)
    datasets = tuple(
        Dataset(
            path=check_node_path(dataset["path"], where),
            scale=_checked_scale(
                tuple(
                    a * b
                    for a, b in zip(
                        _scale_of(dataset.get("coordinateTransformations"), ndim), global_scale, strict=True
                    )
                ),
                where,
            ),
        )
        for dataset in multiscale["datasets"]
    )
    if not datasets:
        raise UnsupportedError(f"{where}: the multiscales metadata lists no datasets")
    return Multiscale(
        version=version,
        name=str(multiscale.get("name") or ""),
        axes=axes,
        datasets=datasets,
        channels=_parse_omero(omero),
    )


def check_node_path(path: Any, where: str) -> str:
    """A path the metadata gives to a level, well, field or series: a relative zarr path that stays inside
    the group (no '..', '.', empty parts, leading '/' or backslash), so a crafted image cannot read beyond
    its folder."""
    if isinstance(path, int) and not isinstance(path, bool):
        path = str(path)  # early writers gave level paths as numbers
    if (
        not isinstance(path, str)
        or path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise CorruptFileError(
            f"{where}: {path!r} is not a path inside the image (it must be relative, without '..'); "
            "the metadata is damaged or crafted"
        )
    return path


def _checked_scale(scale: tuple[float, ...], where: str) -> tuple[float, ...]:
    if not all(math.isfinite(s) and s > 0 for s in scale):
        raise CorruptFileError(
            f"{where}: scale {list(scale)} has values that are not positive finite numbers"
        )
    return scale


def _parse_axis(axis: Any, where: str) -> Axis:
    if isinstance(axis, str):  # OME-NGFF 0.3 listed axis names only
        axis = {"name": axis}
    name = str(axis.get("name", "")).lower()
    if name not in AXIS_TYPES:
        raise UnsupportedError(
            f"{where}: axis {name!r} is not one of t, c, z, y, x; fairimage stores images "
            "with those axes only"
        )
    unit = axis.get("unit")
    if unit is not None:
        unit = time_unit(unit) if AXIS_TYPES[name] == "time" else space_unit(unit)
    return Axis(name=name, type=AXIS_TYPES[name], unit=unit if name != "c" else None)


def _scale_of(transforms: list[dict[str, Any]] | None, ndim: int) -> tuple[float, ...]:
    for transform in transforms or []:
        if transform.get("type") == "scale" and "scale" in transform:
            return tuple(float(s) for s in transform["scale"])
    return (1.0,) * ndim


def _parse_omero(omero: dict[str, Any] | None) -> tuple[Channel, ...]:
    listed = [channel for channel in (omero or {}).get("channels", []) if isinstance(channel, dict)]
    labels = [str(channel.get("label") or f"Channel {i}") for i, channel in enumerate(listed)]
    # Where a channel has no colour, the one its label's fluorophore has (DAPI blue), not white.
    defaults = default_channels(len(labels), labels) if labels else ()
    channels = []
    for i, channel in enumerate(listed):
        window = channel.get("window")
        parsed_window = None
        if isinstance(window, dict) and {"start", "end"} <= window.keys():
            start, end = float(window["start"]), float(window["end"])
            parsed_window = Window(
                start=start, end=end, min=float(window.get("min", start)), max=float(window.get("max", end))
            )
        channels.append(
            Channel(
                label=labels[i],
                color=str(channel.get("color") or defaults[i].color).upper(),
                window=parsed_window,
                inverted=channel.get("inverted") is True,
            )
        )
    return tuple(channels)


def _axis_json(axis: Axis) -> dict[str, str]:
    entry = {"name": axis.name, "type": axis.type}
    if axis.unit:
        entry["unit"] = axis.unit
    return entry


def _omero_json(channels: tuple[Channel, ...], axes: tuple[Axis, ...]) -> dict[str, Any]:
    entries = []
    for channel in channels:
        entry: dict[str, Any] = {
            "label": channel.label,
            "color": channel.color,
            "active": True,
            "coefficient": 1.0,
            "family": "linear",
            "inverted": channel.inverted,
        }
        if channel.window is not None:
            entry["window"] = channel.window.model_dump()
        entries.append(entry)
    return {"channels": entries, "rdefs": {"model": "color" if len(channels) > 1 else "greyscale"}}

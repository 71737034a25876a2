"""What an image is, independent of where it came from: axes, shape, dtype, physical sizes, channels,
and the pure arithmetic of its stored layout (chunks and pyramid levels)."""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fairimage.model.units import convert_length

AxisType = Literal["time", "channel", "space"]
AXIS_ORDER = "tczyx"  # OME-NGFF 0.5: time, then channel, then space (z, y, x)
AXIS_TYPES: dict[str, AxisType] = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
DEFAULT_CHUNK_BYTES = 1 << 20

# Colours given to channels that a file leaves uncoloured: grey for one channel, else RGB and then CMY.
_DEFAULT_COLOURS = ("FF0000", "00FF00", "0000FF", "FF00FF", "00FFFF", "FFFF00", "FFFFFF")


class Axis(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    type: AxisType
    unit: str | None = None


class Window(BaseModel):
    """Display range of a channel (OME-NGFF omero.window): start/end shown, min/max of the data."""

    model_config = ConfigDict(frozen=True)

    start: float
    end: float
    min: float
    max: float


class Channel(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    color: str = "FFFFFF"  # RRGGBB
    window: Window | None = None
    inverted: bool = False  # shown with high values dark (DICOM MONOCHROME1); the pixels are as stored


class ImageMetadata(BaseModel):
    """Everything a reader knows about one image before its pixels are read."""

    model_config = ConfigDict(frozen=True)

    name: str
    axes: tuple[Axis, ...]
    shape: tuple[int, ...]
    dtype: str
    scale: tuple[float, ...] = Field(description="physical size of one pixel along each axis (1 if unknown)")
    channels: tuple[Channel, ...] = ()
    # What the file says of how it was acquired (REMBI's Image Acquisition, never asked again): e.g.
    # acquired_at, instrument, objective, detector, software, and wavelengths per channel.
    acquisition: dict[str, str] = Field(default_factory=dict)
    # A DICOM image's header as the DICOM JSON model (PS3.18 F.2), de-identified, without its pixels.
    dicom: dict[str, Any] | None = None

    @property
    def axis_names(self) -> str:
        return "".join(axis.name for axis in self.axes)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


def make_axes(names: str, units: dict[str, str | None] | None = None) -> tuple[Axis, ...]:
    """Axes for a subset of 'tczyx' in that order, with units for those that have one."""
    units = units or {}
    if any(name not in AXIS_ORDER for name in names) or len(set(names)) != len(names):
        raise ValueError(f"axes {names!r} must be distinct letters of {AXIS_ORDER!r}")
    ordered = "".join(name for name in AXIS_ORDER if name in names)
    if ordered != names:
        raise ValueError(f"axes {names!r} must be in the order {AXIS_ORDER!r}")
    return tuple(
        Axis(name=name, type=AXIS_TYPES[name], unit=units.get(name) if name != "c" else None)
        for name in names
    )


# The colour microscopists expect of a channel named by its dye, fluorescent protein or laser line: its
# names (regular expressions, matched as whole words) and its wavelengths in nm. First match wins, so far
# red comes before red.
_FLUOROPHORES: tuple[tuple[str, tuple[str, ...], tuple[int, ...]], ...] = (
    ("FF00FF", (r"far[ -]?red", r"cy5(\.5)?", "cy7", "draq5", r"(alexa ?(fluor)? ?|af)(633|647|680|750)"),
     (633, 640, 647, 650, 670, 680, 750)),
    ("0000FF", ("dapi", "hoechst", "bfp", r"(alexa ?(fluor)? ?|af)405", "blue"), (405,)),
    ("00FFFF", ("e?cfp", "cerulean", "turquoise", "cyan"), ()),
    ("FFFF00", ("e?yfp", "venus", "citrine", "yellow"), ()),
    ("00FF00", ("e?gfp", "fitc", "cy2", "calcein", "fluo-?[348]", "mneongreen", r"(alexa ?(fluor)? ?|af)488",
                "green"), (488, 510, 520, 525)),
    ("FF0000", ("mcherry", "m?rfp", "tdtomato", "dsred", "mscarlet", "tritc", r"cy3(\.5)?", "texas ?red",
                "propidium", r"(alexa ?(fluor)? ?|af)(546|555|568|594)", "red"),
     (543, 546, 555, 561, 568, 594, 610)),
)  # fmt: skip


def _fluorophore_pattern(names: tuple[str, ...], wavelengths: tuple[int, ...]) -> re.Pattern[str]:
    words = rf"(?<![a-z])({'|'.join(names)})(?![a-z])"
    numbers = rf"|(?<!\d)({'|'.join(map(str, wavelengths))})(?!\d)" if wavelengths else ""
    return re.compile(words + numbers)


_FLUOROPHORE_RE = tuple((colour, _fluorophore_pattern(names, nm)) for colour, names, nm in _FLUOROPHORES)


def fluorophore_colour(label: str) -> str | None:
    """The conventional colour of a channel its name says the dye or protein of: DAPI blue, GFP or
    Alexa 488 green, mCherry red, Cy5 magenta...; None for a name that says none."""
    text = label.lower()
    return next((colour for colour, pattern in _FLUOROPHORE_RE if pattern.search(text)), None)


def default_channels(count: int, labels: list[str] | None = None) -> tuple[Channel, ...]:
    """Channels labelled and coloured the way viewers expect when the file gives no colours: by the
    fluorophore a channel's name says (DAPI blue, GFP green, mCherry red), the others from a palette of
    the colours left (RGB, then CMY); one channel alone is grey."""
    if count == 1:
        return (Channel(label=(labels or ["Channel 0"])[0], color="FFFFFF"),)
    names = labels or [f"Channel {i}" for i in range(count)]
    known = [fluorophore_colour(name) for name in names]
    free = [colour for colour in _DEFAULT_COLOURS if colour not in known] or list(_DEFAULT_COLOURS)
    spare = iter(free * (count // len(free) + 1))
    return tuple(
        Channel(label=name, color=colour or next(spare)) for name, colour in zip(names, known, strict=True)
    )


def rgb_channels(count: int) -> tuple[Channel, ...]:
    """Red, green, blue (and alpha) channels of a colour picture."""
    channels = [
        Channel(label="Red", color="FF0000"),
        Channel(label="Green", color="00FF00"),
        Channel(label="Blue", color="0000FF"),
        Channel(label="Alpha", color="FFFFFF"),
    ]
    return tuple(channels[:count])


def is_colour_picture(channels: tuple[Channel, ...], dtype: str) -> bool:
    """8-bit red, green and blue channels: a colour picture, shown with its own colours (full 0-255 range)."""
    return dtype == "uint8" and [channel.label for channel in channels[:3]] == ["Red", "Green", "Blue"]


def stored_dtype(dtype: str) -> str:
    """The dtype written to OME-Zarr: bool has no NGFF-friendly form, so it is stored as uint8 0/1."""
    return "uint8" if dtype == "bool" else dtype


# An image this deep in z is a volume: it is stored in cubes (so that a plane cut along any axis reads few
# chunks) and its pyramid halves z too once its voxels are about as deep as they are wide. Shallower stacks
# (a confocal stack of 30 or 64 planes) are browsed plane by plane: a cube would make each plane's tile
# read 64 planes.
VOLUME_DEPTH = 128
_CUBE_SIDES = (32, 128)  # the smallest and largest side of a volume's chunk cubes
_ISOTROPIC = math.sqrt(2)  # voxels whose depth and width differ by less than this factor are isotropic


def is_volume(shape: tuple[int, ...], axes: str) -> bool:
    """Whether an image is stored as a volume (3D chunks, z in its pyramid): VOLUME_DEPTH planes or more."""
    return "z" in axes and shape[axes.index("z")] >= VOLUME_DEPTH


def choose_chunks(
    shape: tuple[int, ...], axes: str, itemsize: int, target_bytes: int = DEFAULT_CHUNK_BYTES
) -> tuple[int, ...]:
    """Chunk shape of about ``target_bytes``: one t and c, square-ish power-of-two y/x tiles
    (y x x: 512x1024 for uint16, 1024x1024 for uint8), and several z planes only when planes are small;
    a volume's chunks are cubes (64^3 for 8 to 32-bit pixels), as Neuroglancer and orthogonal views need.

    Where a chunk cannot be square, it is wider than tall: conversion reads a plane one chunk row at a time,
    so fewer rows per chunk is less memory for a slide-wide plane."""
    elements = max(1, target_bytes // itemsize)
    size = dict(zip(axes, shape, strict=True))
    if is_volume(shape, axes):
        side = 2 ** int(math.log2(round(elements ** (1 / 3), 6)))
        side = min(max(side, _CUBE_SIDES[0]), _CUBE_SIDES[1])
        cube = {"t": 1, "c": 1, "z": side, "y": side, "x": side}
        return tuple(min(cube[name], size[name]) for name in axes)
    width = size.get("x", 1)
    height = size.get("y", 1)
    chunk_x = min(width, 2 ** math.ceil(math.log2(math.isqrt(elements))))
    chunk_y = min(height, max(1, elements // chunk_x))
    chunk_z = min(size.get("z", 1), max(1, elements // (chunk_x * chunk_y)))
    chunk = {"t": 1, "c": 1, "z": chunk_z, "y": chunk_y, "x": chunk_x}
    return tuple(chunk[name] for name in axes)


def pyramid_steps(
    shape: tuple[int, ...], axes: str, chunks: tuple[int, ...], voxel_depth: float = 1.0
) -> list[tuple[int, ...]]:
    """How each level below level 0 is made from the one above: a factor (1 or 2) per axis.

    Every level halves y and x until a level fits one chunk. A volume's levels halve z too, but only once
    its voxels are about isotropic: ``voxel_depth`` is level 0's z spacing over its pixel width, and while
    a voxel is more than sqrt(2) times deeper than wide only y and x are halved (each such level halves the
    ratio); then z, y and x are halved together, or z alone where y and x already fit a chunk or a voxel
    is much wider than deep, until a level fits one chunk in z too."""
    iz = axes.find("z")
    iy, ix = axes.index("y"), axes.index("x")
    volume = is_volume(shape, axes)
    current, ratio = list(shape), voxel_depth
    steps: list[tuple[int, ...]] = []
    while True:
        fits_plane = current[iy] <= chunks[iy] and current[ix] <= chunks[ix]
        if fits_plane and not (volume and current[iz] > chunks[iz]):
            return steps
        can_halve_z = volume and current[iz] > 1
        halve_z = can_halve_z and (fits_plane or ratio < _ISOTROPIC)
        halve_plane = not fits_plane and (ratio > 1 / _ISOTROPIC or not can_halve_z)
        step = [1] * len(axes)
        if halve_plane:
            step[iy] = step[ix] = 2
            ratio /= 2
        if halve_z:
            step[iz] = 2
            ratio *= 2
        steps.append(tuple(step))
        current = [math.ceil(n / f) for n, f in zip(current, step, strict=True)]


def voxel_depth(scale: tuple[float, ...], axes: tuple[Axis, ...]) -> float:
    """Level 0's z spacing over its x pixel size, in one unit where the axes have different ones (1 when
    the image has no z or its sizes are unknown)."""
    names = "".join(axis.name for axis in axes)
    if "z" not in names:
        return 1.0
    z_axis, x_axis = axes[names.index("z")], axes[names.index("x")]
    depth, width = scale[names.index("z")], scale[names.index("x")]
    if z_axis.unit and x_axis.unit and z_axis.unit != x_axis.unit:
        with contextlib.suppress(KeyError):  # not both lengths: compare the numbers as they are
            depth = convert_length(depth, z_axis.unit, x_axis.unit)
    return depth / width if width > 0 and depth > 0 else 1.0


def pyramid_shapes(
    shape: tuple[int, ...], axes: str, chunks: tuple[int, ...], voxel_depth: float = 1.0
) -> list[tuple[int, ...]]:
    """Level shapes, level 0 first (odd edges rounded up), made by ``pyramid_steps``."""
    levels = [tuple(shape)]
    for step in pyramid_steps(shape, axes, chunks, voxel_depth):
        levels.append(tuple(math.ceil(n / f) for n, f in zip(levels[-1], step, strict=True)))
    return levels


def level_scales(scale: tuple[float, ...], steps: list[tuple[int, ...]]) -> list[tuple[float, ...]]:
    """Physical pixel size at each pyramid level (OME-NGFF: one scale transform per dataset)."""
    scales = [tuple(scale)]
    for step in steps:
        scales.append(tuple(s * f for s, f in zip(scales[-1], step, strict=True)))
    return scales


def level_plane(level_0: tuple[int, ...], level: tuple[int, ...], axes: str, z: int, axis: str = "z") -> int:
    """The plane of a pyramid level that holds level 0's plane ``z`` (or its row or column, for ``axis``
    y or x): a volume's lower levels have fewer planes, each level that halves z halving the index."""
    if axis not in axes:
        return z
    index = axes.index(axis)
    factor = 2 ** round(math.log2(level_0[index] / level[index]))
    return min(z // factor, level[index] - 1)

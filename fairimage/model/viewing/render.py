"""How pixels become a picture: which plane, which channels in which colour and contrast, which region at
which size. Pure rules, used alike by rendered tiles, thumbnails, Deep Zoom and IIIF, so that all of them
show what the viewer shows."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from fairimage.model.errors import InvalidInputError
from fairimage.model.image import is_colour_picture
from fairimage.model.study import Image

MAX_OUTPUT_PIXELS = 4096 * 4096
FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}
_INTEGER_RANGES = {"uint8": 255.0, "int8": 127.0, "uint16": 65535.0, "int16": 32767.0}


@dataclass(frozen=True)
class ChannelRendering:
    """One channel drawn in ``color`` (RRGGBB), its values from ``start`` (black) to ``end`` (full colour)."""

    index: int
    color: str
    start: float
    end: float

    @property
    def rgb(self) -> tuple[float, float, float]:
        value = int(self.color, 16)
        return ((value >> 16) & 255) / 255.0, ((value >> 8) & 255) / 255.0, (value & 255) / 255.0


@dataclass(frozen=True)
class Plane:
    """Which z and t of an image, and which channels in which colours and windows."""

    z: int
    t: int
    channels: tuple[ChannelRendering, ...]

    def key(self) -> str:
        """A canonical text of these settings, for caches and ETags."""
        parts = [f"{c.index}:{c.color}:{c.start:g}:{c.end:g}" for c in self.channels]
        return f"z{self.z}t{self.t}c{','.join(parts)}"


@dataclass(frozen=True)
class Region:
    """A rectangle in level-0 pixels."""

    x: int
    y: int
    width: int
    height: int

    def key(self) -> str:
        return f"{self.x},{self.y},{self.width},{self.height}"


# An orthogonal view of a 3D image: the axis it cuts at, and the axis across the picture (z runs down it).
ORTHOGONAL_VIEWS = {"xz": ("y", "x"), "yz": ("x", "y")}


@dataclass(frozen=True)
class Cut:
    """An orthogonal view: the plane through every z at ``at`` along ``axis`` (y for xz, x for yz)."""

    view: str
    axis: str
    across: str
    at: int

    def key(self) -> str:
        return f"{self.view}{self.at}"


def parse_cut(image: Image, view: str, at: int | None) -> Cut:
    """An xz or yz view at a row or column of level 0 (default: the middle one); of a 2D image, the view
    is that one row or column."""
    if view not in ORTHOGONAL_VIEWS:
        raise InvalidInputError(f"view={view!r}: use xz (a plane through z at a row) or yz (at a column)")
    axis, across = ORTHOGONAL_VIEWS[view]
    size = image_size(image, axis)
    if at is not None and not 0 <= at < size:
        raise InvalidInputError(f"at={at}: the {view} view cuts at {axis}, which is 0 to {size - 1} here")
    return Cut(view, axis, across, size // 2 if at is None else at)


def is_rgb(image: Image) -> bool:
    """A colour picture (PNG, JPEG, RGB TIFF): 8-bit red, green, blue channels shown as they are."""
    return is_colour_picture(image.channels, image.dtype)


def default_plane(image: Image) -> Plane:
    """What a viewer first shows: the middle z, the first t, every channel in its omero colour and window."""
    return Plane(
        z=image_size(image, "z") // 2,
        t=0,
        channels=tuple(_default_channel(image, index) for index in range(image_size(image, "c"))),
    )


def parse_plane(
    image: Image,
    z: int | None = None,
    t: int | None = None,
    channels: str | None = None,
    colors: str | None = None,
    windows: str | None = None,
) -> Plane:
    """Settings from query text: ``c=0,2`` (0-based channel indices), ``colors=FF0000,00FF00`` and
    ``window=100:3000,0:5000`` in the order of ``c``; what is left out comes from the image's defaults."""
    default = default_plane(image)
    z = default.z if z is None else _within(z, image_size(image, "z"), "z")
    t = default.t if t is None else _within(t, image_size(image, "t"), "t")
    count = image_size(image, "c")
    indices = (
        [c.index for c in default.channels]
        if channels is None
        else [_within(_integer(text, "c"), count, "c") for text in _items(channels)]
    )
    color_texts = _matching(colors, len(indices), "colors")
    window_texts = _matching(windows, len(indices), "window")
    rendered = []
    for position, index in enumerate(indices):
        channel = _default_channel(image, index)
        color = channel.color if color_texts is None else _color(color_texts[position])
        start, end = (channel.start, channel.end) if window_texts is None else _window(window_texts[position])
        rendered.append(ChannelRendering(index=index, color=color, start=start, end=end))
    return Plane(z=z, t=t, channels=tuple(rendered))


def parse_region(text: str | None, width: int, height: int) -> Region:
    """``x,y,w,h`` in level-0 pixels, clipped to the image; the whole image when not given."""
    if text is None:
        return Region(0, 0, width, height)
    parts = _items(text)
    if len(parts) != 4:
        raise InvalidInputError(f"region {text!r}: give x,y,w,h in pixels of the full-resolution image")
    x, y, w, h = (_integer(part, "region") for part in parts)
    if x < 0 or y < 0 or w <= 0 or h <= 0 or x >= width or y >= height:
        raise InvalidInputError(
            f"region {text!r}: must start inside the {width}x{height} image and have a positive size"
        )
    return Region(x, y, min(w, width - x), min(h, height - y))


def fit_size(region: Region, size: int) -> tuple[int, int]:
    """The output size that fits ``region`` into a ``size`` x ``size`` box, keeping its aspect ratio."""
    factor = min(1.0, size / max(region.width, region.height))
    return max(1, round(region.width * factor)), max(1, round(region.height * factor))


def check_output_size(width: int, height: int) -> None:
    if width * height > MAX_OUTPUT_PIXELS:
        raise InvalidInputError(
            f"output of {width}x{height} pixels is larger than {MAX_OUTPUT_PIXELS} pixels; "
            "ask for a smaller region, a size= or a coarser level="
        )


def choose_level(level_widths: list[int], region_width: int, output_width: int) -> int:
    """The coarsest pyramid level that still has at least as many pixels as the output needs, so a
    thumbnail never decodes level 0 and a full-resolution tile never decodes a coarse level."""
    best = 0
    for index, level_width in enumerate(level_widths):
        pixels_at_level = region_width * level_width / level_widths[0]
        if pixels_at_level + 1e-9 >= output_width:
            best = index
    return best


def compose(planes: list[np.ndarray], channels: tuple[ChannelRendering, ...]) -> np.ndarray:
    """Additive colour composition of channel planes (as the viewer's shader does): each channel scaled
    to its window, clipped to 0..1, times its colour; the sum clipped and returned as 8-bit RGB. One 8 or
    16-bit channel is looked up in a table of every value's colour (built once per window and colour),
    which gives the same bytes several times faster (most tiles are of one channel)."""
    if len(planes) == 1 and planes[0].dtype in (np.uint8, np.uint16):
        (channel,) = channels
        table = _colour_table(planes[0].dtype.str, channel.start, channel.end, channel.color)
        return np.take(table, planes[0], axis=0)
    height, width = planes[0].shape if planes else (1, 1)
    out = np.zeros((height, width, 3), np.float32)
    for plane, channel in zip(planes, channels, strict=True):
        _add(out, plane.astype(np.float32), channel)
    return _to_bytes(out)


def _add(out: np.ndarray, values: np.ndarray, channel: ChannelRendering) -> None:
    """``channel``'s colour of ``values`` (float32), scaled to its window and clipped, added to ``out``."""
    span = channel.end - channel.start
    scaled = (values - channel.start) * (1.0 / span if span else 1.0)
    np.clip(scaled, 0.0, 1.0, out=scaled)
    for index, weight in enumerate(channel.rgb):
        if weight:
            out[..., index] += scaled * weight


def _to_bytes(out: np.ndarray) -> np.ndarray:
    np.clip(out, 0.0, 1.0, out=out)
    return (out * 255.0 + 0.5).astype(np.uint8)


@functools.lru_cache(maxsize=64)
def _colour_table(dtype: str, start: float, end: float, color: str) -> np.ndarray:
    """The RGB bytes of every value of an 8 or 16-bit type, for one channel alone (as ``compose``
    computes them), read-only."""
    values = np.arange(np.iinfo(np.dtype(dtype)).max + 1, dtype=np.float32)
    out = np.zeros((len(values), 3), np.float32)
    _add(out, values, ChannelRendering(0, color, start, end))
    table = _to_bytes(out)
    table.flags.writeable = False
    return table


def image_size(image: Image, axis: str) -> int:
    """Length of an axis (``x``, ``y``, ``z``, ``c``, ``t``); 1 when the image has no such axis."""
    names = [a.name for a in image.axes]
    return image.shape[names.index(axis)] if axis in names else 1


def media_type(format: str) -> str:
    try:
        return FORMATS[format]
    except KeyError:
        raise InvalidInputError(f"format {format!r}: use one of png, jpeg, webp") from None


def _default_channel(image: Image, index: int) -> ChannelRendering:
    channel = image.channels[index] if index < len(image.channels) else None
    color = channel.color if channel is not None else "FFFFFF"
    if is_rgb(image):
        return ChannelRendering(index=index, color=color, start=0.0, end=255.0)
    if channel is not None and channel.window is not None:
        return ChannelRendering(index, color, channel.window.start, channel.window.end)
    return ChannelRendering(index=index, color=color, start=0.0, end=_INTEGER_RANGES.get(image.dtype, 1.0))


def _items(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _matching(text: str | None, count: int, name: str) -> list[str] | None:
    if text is None:
        return None
    items = _items(text)
    if len(items) != count:
        raise InvalidInputError(f"{name}={text!r}: give {count} value(s), one per channel in c")
    return items


def _integer(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidInputError(f"{name}: {text!r} is not a whole number") from None


def _within(value: int, size: int, name: str) -> int:
    if not 0 <= value < size:
        raise InvalidInputError(f"{name}={value}: this image has {name} from 0 to {size - 1}")
    return value


def _color(text: str) -> str:
    color = text.removeprefix("#").upper()
    if len(color) != 6 or any(ch not in "0123456789ABCDEF" for ch in color):
        raise InvalidInputError(f"colors: {text!r} is not a colour; write RRGGBB, e.g. FF00FF")
    return color


def _window(text: str) -> tuple[float, float]:
    try:
        start, end = (float(part) for part in text.split(":"))
    except ValueError:
        raise InvalidInputError(f"window: {text!r} is not start:end, e.g. 100:4000") from None
    if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
        raise InvalidInputError(f"window: {text!r} needs a finite start below its end")
    return start, end

"""A field of a plate as one image: its (channel, z, t) planes, each in its own file (or page), read
lazily plane by plane, so a plate of any size converts in the memory of a few planes."""

from __future__ import annotations

import struct
from collections import OrderedDict
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from fairimage.formats.base import Region, check_declared
from fairimage.model.errors import CorruptFileError, InvalidInputError
from fairimage.model.image import Channel, ImageMetadata, default_channels, make_axes
from fairimage.model.plates.layout import Field, Plane, PlateChannel, PlateLayout

_CACHED_PLANES = 8  # a writer reads a plane's rows band by band: keep the planes being read decoded


def plane_header(plane: Plane) -> tuple[tuple[int, int], str]:
    """The (height, width) and dtype of a plane, from its file's header alone; planes are decoded whole,
    so a declared size beyond what fairimage decodes at once is refused here."""
    try:
        shape, dtype = _plane_header(plane)
        check_declared(str(plane.path), shape, np.dtype(dtype).itemsize)
    except _DAMAGED as exc:
        raise CorruptFileError(f"{plane.path}: not a readable image ({exc}); copy it again") from None
    return shape, dtype


def _plane_header(plane: Plane) -> tuple[tuple[int, int], str]:
    if plane.path.suffix.lower() == ".png":
        with Image.open(plane.path) as picture:
            dtype = "uint16" if picture.mode.startswith("I;16") or picture.mode == "I" else "uint8"
            return (picture.height, picture.width), dtype
    with tifffile.TiffFile(plane.path) as tif:
        page = tif.pages[plane.page]
        shape = tuple(page.shape)
        if len(shape) != 2:
            raise InvalidInputError(
                f"{plane.path}: a plane of shape {shape}; plate images are single-channel 2D planes"
            )
        return (shape[0], shape[1]), np.dtype(page.dtype).name


# What tifffile and Pillow raise for a damaged image (as in formats/tiff.py: offsets, counts and tag values
# of any kind), and the imagecodecs decoders' RuntimeErrors.
_DAMAGED = (
    OSError,
    tifffile.TiffFileError,
    IndexError,
    ValueError,
    TypeError,
    KeyError,
    ZeroDivisionError,
    OverflowError,
    struct.error,
    EOFError,
    RuntimeError,
    SyntaxError,
    AssertionError,  # tifffile asserts what it expects of a file's structure
)


def check_planes(layout: PlateLayout) -> tuple[tuple[int, int], str]:
    """Every plane of the plate has the first one's shape and dtype; the first that differs is named."""
    first: tuple[tuple[int, int], str] | None = None
    first_path: Path | None = None
    for item in layout.fields:
        for plane in item.planes.values():
            header = plane_header(plane)
            if first is None:
                first, first_path = header, plane.path
            elif header != first:
                (h, w), dtype = header
                (fh, fw), fdtype = first
                raise InvalidInputError(
                    f"{plane.path}: {w}x{h} {dtype}, but the plate's images are {fw}x{fh} {fdtype} "
                    f"(as {first_path}); every channel and field of a plate must match"
                )
    assert first is not None  # a layout has at least one plane
    return first


class PlateFieldSource:
    """One field of a plate as an ImageSource with axes (t)c(z)yx."""

    def __init__(self, layout: PlateLayout, item: Field, plane_shape: tuple[int, int], dtype: str) -> None:
        self._field = item
        names = ("t" if layout.timepoints > 1 else "") + "c" + ("z" if layout.z_planes > 1 else "") + "yx"
        sizes = {"t": layout.timepoints, "c": len(layout.channels), "z": layout.z_planes}
        shape = tuple(sizes.get(name, 0) for name in names[:-2]) + plane_shape
        size = layout.pixel_size
        units: dict[str, str | None] = {"y": size.unit, "x": size.unit} if size else {}
        if size and size.z and "z" in names:
            units["z"] = size.unit
        scale = {"y": size.y, "x": size.x, "z": size.z or 1.0} if size else {}
        self._names = names
        self._dtype = dtype
        self._cache: OrderedDict[Plane, np.ndarray] = OrderedDict()
        self._metadata = ImageMetadata(
            name=f"{layout.name} {item.well} field {item.index + 1}",
            axes=make_axes(names, units),
            shape=shape,
            dtype=dtype,
            scale=tuple(float(scale.get(name, 1.0)) for name in names),
            channels=_channels(layout.channels),
        )

    @property
    def metadata(self) -> ImageMetadata:
        return self._metadata

    def read(self, region: Region) -> np.ndarray:
        shape = self._metadata.shape
        ranges = {
            name: range(*region[axis].indices(shape[axis])) for axis, name in enumerate(self._names[:-2])
        }
        ys, xs = region[-2], region[-1]
        out = np.zeros(tuple(len(r) for r in ranges.values()) + self._rows_cols(ys, xs), dtype=self._dtype)
        for t_pos, t in enumerate(ranges.get("t", range(1))):
            for c_pos, c in enumerate(ranges.get("c", range(1))):
                for z_pos, z in enumerate(ranges.get("z", range(1))):
                    plane = self._field.planes.get((c, z, t))
                    if plane is None:
                        continue  # a missing plane (recorded in the plate's layout) stays zero
                    index = tuple({"t": t_pos, "c": c_pos, "z": z_pos}[name] for name in self._names[:-2])
                    out[index] = self._plane(plane)[ys, xs]
        return out

    def _rows_cols(self, ys: slice, xs: slice) -> tuple[int, int]:
        height, width = self._metadata.shape[-2:]
        return len(range(*ys.indices(height))), len(range(*xs.indices(width)))

    def _plane(self, plane: Plane) -> np.ndarray:
        cached = self._cache.get(plane)
        if cached is not None:
            self._cache.move_to_end(plane)
            return cached
        try:
            if plane.path.suffix.lower() == ".png":
                with Image.open(plane.path) as picture:
                    pixels = np.asarray(picture).astype(self._dtype, copy=False)
            else:
                pixels = tifffile.imread(plane.path, key=plane.page)
        except _DAMAGED as exc:
            raise CorruptFileError(f"{plane.path}: pixel data unreadable ({exc}); copy it again") from None
        self._cache[plane] = pixels
        if len(self._cache) > _CACHED_PLANES:
            self._cache.popitem(last=False)
        return pixels


def _channels(channels: tuple[PlateChannel, ...]) -> tuple[Channel, ...]:
    """Coloured by emission wavelength where the vendor gives it, else as viewers colour unnamed channels."""
    if all(channel.emission_nm is None for channel in channels):
        return default_channels(len(channels), [channel.name for channel in channels])
    return tuple(_channel(channel) for channel in channels)


def _channel(channel: PlateChannel) -> Channel:
    """A channel coloured by its emission wavelength where it is known (blue below 500 nm, green to 560,
    yellow to 600, red beyond), else white."""
    wavelength = channel.emission_nm
    if wavelength is None:
        return Channel(label=channel.name, color="FFFFFF")
    colour = (
        "0000FF"
        if wavelength < 500
        else "00FF00"
        if wavelength < 560
        else "FFFF00"
        if wavelength < 600
        else "FF0000"
    )
    return Channel(label=channel.name, color=colour)

"""PNG and JPEG through Pillow. These formats cannot be read by region, so the picture is decoded once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageMode, UnidentifiedImageError
from PIL.Image import DecompressionBombError

from fairimage.formats.base import OpenedFile, Region, check_declared
from fairimage.model.errors import CorruptFileError
from fairimage.model.image import Channel, ImageMetadata, default_channels, make_axes, rgb_channels

# Scientific PNGs can be far larger than Pillow's decompression-bomb guard (89 Mpx); the user chose the file.
Image.MAX_IMAGE_PIXELS = 1 << 32

_MAGIC = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpeg"}
_CMYK = (
    Channel(label="Cyan", color="00FFFF"),
    Channel(label="Magenta", color="FF00FF"),
    Channel(label="Yellow", color="FFFF00"),
    Channel(label="Black", color="FFFFFF"),
)


class RasterReader:
    name = "raster"

    def sniff(self, head: bytes) -> bool:
        return any(head.startswith(magic) for magic in _MAGIC)

    @contextmanager
    def open(self, path: Path) -> Iterator[OpenedFile]:
        yield OpenedFile(format=picture_kind(path), images=[RasterSource(path)])


def picture_kind(path: Path) -> str:
    """png or jpeg, by the file's first bytes (which ``RasterReader.sniff`` recognised)."""
    with path.open("rb") as f:
        head = f.read(8)
    return next(name for magic, name in _MAGIC.items() if head.startswith(magic))


class RasterSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._pixels, mode = _decode(path)
        if self._pixels.ndim == 3:
            self._pixels = np.moveaxis(self._pixels, -1, 0)  # Pillow gives y, x, samples
        self._metadata = _picture_metadata(path, self._pixels.shape, self._pixels.dtype, mode)

    @property
    def metadata(self) -> ImageMetadata:
        return self._metadata

    def read(self, region: Region) -> np.ndarray:
        return self._pixels[region]


# What Pillow raises for a picture it cannot read.
_UNDECODABLE = (
    UnidentifiedImageError,
    DecompressionBombError,
    OSError,
    SyntaxError,
    ValueError,
    OverflowError,
)


def read_picture_header(path: Path) -> ImageMetadata:
    """What a picture's header says (size, samples, pixel type), without decoding its pixels: the metadata
    ``RasterSource`` will have, so that many files can be checked against each other before any is read."""
    try:
        with Image.open(path) as opened:
            _check_picture(path, opened)
            mode, (width, height) = _shown_mode(opened), opened.size
    except _UNDECODABLE as exc:
        raise CorruptFileError(
            f"{path}: cannot read the picture's header ({exc}); the file may be damaged, copy it again"
        ) from exc
    described = ImageMode.getmode(mode)
    samples = len(described.bands)
    shape = (height, width) if samples == 1 else (samples, height, width)
    return _picture_metadata(path, shape, np.dtype(described.typestr).newbyteorder("="), mode)


def _shown_mode(picture: Image.Image) -> str:
    """The mode a picture is decoded into: a palette keeps what the picture shows (with transparency if it
    has any), YCbCr becomes RGB; other modes as they are."""
    if picture.mode == "P":
        return "RGBA" if "transparency" in picture.info else "RGB"
    return "RGB" if picture.mode == "YCbCr" else picture.mode


def _picture_metadata(path: Path, shape: tuple[int, ...], dtype: np.dtype, mode: str) -> ImageMetadata:
    """A picture of ``shape`` (y, x) or (samples, y, x) as an image."""
    axes = "yx" if len(shape) == 2 else "cyx"
    channels = default_channels(1) if len(shape) == 2 else _colour_channels(mode, shape[0])
    return ImageMetadata(
        name=path.name,
        axes=make_axes(axes),
        shape=shape,
        dtype=dtype.name,
        scale=(1.0,) * len(axes),
        channels=channels,
    )


def _decode(path: Path) -> tuple[np.ndarray, str]:
    """The pixels (y, x[, samples]) and the Pillow mode they are in."""
    try:
        with Image.open(path) as opened:
            _check_picture(path, opened)
            opened.load()
            picture: Image.Image = opened
            mode = _shown_mode(picture)
            if mode != picture.mode:
                picture = picture.convert(mode)
            pixels = np.asarray(picture)
    except _UNDECODABLE as exc:
        raise CorruptFileError(
            f"{path}: cannot decode the picture ({exc}); the file may be truncated or damaged, copy it again"
        ) from exc
    if mode in ("I;16B", "I;16L", "I;16") and pixels.dtype.byteorder not in ("=", "|"):
        pixels = pixels.astype(pixels.dtype.newbyteorder("="))
    return pixels, mode


# The most decoded bytes one byte of a file can give: deflate never compresses better than 1032:1
# (RFC 1951: a 258-byte match costs at least 2 bits); Huffman-coded JPEG spends at least a bit on each 8x8
# block of each component, 64 pixels of up to 3 bytes (chroma subsampling aside: 2048 leaves room for it).
# libjpeg fills what a truncated JPEG lacks with grey, so a header alone would otherwise decode to gigabytes.
_MOST_PER_BYTE = {"PNG": 1032, "JPEG": 2048, "MPO": 2048}


def _check_picture(path: Path, picture: Image.Image) -> None:
    """The declared size, before Pillow allocates it: one fairimage decodes at once, and one the file's
    bytes can hold (a few bytes cannot inflate to gigabytes)."""
    width, height = picture.size
    sample = 2 if picture.mode.startswith("I;16") else 4 if picture.mode in ("I", "F") else 1
    itemsize = len(picture.getbands()) * sample
    check_declared(str(path), (height, width), itemsize)
    size = path.stat().st_size
    if width * height * itemsize > _MOST_PER_BYTE.get(picture.format or "", 1 << 30) * size + (1 << 20):
        raise CorruptFileError(
            f"{path}: truncated: it declares {width} x {height} pixels, more than its {size} bytes can hold; "
            "the file is incomplete or damaged, copy it again"
        )


def _colour_channels(mode: str, count: int) -> tuple[Channel, ...]:
    if mode == "CMYK":
        return _CMYK
    if mode == "LA":
        return (Channel(label="Luminance", color="FFFFFF"), Channel(label="Alpha", color="FFFFFF"))
    return rgb_channels(count)

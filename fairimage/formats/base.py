"""The seam between files and the rest of fairimage: metadata plus lazy region reads."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from fairimage.model.errors import CorruptFileError, UnsupportedError
from fairimage.model.image import AXIS_ORDER, ImageMetadata

Region = tuple[slice, ...]

# Sizes a header may declare, checked before anything is allocated for them: a damaged or hostile header can
# claim any size in a few bytes. MAX_SIDE is 5x the widest whole slide scans (about 200 000 pixels);
# MAX_PIECE_BYTES bounds what a reader decodes at once (a PNG or JPEG picture, a TIFF strip or tile, a
# DICOM frame, a zarr chunk), as Pillow's own guard bounds pictures.
# MAX_PIXELS (a petabyte of bytes) and MAX_CHANNELS are beyond any instrument's output.
MAX_SIDE = 1 << 20
MAX_PIECE_BYTES = 1 << 32
MAX_PIXELS = 1 << 50
MAX_CHANNELS = 1 << 14


def check_declared(
    where: str, shape: Sequence[int], itemsize: int, piece: Sequence[int] | None = None, channels: int = 1
) -> None:
    """Refuse an image whose header declares no pixels along an axis, a y or x side beyond MAX_SIDE, more
    than MAX_PIXELS or MAX_CHANNELS, or a piece (``piece``, the whole image by default) that decodes to more
    than MAX_PIECE_BYTES."""
    if any(n <= 0 for n in shape):
        raise CorruptFileError(
            f"{where}: the header declares a size of {tuple(shape)}, with no pixels along an axis; "
            "the file is damaged"
        )
    if math.prod(shape) > MAX_PIXELS or channels > MAX_CHANNELS:
        raise UnsupportedError(
            f"{where}: the header declares {math.prod(shape)} pixels in {channels} channel(s), more than "
            f"fairimage reads ({MAX_PIXELS} pixels, {MAX_CHANNELS} channels); the file is likely damaged"
        )
    if max(shape[-2:]) > MAX_SIDE:
        raise UnsupportedError(
            f"{where}: the header declares {' x '.join(map(str, shape[-2:]))} pixels (y x x), more than "
            f"fairimage reads ({MAX_SIDE} along y and x); if the file is not damaged, split it into tiles"
        )
    nbytes = math.prod(piece if piece is not None else shape) * itemsize
    if nbytes > MAX_PIECE_BYTES:
        raise UnsupportedError(
            f"{where}: one piece of the image decodes to {nbytes} bytes, more than fairimage decodes at "
            f"once ({MAX_PIECE_BYTES}); if the file is not damaged, write it tiled or in smaller chunks"
        )


class ImageSource(Protocol):
    """One image in a file. ``read`` returns the pixels of a region, in ``metadata.axes`` order."""

    @property
    def metadata(self) -> ImageMetadata: ...

    def read(self, region: Region) -> np.ndarray: ...


@dataclass
class OpenedFile:
    """The images found in one input (a file or an OME-Zarr folder), and what closes it."""

    format: str
    images: list[ImageSource]
    close: Callable[[], None] = field(default=lambda: None)

    def __enter__(self) -> OpenedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Reader(Protocol):
    """A file format: recognises its files by their first bytes and opens them."""

    name: str

    def sniff(self, head: bytes) -> bool: ...

    def open(self, path: Any) -> AbstractContextManager[OpenedFile]: ...


@dataclass(frozen=True)
class AxisPlan:
    """How a source array's dimensions become our tczyx axes: each target axis is one source dimension,
    or several (e.g. TIFF channels x samples) merged in C order; size-1 source dimensions may be dropped."""

    source_shape: tuple[int, ...]
    sources: tuple[tuple[int, ...], ...]  # per target axis, the source dimensions it is made of
    dropped: tuple[int, ...] = ()  # size-1 source dimensions the target leaves out

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(math.prod(self.source_shape[d] for d in dims) for dims in self.sources)

    def read(self, array: Any, region: Region) -> np.ndarray:
        """Read ``region`` (target order) from ``array`` (source order, sliceable like numpy/zarr)."""
        region = tuple(slice(*r.indices(n)) for r, n in zip(region, self.shape, strict=True))
        merged = [k for k, dims in enumerate(self.sources) if len(dims) > 1]
        if not merged:
            return self._read_block(array, region, {})
        # Merged axes are read one index at a time, so memory stays that of the requested region.
        out_shape = tuple(len(range(r.start, r.stop, r.step)) for r in region)
        out: np.ndarray | None = None
        ranges = [list(enumerate(range(region[k].start, region[k].stop, region[k].step))) for k in merged]
        for combo in itertools.product(*ranges):
            block = self._read_block(array, region, {k: i for k, (_, i) in zip(merged, combo, strict=True)})
            if out is None:
                out = np.empty(out_shape, dtype=block.dtype)
            where: list[Any] = [slice(None)] * len(out_shape)
            for k, (position, _) in zip(merged, combo, strict=True):
                where[k] = position
            out[tuple(where)] = block
        assert out is not None  # every region of a valid plan has at least one index per axis
        return out

    def _read_block(self, array: Any, region: Region, fixed: dict[int, int]) -> np.ndarray:
        """Read with merged target axes fixed at one index each; returns the other axes in target order."""
        index: list[Any] = [0] * len(self.source_shape)  # dropped dimensions stay at index 0
        kept: list[int] = []
        for k, dims in enumerate(self.sources):
            if k in fixed:
                sizes = [self.source_shape[d] for d in dims]
                for d, i in zip(dims, np.unravel_index(fixed[k], sizes), strict=True):
                    index[d] = int(i)
            else:
                index[dims[0]] = region[k]
                kept.append(dims[0])
        block = np.asarray(array[tuple(index)])
        # Integer-indexed dimensions vanish; the rest come back in ascending source order.
        remaining = sorted(kept)
        return block.transpose([remaining.index(d) for d in kept])


def plan_axes(
    source_axes: str, source_shape: Sequence[int], mapping: dict[str, str], where: str
) -> tuple[str, AxisPlan]:
    """Map a reader's axis letters (e.g. tifffile's 'TZCYXS') to tczyx.

    ``mapping`` says which target axis each source letter belongs to; several letters may share one target,
    which is then their product (C and S both give channels). Size-1 dimensions are dropped, except y and x.
    """
    groups: dict[str, list[int]] = {}
    for d, letter in enumerate(source_axes):
        target = mapping.get(letter)
        if target is None:
            raise CorruptFileError(
                f"{where}: axis {letter!r} of shape {tuple(source_shape)} is not understood"
            )
        groups.setdefault(target, []).append(d)
    if "y" not in groups or "x" not in groups:
        raise CorruptFileError(
            f"{where}: no y/x plane in axes {source_axes!r}; fairimage needs 2D to 5D images"
        )
    names = "".join(
        name
        for name in AXIS_ORDER
        if name in groups and (name in "yx" or math.prod(source_shape[d] for d in groups[name]) > 1)
    )
    dropped = tuple(d for name, dims in groups.items() if name not in names for d in dims)
    sources = tuple(tuple(groups[name]) for name in names)
    return names, AxisPlan(source_shape=tuple(source_shape), sources=sources, dropped=dropped)

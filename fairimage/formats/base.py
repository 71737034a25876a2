"""The seam between files and the rest of fairimage: metadata plus lazy region reads."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from fairimage.model.errors import CorruptFileError
from fairimage.model.image import AXIS_ORDER, ImageMetadata

Region = tuple[slice, ...]


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


def plan_axes(source_axes: str, source_shape: Sequence[int], mapping: dict[str, str]) -> tuple[str, AxisPlan]:
    """Map a reader's axis letters (e.g. tifffile's 'TZCYXS') to tczyx.

    ``mapping`` says which target axis each source letter belongs to; several letters may share one target,
    which is then their product (C and S both give channels). Size-1 dimensions are dropped, except y and x.
    """
    groups: dict[str, list[int]] = {}
    for d, letter in enumerate(source_axes):
        target = mapping.get(letter)
        if target is None:
            raise CorruptFileError(f"axis {letter!r} of shape {tuple(source_shape)} is not understood")
        groups.setdefault(target, []).append(d)
    if "y" not in groups or "x" not in groups:
        raise CorruptFileError(f"no y/x plane in axes {source_axes!r}; fairimage needs 2D to 5D images")
    names = "".join(
        name
        for name in AXIS_ORDER
        if name in groups and (name in "yx" or math.prod(source_shape[d] for d in groups[name]) > 1)
    )
    dropped = tuple(d for name, dims in groups.items() if name not in names for d in dims)
    sources = tuple(tuple(groups[name]) for name in names)
    return names, AxisPlan(source_shape=tuple(source_shape), sources=sources, dropped=dropped)

"""Stream an ImageSource into an OME-Zarr 0.5 image: level 0 is written band by band as it is read, and every
lower level is built from those bands on the way, so memory is a few chunk rows whatever the image size."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from fairimage import __version__
from fairimage.model.errors import UnsupportedError
from fairimage.model.image import (
    DEFAULT_CHUNK_BYTES,
    Channel,
    ImageMetadata,
    Window,
    choose_chunks,
    level_scale,
    pyramid_shapes,
    stored_dtype,
)
from fairimage.ngff.metadata import Ngff05
from fairimage.ngff.pyramid import display_window, downsample_2x

Progress = Callable[[int], None]


@dataclass(frozen=True)
class WriteOptions:
    """How images are stored: chunk size target and Blosc codec (OME-Zarr default: zstd level 5 + shuffle)."""

    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    cname: Literal["zstd", "lz4", "lz4hc", "blosclz", "zlib"] = "zstd"
    clevel: int = 5
    shuffle: Literal["shuffle", "bitshuffle", "noshuffle"] = "shuffle"


@dataclass(frozen=True)
class Level:
    path: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    scale: tuple[float, ...]


@dataclass(frozen=True)
class WrittenImage:
    """What was stored: the levels, the stored dtype and the channels with display windows from the data."""

    dtype: str
    levels: list[Level]
    channels: tuple[Channel, ...]


class _ChannelStats:
    """Running min/max per channel over level 0."""

    def __init__(self, count: int) -> None:
        self.low = [math.inf] * count
        self.high = [-math.inf] * count

    def add(self, channel: int, block: np.ndarray) -> None:
        if block.dtype.kind == "f":
            finite = block[np.isfinite(block)]
            if finite.size == 0:
                return
            block = finite
        self.low[channel] = min(self.low[channel], float(block.min()))
        self.high[channel] = max(self.high[channel], float(block.max()))


@dataclass
class _LevelPipe:
    """Receives rows of the level above, halves them and writes full chunk rows of its own level."""

    array: Any
    lead: tuple[slice, ...]
    chunk_rows: int
    below: _LevelPipe | None
    carry: np.ndarray | None = None  # an odd row waiting for its pair
    pending: list[np.ndarray] = field(default_factory=list)
    pending_rows: int = 0
    next_row: int = 0

    def push(self, rows: np.ndarray, final: bool) -> None:
        if self.carry is not None:
            rows = np.concatenate([self.carry, rows], axis=-2)
            self.carry = None
        if not final and rows.shape[-2] % 2:
            self.carry, rows = rows[..., -1:, :], rows[..., :-1, :]
        halved = downsample_2x(rows)
        self.pending.append(halved)
        self.pending_rows += halved.shape[-2]
        while self.pending_rows >= self.chunk_rows or (final and self.pending_rows):
            self._write(min(self.chunk_rows, self.pending_rows))
        if self.below is not None:
            self.below.push(halved, final)

    def _write(self, count: int) -> None:
        buffered = np.concatenate(self.pending, axis=-2) if len(self.pending) > 1 else self.pending[0]
        self.array[(*self.lead, slice(self.next_row, self.next_row + count), slice(None))] = buffered[
            ..., :count, :
        ]
        self.next_row += count
        rest = buffered[..., count:, :]
        self.pending = [rest] if rest.shape[-2] else []
        self.pending_rows -= count


def write_image(
    source: Any, store: Any, options: WriteOptions = WriteOptions(), on_progress: Progress | None = None
) -> WrittenImage:
    """Write ``source`` (an ImageSource) as an OME-Zarr 0.5 multiscale image into the zarr ``store``."""
    meta: ImageMetadata = source.metadata
    axes = meta.axis_names
    if axes[-2:] != "yx":
        raise UnsupportedError(f"{meta.name}: an image needs y and x axes; found {axes!r}")
    dtype = np.dtype(stored_dtype(meta.dtype))
    if dtype.kind not in "uif":
        raise UnsupportedError(
            f"{meta.name}: pixel type {meta.dtype} is not stored; fairimage stores "
            "integer, float and boolean images"
        )
    chunks = choose_chunks(meta.shape, axes, dtype.itemsize, options.chunk_bytes)
    shapes = pyramid_shapes(meta.shape, axes, chunks)
    codec = BloscCodec(
        cname=options.cname, clevel=options.clevel, shuffle=options.shuffle, typesize=dtype.itemsize
    )
    root = zarr.create_group(store, zarr_format=3, overwrite=True)
    arrays = [
        root.create_array(
            str(level),
            shape=shape,
            chunks=tuple(min(c, n) for c, n in zip(chunks, shape, strict=True)),
            dtype=dtype,
            compressors=[codec],
            fill_value=0,
            dimension_names=list(axes),
        )
        for level, shape in enumerate(shapes)
    ]
    channel_axis = axes.find("c")
    stats = _ChannelStats(meta.shape[channel_axis] if channel_axis >= 0 else 1)
    for lead in _plane_groups(meta.shape, axes, chunks):
        channel = lead[channel_axis].start if channel_axis >= 0 else 0
        _write_plane_group(source, arrays, lead, chunks[-2], dtype, stats, channel, on_progress)
    channels = _with_windows(meta, stats, np.asarray(arrays[-1][...]), channel_axis)
    levels = [
        Level(
            path=str(level),
            shape=shape,
            chunks=tuple(arrays[level].chunks),
            scale=level_scale(meta.scale, axes, level),
        )
        for level, shape in enumerate(shapes)
    ]
    root.attrs.update(
        Ngff05().build(
            name=meta.name,
            axes=meta.axes,
            scales=[level.scale for level in levels],
            channels=channels,
            method={
                "description": "2x2 mean in y and x, odd edges averaged with themselves",
                "method": "fairimage.ngff.pyramid.downsample_2x",
                "version": __version__,
            },
        )
    )
    return WrittenImage(dtype=dtype.name, levels=levels, channels=channels)


def _plane_groups(shape: tuple[int, ...], axes: str, chunks: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """The leading (t, c, z) selections, one chunk deep in z, whose y/x planes are written together."""
    ranges = [
        [slice(start, min(start + chunk, size)) for start in range(0, size, chunk)]
        for size, chunk in zip(shape[:-2], chunks[:-2], strict=True)
    ]
    return [tuple(group) for group in itertools.product(*ranges)]


def _write_plane_group(
    source: Any,
    arrays: list[Any],
    lead: tuple[slice, ...],
    chunk_rows: int,
    dtype: np.dtype,
    stats: _ChannelStats,
    channel: int,
    on_progress: Progress | None,
) -> None:
    height = source.metadata.shape[-2]
    pipe: _LevelPipe | None = None
    for array in reversed(arrays[1:]):
        pipe = _LevelPipe(array=array, lead=lead, chunk_rows=array.chunks[-2], below=pipe)
    for start in range(0, height, chunk_rows):
        stop = min(start + chunk_rows, height)
        block = source.read((*lead, slice(start, stop), slice(None)))
        if on_progress is not None:
            on_progress(block.nbytes)
        block = block.astype(dtype, copy=False)
        arrays[0][(*lead, slice(start, stop), slice(None))] = block
        stats.add(channel, block)
        if pipe is not None:
            pipe.push(block, final=stop == height)


def _with_windows(
    meta: ImageMetadata, stats: _ChannelStats, smallest: np.ndarray, channel_axis: int
) -> tuple[Channel, ...]:
    """Channels as the source named them, with omero windows: min/max of the data, start/end from the
    0.1-99.9 percentiles of the smallest level (cheap, and robust to hot pixels)."""
    channels = []
    for index, channel in enumerate(meta.channels or (Channel(label="Channel 0"),)):
        plane = np.take(smallest, index, axis=channel_axis) if channel_axis >= 0 else smallest
        low, high = stats.low[index], stats.high[index]
        if not math.isfinite(low):
            low, high = 0.0, 1.0
        start, end = display_window(plane)
        start, end = max(start, low), min(end, high)
        if end <= start:
            start, end = low, high
        channels.append(
            channel.model_copy(update={"window": Window(start=start, end=end, min=low, max=high)})
        )
    return tuple(channels)

"""Stream an ImageSource into an OME-Zarr 0.5 image: level 0 is written band by band as it is read, and every
lower level is built from those bands on the way, so memory is a few chunk rows whatever the image size."""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

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
from fairimage.ngff.chunks import (
    ChunkWriter,
    StoredObject,
    blosc_codec,
    thread_count,
)
from fairimage.ngff.metadata import Ngff05
from fairimage.ngff.pyramid import display_window, downsample_2x
from fairimage.ngff.shards import ShardAssembler, ShardGrid

Progress = Callable[[int], None]


@dataclass(frozen=True)
class WriteOptions:
    """How images are stored: chunk size target and Blosc codec (OME-Zarr default: zstd level 5 + shuffle)."""

    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    cname: Literal["zstd", "lz4", "lz4hc", "blosclz", "zlib"] = "zstd"
    clevel: int = 5
    shuffle: Literal["shuffle", "bitshuffle", "noshuffle"] = "shuffle"
    threads: int = 0  # threads encoding chunks; 0 = every core this process may use
    # Chunks per shard along y and x (zarr v3 sharding): 0 stores every chunk as its own object, 8 stores
    # 8x8 chunks per object. A conversion holds one row of shards per level in memory while it fills them.
    shard_chunks: int = 0


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
    chunks: dict[str, StoredObject]  # every chunk written, by key relative to the image root


class _ChannelStats:
    """Running min/max per channel over level 0; blocks are added from several threads."""

    def __init__(self, count: int) -> None:
        self.low = [math.inf] * count
        self.high = [-math.inf] * count
        self._lock = threading.Lock()

    def add(self, channel: int, block: np.ndarray) -> None:
        if block.dtype.kind == "f":
            block = block[np.isfinite(block)]
            if block.size == 0:
                return
        low, high = float(block.min()), float(block.max())
        with self._lock:
            self.low[channel] = min(self.low[channel], low)
            self.high[channel] = max(self.high[channel], high)


@dataclass(frozen=True)
class _LevelOut:
    """One level's chunk grid: cuts rows of pixels into chunks and hands them to the chunk writer."""

    path: str
    chunks: tuple[int, ...]
    writer: ChunkWriter

    def write_rows(self, lead: tuple[slice, ...], first_row: int, rows: np.ndarray) -> None:
        """``rows`` start at a chunk boundary and are one chunk row deep (or the last, shorter one)."""
        index = tuple(part.start // size for part, size in zip(lead, self.chunks, strict=False))
        row_index = first_row // self.chunks[-2]
        step = self.chunks[-1]
        for column, start in enumerate(range(0, rows.shape[-1], step)):
            self.writer.submit(
                self.path, (*index, row_index, column), rows[..., start : start + step], self.chunks
            )


@dataclass
class _LevelPipe:
    """Receives rows of the level above, halves them and writes full chunk rows of its own level."""

    level: _LevelOut
    lead: tuple[slice, ...]
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
        chunk_rows = self.level.chunks[-2]
        while self.pending_rows >= chunk_rows or (final and self.pending_rows):
            self._write(min(chunk_rows, self.pending_rows))
        if self.below is not None:
            self.below.push(halved, final)

    def _write(self, count: int) -> None:
        buffered = np.concatenate(self.pending, axis=-2) if len(self.pending) > 1 else self.pending[0]
        self.level.write_rows(self.lead, self.next_row, buffered[..., :count, :])
        self.next_row += count
        rest = buffered[..., count:, :]
        self.pending = [rest] if rest.shape[-2] else []
        self.pending_rows -= count


class ImageTarget(Protocol):
    """Where one image goes: a zarr-python store for the metadata, ``put`` for chunks (keys relative to the
    image root; called from several threads at once)."""

    def zarr_store(self) -> Any: ...

    def put(self, key: str, data: bytes) -> None: ...


def write_image(
    source: Any,
    target: ImageTarget,
    options: WriteOptions = WriteOptions(),
    on_progress: Progress | None = None,
) -> WrittenImage:
    """Write ``source`` (an ImageSource) as an OME-Zarr 0.5 multiscale image into ``target``."""
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
    root = zarr.create_group(target.zarr_store(), zarr_format=3, overwrite=True)
    arrays = []
    grids: dict[str, ShardGrid] = {}
    for level, shape in enumerate(shapes):
        level_chunks = tuple(min(c, n) for c, n in zip(chunks, shape, strict=True))
        per_shard = (1,) * (len(axes) - 2) + (options.shard_chunks,) * 2
        sharded = options.shard_chunks > 0
        arrays.append(
            root.create_array(
                str(level),
                shape=shape,
                chunks=level_chunks,
                shards=tuple(c * k for c, k in zip(level_chunks, per_shard, strict=True))
                if sharded
                else None,
                dtype=dtype,
                compressors=[codec],
                fill_value=0,
                dimension_names=list(axes),
            )
        )
        if sharded:
            counts = tuple(-(-n // c) for n, c in zip(shape, level_chunks, strict=True))
            grids[str(level)] = ShardGrid(chunks_per_shard=per_shard, chunk_counts=counts)
    channel_axis = axes.find("c")
    stats = _ChannelStats(meta.shape[channel_axis] if channel_axis >= 0 else 1)
    encoder = blosc_codec(options.cname, options.clevel, options.shuffle, dtype.itemsize)
    assembler = ShardAssembler(grids) if grids else None
    with ChunkWriter(target.put, encoder, thread_count(options.threads), assembler) as writer:
        outs = [_LevelOut(str(level), tuple(array.chunks), writer) for level, array in enumerate(arrays)]
        for lead in _plane_groups(meta.shape, axes, chunks):
            channel = lead[channel_axis].start if channel_axis >= 0 else 0
            _write_plane_group(source, outs, lead, dtype, stats, channel, on_progress)
        objects = writer.finish()
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
    return WrittenImage(dtype=dtype.name, levels=levels, channels=channels, chunks=objects)


def _plane_groups(shape: tuple[int, ...], axes: str, chunks: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """The leading (t, c, z) selections, one chunk deep in z, whose y/x planes are written together."""
    ranges = [
        [slice(start, min(start + chunk, size)) for start in range(0, size, chunk)]
        for size, chunk in zip(shape[:-2], chunks[:-2], strict=True)
    ]
    return [tuple(group) for group in itertools.product(*ranges)]


def _write_plane_group(
    source: Any,
    outs: list[_LevelOut],
    lead: tuple[slice, ...],
    dtype: np.dtype,
    stats: _ChannelStats,
    channel: int,
    on_progress: Progress | None,
) -> None:
    height = source.metadata.shape[-2]
    chunk_rows = outs[0].chunks[-2]
    pipe: _LevelPipe | None = None
    for out in reversed(outs[1:]):
        pipe = _LevelPipe(level=out, lead=lead, below=pipe)
    for start in range(0, height, chunk_rows):
        stop = min(start + chunk_rows, height)
        block = source.read((*lead, slice(start, stop), slice(None)))
        if on_progress is not None:
            on_progress(block.nbytes)
        block = block.astype(dtype, copy=False)
        outs[0].write_rows(lead, start, block)
        outs[0].writer.run(stats.add, channel, block)
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

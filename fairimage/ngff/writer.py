"""Stream an ImageSource into an OME-Zarr 0.5 image: level 0 is written band by band as it is read, and every
lower level is built from those bands on the way, so memory is a few chunk rows whatever the image size."""

from __future__ import annotations

import itertools
import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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
    is_colour_picture,
    level_scales,
    pyramid_steps,
    stored_dtype,
    voxel_depth,
)
from fairimage.ngff.chunks import ChunkWriter, StoredObject, blosc_codec, thread_count
from fairimage.ngff.metadata import Ngff05
from fairimage.ngff.pyramid import display_window, downsample_2x, downsample_blocks, mode_2x, mode_blocks
from fairimage.ngff.shards import ShardAssembler, ShardGrid

Progress = Callable[[int], None]
SHARD_ROW_BYTES = 64 << 20
WINDOW_SAMPLE_BYTES = 64 << 20  # of the smallest level, read to choose the channels' display windows


@dataclass(frozen=True)
class WriteOptions:
    """How images are stored: chunk size target and Blosc codec (OME-Zarr default: zstd level 5 + shuffle)."""

    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    cname: Literal["zstd", "lz4", "lz4hc", "blosclz", "zlib"] = "zstd"
    clevel: int = 5
    shuffle: Literal["shuffle", "bitshuffle", "noshuffle"] = "shuffle"
    threads: int = 0  # threads encoding chunks; 0 = every core this process may use
    # Chunks per shard along y and x (zarr v3 sharding): 0 stores every chunk as its own object, 8 stores up
    # to 8x8 chunks per object (fewer rows of chunks for very wide images; see ImagePlan.shard_grids).
    shard_chunks: int = 0
    # How each level is made from the one above: the mean of 2x2 pixels, or (label images, whose values are
    # object ids) their most frequent value.
    pyramid: Literal["mean", "mode"] = "mean"


@dataclass(frozen=True)
class Level:
    path: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    scale: tuple[float, ...]
    step: tuple[int, ...] = ()  # the factor per axis this level is made from the one above by; () for level 0

    @property
    def halves_z(self) -> bool:
        """Whether this level has half the planes of the one above (a volume's, once about isotropic)."""
        return any(factor == 2 for factor in self.step[:-2])


@dataclass(frozen=True)
class WrittenImage:
    """What was stored: the levels, the stored dtype and the channels with display windows from the data."""

    dtype: str
    levels: list[Level]
    channels: tuple[Channel, ...]
    chunks: dict[str, StoredObject]  # every chunk written, by key relative to the image root


def _channel_count(meta: ImageMetadata) -> int:
    channel_axis = meta.axis_names.find("c")
    return meta.shape[channel_axis] if channel_axis >= 0 else 1


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

    def merge(self, low: list[float], high: list[float]) -> None:
        """Fold in another part's min/max per channel."""
        with self._lock:
            self.low = [min(a, b) for a, b in zip(self.low, low, strict=True)]
            self.high = [max(a, b) for a, b in zip(self.high, high, strict=True)]


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
    halve: Callable[[np.ndarray], np.ndarray] = downsample_2x
    carry: np.ndarray | None = None  # an odd row waiting for its pair
    pending: list[np.ndarray] = field(default_factory=list)
    pending_rows: int = 0
    next_row: int = 0  # where the next chunk row of this level starts (a band may begin mid-image)

    def push(self, rows: np.ndarray, final: bool) -> None:
        if self.carry is not None:
            rows = np.concatenate([self.carry, rows], axis=-2)
            self.carry = None
        if not final and rows.shape[-2] % 2:
            self.carry, rows = rows[..., -1:, :], rows[..., :-1, :]
        halved = self.halve(rows)
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


@dataclass(frozen=True)
class ImagePlan:
    """Everything decided before a pixel is written: small and picklable, so that cluster workers writing
    parts of one image agree on it."""

    meta: ImageMetadata
    dtype: str
    options: WriteOptions
    levels: tuple[Level, ...]

    @property
    def plane_groups(self) -> list[tuple[slice, ...]]:
        """The independent units of work: each writes its planes at every planar level."""
        return _plane_groups(self.meta.shape, self.meta.axis_names, self.levels[0].chunks)

    @property
    def planar_levels(self) -> int:
        """How many levels, from level 0, keep every plane (halve only y and x): those are streamed from the
        source as it is read; the levels below them (a volume's, which halve z too) are made from the
        stored level above at the end (``finish_image``)."""
        return next((index for index, level in enumerate(self.levels) if level.halves_z), len(self.levels))

    def row_bands(self, depth: int) -> list[range]:
        """Level-0 row ranges that write whole chunks (and shards) of levels 0..depth and share none, so that
        several workers can each take some; ``complete_pyramid`` then makes the levels below ``depth``."""
        grids = self.shard_grids()
        shard_rows = grids[self.levels[0].path].chunks_per_shard[-2] if grids else 1
        step = self.levels[0].chunks[-2] * shard_rows * 2**depth
        height = self.meta.shape[-2]
        return [range(start, min(start + step, height)) for start in range(0, height, step)]

    def band_depth(self, deepest: int = 3) -> int:
        """The deepest level (at most ``deepest``) down to which row bands keep whole chunk rows: every level
        down to it has the full chunk height of level 0."""
        full = self.levels[0].chunks[-2]
        depth = 0
        while depth + 1 < min(self.planar_levels, deepest + 1) and self.levels[depth + 1].chunks[-2] == full:
            depth += 1
        return depth

    def shard_grids(self) -> dict[str, ShardGrid]:
        """Shards of ``shard_chunks`` chunks along x, and along y as many (up to as many) as keep one row
        of shards, which a conversion holds while it fills them, near SHARD_ROW_BYTES of pixels."""
        k = self.options.shard_chunks
        if k <= 0:
            return {}
        level_0 = self.levels[0]
        chunk_row_bytes = level_0.chunks[-2] * level_0.shape[-1] * np.dtype(self.dtype).itemsize
        rows = max(1, min(k, SHARD_ROW_BYTES // chunk_row_bytes))
        per_shard = (1,) * (len(self.meta.shape) - 2) + (rows, k)
        return {
            level.path: ShardGrid(
                chunks_per_shard=per_shard,
                chunk_counts=tuple(-(-n // c) for n, c in zip(level.shape, level.chunks, strict=True)),
            )
            for level in self.levels
        }


@dataclass(frozen=True)
class WrittenPart:
    """What writing some plane groups produced: the objects stored, and min/max per channel."""

    chunks: dict[str, StoredObject]
    low: list[float]
    high: list[float]


def plan_image(meta: ImageMetadata, options: WriteOptions = WriteOptions()) -> ImagePlan:
    """Chunks and pyramid levels for an image; UnsupportedError if it cannot be stored."""
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
    steps = pyramid_steps(meta.shape, axes, chunks, voxel_depth(meta.scale, meta.axes))
    shapes = [meta.shape]
    for step in steps:
        shapes.append(tuple(-(-n // f) for n, f in zip(shapes[-1], step, strict=True)))
    levels = tuple(
        Level(
            path=str(index),
            shape=shape,
            chunks=tuple(min(c, n) for c, n in zip(chunks, shape, strict=True)),
            scale=scale,
            step=steps[index - 1] if index else (),
        )
        for index, (shape, scale) in enumerate(zip(shapes, level_scales(meta.scale, steps), strict=True))
    )
    return ImagePlan(meta=meta, dtype=dtype.name, options=options, levels=levels)


def create_image(plan: ImagePlan, target: ImageTarget) -> None:
    """Write the group and the arrays' metadata (zarr.json); pixels and OME attributes come later."""
    options, itemsize = plan.options, np.dtype(plan.dtype).itemsize
    codec = BloscCodec(cname=options.cname, clevel=options.clevel, shuffle=options.shuffle, typesize=itemsize)
    grids = plan.shard_grids()
    root = zarr.create_group(target.zarr_store(), zarr_format=3, overwrite=True)
    for level in plan.levels:
        grid = grids.get(level.path)
        root.create_array(
            level.path,
            shape=level.shape,
            chunks=level.chunks,
            shards=tuple(c * k for c, k in zip(level.chunks, grid.chunks_per_shard, strict=True))
            if grid
            else None,
            dtype=plan.dtype,
            compressors=[codec],
            fill_value=0,
            dimension_names=list(plan.meta.axis_names),
        )


@dataclass(frozen=True)
class Part:
    """A share of writing an image, for cluster workers: some plane groups, some rows of the level the
    source holds (``source_level``; 0 for the input file), and the levels written from them."""

    groups: range | None = None  # indices into plan.plane_groups; None: all
    # Rows of the source level, starting at a band boundary (ImagePlan.row_bands); None: all.
    rows: range | None = None
    levels: range | None = None  # the levels written; None: the source level and every level below it
    source_level: int = 0


def write_planes(
    plan: ImagePlan,
    source: Any,
    target: ImageTarget,
    part: Part = Part(),
    on_progress: Progress | None = None,
) -> WrittenPart:
    """Write a part of the image (all of it by default). Parts from ``ImagePlan.row_bands`` or disjoint
    plane groups may be written by different processes at once: they never share an object."""
    meta, options = plan.meta, plan.options
    all_groups = plan.plane_groups
    channel_axis = meta.axis_names.find("c")
    stats = _ChannelStats(_channel_count(meta))
    dtype = np.dtype(plan.dtype)
    encoder = blosc_codec(options.cname, options.clevel, options.shuffle, dtype.itemsize)
    grids = plan.shard_grids()
    assembler = ShardAssembler(grids) if grids else None
    levels = part.levels if part.levels is not None else range(part.source_level, plan.planar_levels)
    with ChunkWriter(target.put, encoder, thread_count(options.threads), assembler) as writer:
        outs = [_LevelOut(level.path, level.chunks, writer) for level in plan.levels]
        for index in part.groups if part.groups is not None else range(len(all_groups)):
            lead = all_groups[index]
            channel = lead[channel_axis].start if channel_axis >= 0 else 0
            halve = mode_2x if options.pyramid == "mode" else downsample_2x
            writing = _GroupWrite(source, outs, lead, dtype, stats, channel, on_progress, halve)
            writing.run(part.source_level, levels, part.rows)
        objects = writer.finish()
    return WrittenPart(chunks=objects, low=stats.low, high=stats.high)


def complete_pyramid(plan: ImagePlan, target: ImageTarget, from_level: int) -> WrittenPart:
    """Write the planar levels below ``from_level`` from that stored level (after row bands wrote
    0..from_level)."""
    if from_level + 1 >= plan.planar_levels:
        empty = _ChannelStats(_channel_count(plan.meta))
        return WrittenPart(chunks={}, low=empty.low, high=empty.high)
    group = zarr.open_group(target.zarr_store(), mode="r")
    stored = _StoredLevel(group[plan.levels[from_level].path], plan.meta)
    part = Part(levels=range(from_level + 1, plan.planar_levels), source_level=from_level)
    return write_planes(plan, stored, target, part)


def volume_levels(plan: ImagePlan) -> range:
    """The indices of a volume's levels that halve z (empty for planar pyramids): each is made from the
    stored level above it, so they are written in order, one after another."""
    return range(plan.planar_levels, len(plan.levels))


def z_runs(plan: ImagePlan, index: int, wanted: int) -> list[range]:
    """Level ``index``'s rows of chunks along z, split into at most ``wanted`` runs that different processes
    may write at once (a chunk, and a shard, is never more than one chunk deep in z)."""
    level = plan.levels[index]
    z = plan.meta.axis_names.index("z")
    cells = -(-level.shape[z] // level.chunks[z])
    runs = max(1, min(wanted, cells))
    return [range(i * cells // runs, (i + 1) * cells // runs) for i in range(runs)]


def write_volume_level(
    plan: ImagePlan, target: ImageTarget, index: int, z_cells: range | None = None
) -> WrittenPart:
    """Write level ``index`` of a volume (one that halves z) from the stored level above, one chunk at a
    time on every core; ``z_cells``: only its chunks in those rows of chunks along z (all by default).

    Streaming such levels from the source would hold, for each, a slab of every plane its chunks span (64
    planes of a level may come from 512 of level 0); reading the level above back costs a decode of it and
    keeps memory to a few chunks per thread."""
    above, level = plan.levels[index - 1], plan.levels[index]
    options, dtype = plan.options, np.dtype(plan.dtype)
    encoder = blosc_codec(options.cname, options.clevel, options.shuffle, dtype.itemsize)
    reduce = mode_blocks if options.pyramid == "mode" else downsample_blocks
    threads = thread_count(options.threads)
    grids = plan.shard_grids()
    source = zarr.open_array(target.zarr_store(), path=above.path, mode="r")

    def reduced(cell: tuple[int, ...]) -> np.ndarray:
        region = tuple(
            slice(i * c * f, min((i + 1) * c * f, n))
            for i, c, f, n in zip(cell, level.chunks, level.step, source.shape, strict=True)
        )
        return reduce(np.asarray(source[region]), level.step)

    counts = [range(-(-n // c)) for n, c in zip(level.shape, level.chunks, strict=True)]
    if z_cells is not None:
        counts[plan.meta.axis_names.index("z")] = z_cells
    assembler = ShardAssembler({level.path: grids[level.path]}) if grids else None
    with (
        ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fairimage-reduce") as readers,
        ChunkWriter(target.put, encoder, threads, assembler) as writer,
    ):
        for cell, block in _bounded_map(readers, reduced, itertools.product(*counts), 2 * threads):
            writer.submit(level.path, cell, block, level.chunks)
        objects = writer.finish()
    empty = _ChannelStats(_channel_count(plan.meta))  # the windows come from the levels above
    return WrittenPart(chunks=objects, low=empty.low, high=empty.high)


def write_volume_levels(plan: ImagePlan, target: ImageTarget) -> WrittenPart:
    """Write every level of a volume that halves z, each whole, in order (``write_volume_level``)."""
    parts = [write_volume_level(plan, target, index) for index in volume_levels(plan)]
    empty = _ChannelStats(_channel_count(plan.meta))
    return WrittenPart({key: o for part in parts for key, o in part.chunks.items()}, empty.low, empty.high)


def _bounded_map(
    pool: ThreadPoolExecutor, task: Callable[[Any], np.ndarray], items: Iterable[Any], ahead: int
) -> Iterator[tuple[Any, np.ndarray]]:
    """(item, task(item)) in order, with at most ``ahead`` tasks running or done but not yet taken."""
    waiting: deque[tuple[Any, Future[np.ndarray]]] = deque()
    for item in items:
        waiting.append((item, pool.submit(task, item)))
        if len(waiting) >= ahead:
            first, future = waiting.popleft()
            yield first, future.result()
    while waiting:
        first, future = waiting.popleft()
        yield first, future.result()


@dataclass(frozen=True)
class _StoredLevel:
    """A written pyramid level read back as a source, to build the levels below it."""

    array: Any
    meta: ImageMetadata

    @property
    def metadata(self) -> ImageMetadata:
        return self.meta.model_copy(update={"shape": tuple(self.array.shape)})

    def read(self, region: tuple[slice, ...]) -> np.ndarray:
        return np.asarray(self.array[region])


_METHODS = {
    "mean": {
        "description": "2x2 mean in y and x, odd edges averaged with themselves",
        "method": "fairimage.ngff.pyramid.downsample_2x",
    },
    "mode": {
        "description": "2x2 mode in y and x (ties to the first in reading order), odd edges paired with "
        "themselves",
        "method": "fairimage.ngff.pyramid.mode_2x",
    },
}


def _method(plan: ImagePlan) -> dict[str, str]:
    """How the levels were made, for the multiscale's ``metadata``."""
    method = dict(_METHODS[plan.options.pyramid])
    if plan.planar_levels < len(plan.levels):
        kind = "mode" if plan.options.pyramid == "mode" else "mean"
        method["method"] += f", fairimage.ngff.pyramid.{kind}_blocks".replace("mean_", "downsample_")
        method["description"] += (
            f"; from level {plan.planar_levels} on (voxels about isotropic), the {kind} of the 2x2x2 voxels "
            "of the level above (z alone where y and x fit one chunk), as each level's scale says"
        )
    return method


def finish_image(
    plan: ImagePlan,
    target: ImageTarget,
    parts: list[WrittenPart],
    image_label: dict[str, Any] | None = None,
    attributes: dict[str, Any] | None = None,
    volume_written: bool = False,
) -> WrittenImage:
    """Once every plane group is written: a volume's levels that halve z (``write_volume_levels``, unless
    ``volume_written``: cluster workers wrote them, in ``parts``), channel windows from the data, then the
    OME-NGFF attributes; a label image gets its ``image-label`` metadata (colours, properties, source)
    instead of display settings. ``attributes`` are written beside ``ome`` (e.g. ``fairimage``: what the
    image was made from)."""
    meta = plan.meta
    channel_axis = meta.axis_names.find("c")
    stats = _ChannelStats(_channel_count(meta))
    if not volume_written:
        parts = [*parts, write_volume_levels(plan, target)]
    for part in parts:
        stats.merge(part.low, part.high)
    root = zarr.open_group(target.zarr_store(), mode="r+")
    smallest = zarr.open_array(target.zarr_store(), path=plan.levels[-1].path, mode="r")
    channels = _with_windows(meta, stats, _window_sample(smallest, meta.axis_names), channel_axis)
    ngff = Ngff05().build(
        name=meta.name,
        axes=meta.axes,
        scales=[level.scale for level in plan.levels],
        channels=channels if image_label is None else (),
        method={**_method(plan), "version": __version__},
        kind=plan.options.pyramid,
    )
    if image_label is not None:
        ngff["ome"]["image-label"] = image_label
    root.attrs.update({**(attributes or {}), **ngff})
    chunks = {key: stored for part in parts for key, stored in part.chunks.items()}
    return WrittenImage(dtype=plan.dtype, levels=list(plan.levels), channels=channels, chunks=chunks)


def write_image(
    source: Any,
    target: ImageTarget,
    options: WriteOptions = WriteOptions(),
    on_progress: Progress | None = None,
) -> WrittenImage:
    """Write ``source`` (an ImageSource) as an OME-Zarr 0.5 multiscale image into ``target``."""
    plan = plan_image(source.metadata, options)
    create_image(plan, target)
    part = write_planes(plan, source, target, on_progress=on_progress)
    return finish_image(plan, target, [part])


def _plane_groups(shape: tuple[int, ...], axes: str, chunks: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """The leading (t, c, z) selections, one chunk deep in z, whose y/x planes are written together."""
    ranges = [
        [slice(start, min(start + chunk, size)) for start in range(0, size, chunk)]
        for size, chunk in zip(shape[:-2], chunks[:-2], strict=True)
    ]
    return [tuple(group) for group in itertools.product(*ranges)]


@dataclass
class _GroupWrite:
    """One plane group's rows streamed through the levels: written at the source level, halved below it."""

    source: Any
    outs: list[_LevelOut]
    lead: tuple[slice, ...]
    dtype: np.dtype
    stats: _ChannelStats
    channel: int
    on_progress: Progress | None
    halve: Callable[[np.ndarray], np.ndarray] = downsample_2x

    def run(self, source_level: int, levels: range, rows: range | None) -> None:
        height = self.source.metadata.shape[-2]
        first, stop = (rows.start, rows.stop) if rows is not None else (0, height)
        top = self.outs[source_level]
        pipe: _LevelPipe | None = None
        for index in reversed(range(source_level + 1, levels.stop)):
            shift = index - source_level
            pipe = _LevelPipe(
                level=self.outs[index], lead=self.lead, below=pipe, halve=self.halve, next_row=first >> shift
            )
        for start in range(first, stop, top.chunks[-2]):
            end = min(start + top.chunks[-2], stop)
            block = self.source.read((*self.lead, slice(start, end), slice(None)))
            if self.on_progress is not None:
                self.on_progress(block.nbytes)
            block = block.astype(self.dtype, copy=False)
            if source_level in levels:
                top.write_rows(self.lead, start, block)
            if source_level == 0:
                top.writer.run(self.stats.add, self.channel, block)
            if pipe is not None:
                pipe.push(block, final=end == height)


def _window_sample(level: Any, axes: str) -> np.ndarray:
    """The smallest level, or evenly spaced z planes and time points of it where it holds more than
    WINDOW_SAMPLE_BYTES: the pyramid of a stack halves only y and x (a volume's halves z only once its
    voxels are about isotropic), so its smallest level may hold every plane, and must not be read whole."""
    nbytes = math.prod(level.shape) * np.dtype(level.dtype).itemsize
    step = math.ceil(nbytes / WINDOW_SAMPLE_BYTES)
    region: list[slice] = [slice(None)] * len(axes)
    for name in "zt":  # z first: the deepest axis of a volume
        if step > 1 and name in axes:
            size = level.shape[axes.index(name)]
            region[axes.index(name)] = slice(None, None, min(step, size))
            step = math.ceil(step / min(step, size))
    return np.asarray(level[tuple(region)])


def _with_windows(
    meta: ImageMetadata, stats: _ChannelStats, smallest: np.ndarray, channel_axis: int
) -> tuple[Channel, ...]:
    """Channels as the source named them, with omero windows: min/max of the data, start/end from the
    0.1-99.9 percentiles of the smallest level (cheap, and robust to hot pixels)."""
    channels = []
    colour_picture = is_colour_picture(meta.channels, stored_dtype(meta.dtype))
    for index, channel in enumerate(meta.channels or (Channel(label="Channel 0"),)):
        plane = np.take(smallest, index, axis=channel_axis) if channel_axis >= 0 else smallest
        low, high = stats.low[index], stats.high[index]
        if not math.isfinite(low):
            low, high = 0.0, 1.0
        start, end = display_window(plane)
        start, end = max(start, low), min(end, high)
        if colour_picture:  # a photograph keeps its own colours: no contrast stretch
            start, end = 0.0, 255.0
        elif end <= start:
            start, end = low, high
        channels.append(
            channel.model_copy(update={"window": Window(start=start, end=end, min=low, max=high)})
        )
    return tuple(channels)

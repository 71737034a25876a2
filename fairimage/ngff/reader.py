"""Reading stored OME-Zarr levels back: one plane's region of some channels, for tiles and thumbnails."""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import zarr

from fairimage.model.errors import CorruptFileError


def open_level(zarr_store: Any, label: str) -> zarr.Array:
    """The array of one pyramid level (``zarr_store`` is rooted at the level's folder)."""
    try:
        return zarr.open_array(store=zarr_store, mode="r")
    except Exception as exc:  # zarr raises several kinds for a missing or damaged array
        raise CorruptFileError(f"{label}: the stored pyramid level cannot be read ({exc})") from exc


class ChunkCache(Protocol):
    """Decoded chunks by key (an ``Lru``): neighbouring tiles, or patches, share them."""

    def get(self, key: Any) -> Any: ...

    def put(self, key: Any, value: Any) -> None: ...


@dataclass
class Lru:
    """A thread-safe least-recently-used map bounded by the total ``size`` of its values."""

    capacity: int
    size: Any = len
    _items: OrderedDict[Any, Any] = field(default_factory=OrderedDict)
    _used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._used += self.size(value)
            while self._used > self.capacity and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._used -= self.size(dropped)


def read_region(
    array: zarr.Array,
    axes: str,
    channels: list[int],
    z: int,
    t: int,
    rows: tuple[int, int],
    columns: tuple[int, int],
    chunks: tuple[ChunkCache, Any] | None = None,
) -> list[np.ndarray]:
    """The 2D region ``rows`` x ``columns`` of plane (z, t) for each of ``channels``, in that order.

    Channels are read in one request spanning the lowest to the highest asked for, so a composite of
    three channels costs one zarr call, not three. With ``chunks`` (a cache and the array's key in it), the
    region is put together from whole decoded chunks, each read and decoded once while the cache keeps it:
    the tiles a viewer asks for next to each other mostly lie in chunks it has already decoded."""
    selection: list[int | slice] = []
    for name in axes:
        if name == "t":
            selection.append(t)
        elif name == "z":
            selection.append(z)
        elif name == "c":
            selection.append(slice(min(channels), max(channels) + 1) if channels else slice(0, 1))
        elif name == "y":
            selection.append(slice(*rows))
        else:
            selection.append(slice(*columns))
    block = np.asarray(array[tuple(selection)]) if chunks is None else _assemble(array, selection, *chunks)
    if "c" not in axes:
        return [block for _ in channels]
    low = min(channels) if channels else 0
    return [block[index - low] for index in channels]


def _assemble(array: zarr.Array, selection: list[int | slice], cache: ChunkCache, key: Any) -> np.ndarray:
    """``array[selection]`` (integers and unit-step slices) copied out of whole decoded chunks."""
    spans = [(s, s + 1) if isinstance(s, int) else (s.start, s.stop) for s in selection]
    out = np.empty([stop - start for start, stop in spans], array.dtype)
    grid = [
        range(start // size, (stop - 1) // size + 1)
        for (start, stop), size in zip(spans, array.chunks, strict=True)
    ]
    for cell in itertools.product(*grid):
        origin = [index * size for index, size in zip(cell, array.chunks, strict=True)]
        chunk = cache.get((key, cell))
        if chunk is None:
            bounds = tuple(
                slice(o, min(o + size, extent))
                for o, size, extent in zip(origin, array.chunks, array.shape, strict=True)
            )
            chunk = np.asarray(array[bounds])
            cache.put((key, cell), chunk)
        source, target = [], []
        for (start, stop), o, length in zip(spans, origin, chunk.shape, strict=True):
            low, high = max(start, o), min(stop, o + length)
            source.append(slice(low - o, high - o))
            target.append(slice(low - start, high - start))
        out[tuple(target)] = chunk[tuple(source)]
    return out[tuple(0 if isinstance(s, int) else slice(None) for s in selection)]


def preload(array: zarr.Array, selection: list[int | slice], cache: ChunkCache, key: Any) -> None:
    """Put every chunk ``array[selection]`` touches into ``cache``, in one zarr read of the chunk-aligned box
    around it where any is missing: zarr fetches and decodes that box's chunks concurrently, which matters
    over HTTP, where ``_assemble`` alone would ask for them one after another."""
    spans = [(s, s + 1) if isinstance(s, int) else (s.start, s.stop) for s in selection]
    grid = [
        range(start // size, (stop - 1) // size + 1)
        for (start, stop), size in zip(spans, array.chunks, strict=True)
    ]
    if all(cache.get((key, cell)) is not None for cell in itertools.product(*grid)):
        return
    box = tuple(
        slice(cells.start * size, min(cells.stop * size, extent))
        for cells, size, extent in zip(grid, array.chunks, array.shape, strict=True)
    )
    block = np.asarray(array[box])
    for cell in itertools.product(*grid):
        part = tuple(
            slice((index - cells.start) * size, (index - cells.start + 1) * size)
            for index, cells, size in zip(cell, grid, array.chunks, strict=True)
        )
        cache.put((key, cell), np.ascontiguousarray(block[part]))

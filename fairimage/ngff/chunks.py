"""Encoding and storing zarr v3 chunks on all cores: the hot path of conversion.

zarr-python writes the metadata (``zarr.json``); the chunks themselves are encoded here because a conversion
knows its chunk grid in advance and can keep every core busy without an event loop per write. The bytes are
exactly what zarr-python writes for the codecs declared in the metadata: the chunk in C order, little-endian
(the ``bytes`` codec), then Blosc (zarr v3 core spec, "chunk encoding"; default chunk key encoding,
``c/i/j/...``, with edge chunks padded with the fill value to the full chunk shape).
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numcodecs import Blosc

from fairimage.ngff.shards import ShardAssembler

ChunkSink = Callable[[str, bytes], None]
"""Stores one object: its key relative to the image root, and its bytes."""

_IO_THREADS = 4
_SHUFFLES = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}


@dataclass(frozen=True)
class StoredObject:
    size: int
    sha256: str


def blosc_codec(cname: str, clevel: int, shuffle: str, itemsize: int) -> Blosc:
    """The numcodecs Blosc that zarr-python's BloscCodec builds for the same configuration."""
    return Blosc(cname=cname, clevel=clevel, shuffle=_SHUFFLES[shuffle], blocksize=0, typesize=itemsize)


def chunk_key(level: str, index: tuple[int, ...]) -> str:
    """zarr v3 default chunk key encoding with '/' separators: ``0/c/0/3/1``."""
    return "/".join((level, "c", *map(str, index)))


def thread_count(requested: int = 0) -> int:
    """Threads for chunk encoding: the cores this process may use, unless a number is asked for."""
    if requested > 0:
        return requested
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class ChunkWriter:
    """Encodes chunks on one thread per core (Blosc releases the GIL) and hashes and stores them from a few
    more threads, so that an encoder never waits for a write to reach the disk.

    At most ``2 x workers`` chunks wait at a time, so memory stays a few chunks whatever the image size (plus,
    with sharding, the encoded chunks of the shards being filled). ``objects`` records the size and sha256 of
    every stored object, which makes the manifest without reading anything back.
    """

    def __init__(
        self, sink: ChunkSink, codec: Blosc, workers: int, shards: ShardAssembler | None = None
    ) -> None:
        self._sink = sink
        self._codec = codec
        self._shards = shards
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fairimage-encode")
        self._io = ThreadPoolExecutor(max_workers=_IO_THREADS, thread_name_prefix="fairimage-store")
        self._pending: deque[Future[object]] = deque()
        self._limit = 2 * workers
        self.objects: dict[str, StoredObject] = {}

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            for future in self._pending:
                future.cancel()
        self._pool.shutdown(wait=True)
        self._io.shutdown(wait=True)

    def submit(
        self, level: str, index: tuple[int, ...], block: np.ndarray, chunk_shape: tuple[int, ...]
    ) -> None:
        """Queue the chunk at ``index`` of ``level`` (a view is fine; edge blocks smaller than
        ``chunk_shape`` are padded with zeros, the fill value); waits while too many are queued already."""
        self._queue(self._encode, level, index, block, chunk_shape)

    def run(self, task: Callable[..., object], *args: object) -> None:
        """Run other per-block work (statistics) on the same threads, with the same bound on memory."""
        self._queue(task, *args)

    def _queue(self, task: Callable[..., object], *args: object) -> None:
        while len(self._pending) >= self._limit:
            self._collect(self._pending.popleft())
        self._pending.append(self._pool.submit(task, *args))

    def finish(self) -> dict[str, StoredObject]:
        """Wait for every queued chunk; raises the first error a chunk met."""
        while self._pending:
            self._collect(self._pending.popleft())
        if self._shards is not None and self._shards.unfinished():
            raise RuntimeError(f"{self._shards.unfinished()} shards were never completed")  # a bug, not input
        return self.objects

    def _collect(self, future: Future[object]) -> None:
        result = future.result()
        if isinstance(result, Future):
            key, stored = result.result()
            self.objects[key] = stored

    def _encode(
        self, level: str, index: tuple[int, ...], block: np.ndarray, chunk_shape: tuple[int, ...]
    ) -> Future[tuple[str, StoredObject]] | None:
        data = self._codec.encode(_full_chunk(block, chunk_shape))
        if self._shards is not None:
            completed = self._shards.add(level, index, data)
            if completed is None:
                return None
            index, data = completed
        return self._io.submit(self._store, chunk_key(level, index), data)

    def _store(self, key: str, data: bytes) -> tuple[str, StoredObject]:
        self._sink(key, data)
        return key, StoredObject(size=len(data), sha256=hashlib.sha256(data).hexdigest())


def _full_chunk(block: np.ndarray, chunk_shape: tuple[int, ...]) -> np.ndarray:
    """The chunk as zarr stores it: C-contiguous, edge blocks padded with zeros to the chunk shape."""
    if block.shape == chunk_shape:
        return np.ascontiguousarray(block)
    padded = np.zeros(chunk_shape, dtype=block.dtype)
    padded[tuple(slice(0, n) for n in block.shape)] = block
    return padded

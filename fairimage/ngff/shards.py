"""zarr v3 shards, assembled from encoded inner chunks as they arrive: a 100k-chunk image is not 100k files.

A shard (zarr v3 ``sharding_indexed`` codec, index at the end) is the inner chunks' bytes one after another
(in Morton order), then an index of (offset, nbytes) uint64 pairs, little-endian, in C order of the chunk
positions, then the index's crc32c (4 bytes, little-endian). Positions outside the array hold 2^64-1 in both
fields. This is the layout zarr-python writes for ``create_array(..., shards=...)`` with its default index
codecs (bytes, crc32c).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import google_crc32c
import numpy as np

_MISSING = np.uint64(2**64 - 1)


@dataclass(frozen=True)
class ShardGrid:
    """One level's shard layout: inner chunks per shard along each axis, and inner chunks in the array."""

    chunks_per_shard: tuple[int, ...]
    chunk_counts: tuple[int, ...]

    def locate(self, index: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The shard holding inner chunk ``index``, and the chunk's position inside it."""
        shard = tuple(i // n for i, n in zip(index, self.chunks_per_shard, strict=True))
        position = tuple(i % n for i, n in zip(index, self.chunks_per_shard, strict=True))
        return shard, position

    def expected(self, shard: tuple[int, ...]) -> int:
        """How many inner chunks of ``shard`` lie inside the array (edge shards hold fewer)."""
        return math.prod(
            min(per, count - s * per)
            for s, per, count in zip(shard, self.chunks_per_shard, self.chunk_counts, strict=True)
        )


@dataclass
class _OpenShard:
    chunks: dict[tuple[int, ...], bytes] = field(default_factory=dict)


class ShardAssembler:
    """Collects encoded inner chunks per shard from several threads; hands back each shard once complete."""

    def __init__(self, grids: dict[str, ShardGrid]) -> None:
        self._grids = grids
        self._open: dict[tuple[str, tuple[int, ...]], _OpenShard] = {}
        self._lock = threading.Lock()

    def add(self, level: str, index: tuple[int, ...], data: bytes) -> tuple[tuple[int, ...], bytes] | None:
        """Record one inner chunk; returns (shard index, shard bytes) when this completes its shard."""
        grid = self._grids[level]
        shard, position = grid.locate(index)
        with self._lock:
            pending = self._open.setdefault((level, shard), _OpenShard())
            pending.chunks[position] = data
            if len(pending.chunks) < grid.expected(shard):
                return None
            del self._open[(level, shard)]
        return shard, encode_shard(pending.chunks, grid.chunks_per_shard)

    def unfinished(self) -> int:
        """Shards still waiting for chunks (zero once every chunk of the image was added)."""
        return len(self._open)


def encode_shard(chunks: dict[tuple[int, ...], bytes], chunks_per_shard: tuple[int, ...]) -> bytes:
    index = np.full((*chunks_per_shard, 2), _MISSING, dtype="<u8")
    parts = []
    offset = 0
    bits = tuple((n - 1).bit_length() for n in chunks_per_shard)
    # Chunks follow one another in Morton order, as zarr-python writes them, so our shards are byte for byte
    # the ones zarr-python would write (and neighbours in y/x sit close together in the file).
    for position in sorted(chunks, key=lambda position: morton_code(position, bits)):
        data = chunks[position]
        index[position] = (offset, len(data))
        parts.append(data)
        offset += len(data)
    index_bytes = index.tobytes()
    parts.append(index_bytes)
    parts.append(google_crc32c.value(index_bytes).to_bytes(4, "little"))
    return b"".join(parts)


def morton_code(position: tuple[int, ...], bits: tuple[int, ...]) -> int:
    """The compressed Morton code of a position (bits of each axis interleaved, the first axis lowest), as
    zarr-python's ``decode_morton`` (after Neuroglancer's compressed Morton code) inverts it."""
    code = 0
    out_bit = 0
    for bit in range(max(bits, default=0)):
        for axis, axis_bits in enumerate(bits):
            if bit < axis_bits:
                code |= ((position[axis] >> bit) & 1) << out_bit
                out_bit += 1
    return code

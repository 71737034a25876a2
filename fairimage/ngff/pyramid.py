"""Pyramid arithmetic on pixel blocks: pure functions, no I/O."""

from __future__ import annotations

import itertools
import math

import numpy as np


def _accumulator(dtype: np.dtype) -> np.dtype:
    """A dtype wide enough to add four pixels of ``dtype`` without overflow."""
    if dtype.kind == "b":
        return np.dtype("uint8")
    if dtype.kind in "ui" and dtype.itemsize <= 2:
        return np.dtype(f"{dtype.kind}4")
    if dtype.kind in "ui" and dtype.itemsize == 4:
        return np.dtype(f"{dtype.kind}8")
    return np.dtype("float64") if dtype.kind in "ui" or dtype.itemsize == 8 else np.dtype("float32")


def downsample_2x(block: np.ndarray, columns: int = 4096) -> np.ndarray:
    """Mean of each 2x2 pixel square over the last two axes (y, x).

    An odd last row or column is averaged with itself, so a level is ceil(n / 2) long and every input pixel
    contributes. Integers are rounded half up and keep their dtype. The work goes ``columns`` output columns
    at a time, so the wide intermediate sums of a whole-slide-wide band never exist at once.
    """
    height, width = block.shape[-2:]
    out = np.empty((*block.shape[:-2], -(-height // 2), -(-width // 2)), dtype=block.dtype)
    for start in range(0, out.shape[-1], columns):
        stop = min(start + columns, out.shape[-1])
        out[..., start:stop] = _downsample_piece(block[..., 2 * start : 2 * stop])
    return out


def _downsample_piece(block: np.ndarray) -> np.ndarray:
    if block.shape[-2] % 2:
        block = np.concatenate([block, block[..., -1:, :]], axis=-2)
    if block.shape[-1] % 2:
        block = np.concatenate([block, block[..., -1:]], axis=-1)
    wide = _accumulator(block.dtype)
    rows = block[..., 0::2, :].astype(wide)
    rows += block[..., 1::2, :]
    total = rows[..., 0::2] + rows[..., 1::2]
    if block.dtype.kind in "ui":
        if wide.kind == "f":  # 64-bit integers: averaged in float64, rounded back
            return np.rint(total / 4).astype(block.dtype)
        total += 2
        total >>= (
            2  # floor((sum + 2) / 4), also for negative sums: numpy shifts signed integers arithmetically
        )
        return total.astype(block.dtype)
    if total.dtype.kind != "f":  # booleans, counted in uint8
        return (total / 4).astype(block.dtype)
    total /= 4
    return total.astype(block.dtype, copy=False)


def mode_2x(block: np.ndarray, columns: int = 4096) -> np.ndarray:
    """The most frequent value of each 2x2 square over the last two axes (y, x): how label images (integer
    ids of objects) are halved, since a mean would invent ids that label nothing.

    Ties go to the first value in reading order (top-left, top-right, bottom-left), so a square of four
    different ids keeps its top-left one. An odd last row or column is paired with itself, as in
    ``downsample_2x``, so the levels have the same shapes.
    """
    height, width = block.shape[-2:]
    out = np.empty((*block.shape[:-2], -(-height // 2), -(-width // 2)), dtype=block.dtype)
    for start in range(0, out.shape[-1], columns):
        stop = min(start + columns, out.shape[-1])
        out[..., start:stop] = _mode_piece(block[..., 2 * start : 2 * stop])
    return out


def _mode_piece(block: np.ndarray) -> np.ndarray:
    if block.shape[-2] % 2:
        block = np.concatenate([block, block[..., -1:, :]], axis=-2)
    if block.shape[-1] % 2:
        block = np.concatenate([block, block[..., -1:]], axis=-1)
    a, b = block[..., 0::2, 0::2], block[..., 0::2, 1::2]
    c, d = block[..., 1::2, 0::2], block[..., 1::2, 1::2]
    # With four values, a value seen twice is the mode unless another is also seen twice (then the first
    # of the two pairs, in reading order, wins); a value seen once is the mode only where all differ.
    out = np.where((b == c) | (b == d), b, a)
    out = np.where((c == d) & (a != b) & (a != c) & (a != d) & (b != c), c, out)
    return np.where((a == b) | (a == c) | (a == d), a, out)


def display_window(values: np.ndarray, sample_size: int = 1 << 20) -> tuple[float, float]:
    """A contrast window that ignores the brightest and darkest 0.1%, as viewers' auto-contrast does.

    Large inputs are sampled with an even stride (about a million values): a window does not need more, and
    sorting a whole level would cost seconds.
    """
    flat = values.ravel()
    if flat.size > sample_size:
        flat = flat[:: flat.size // sample_size]
    if flat.dtype.kind == "f":
        flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(flat, [0.1, 99.9])
    return float(low), float(high)


def downsample_blocks(block: np.ndarray, step: tuple[int, ...]) -> np.ndarray:
    """Mean of each block of ``step`` pixels (a factor of 1 or 2 per axis): how a volume's levels that halve
    z are made. Odd edges are paired with themselves and integers rounded half up, as in ``downsample_2x``,
    which this equals for a step of (2, 2) in y and x."""
    block = _edges_paired(block, step)
    count = math.prod(step)
    wide = _accumulator(block.dtype)  # wide enough for 8 values too
    grouped = block.reshape([part for n, f in zip(block.shape, step, strict=True) for part in (n // f, f)])
    total = grouped.sum(axis=tuple(range(1, grouped.ndim, 2)), dtype=wide)
    if block.dtype.kind in "ui":
        if wide.kind == "f":  # 64-bit integers: averaged in float64, rounded back
            return np.rint(total / count).astype(block.dtype)
        total += count // 2
        total >>= int(math.log2(count))  # floor((sum + count / 2) / count), as downsample_2x rounds
        return total.astype(block.dtype)
    if total.dtype.kind != "f":  # booleans, counted in uint8
        return (total / count).astype(block.dtype)
    total /= count
    return total.astype(block.dtype, copy=False)


def mode_blocks(block: np.ndarray, step: tuple[int, ...]) -> np.ndarray:
    """The most frequent value of each block of ``step`` pixels: a label volume's levels that halve z.
    Ties go to the first value in reading order (z, then y, then x), as in ``mode_2x``."""
    block = _edges_paired(block, step)
    offsets = itertools.product(*(range(f) for f in step))
    values = np.stack([block[tuple(slice(o, None, f) for o, f in zip(offset, step, strict=True))]
                       for offset in offsets])  # fmt: skip
    counts = np.zeros(values.shape, np.uint8)
    for index in range(len(values)):
        counts[index] = (values == values[index]).sum(axis=0)
    first_most = counts.argmax(axis=0)[np.newaxis]
    return np.take_along_axis(values, first_most, axis=0)[0]


def _edges_paired(block: np.ndarray, step: tuple[int, ...]) -> np.ndarray:
    """``block`` with its last plane, row or column repeated along each halved axis of odd length."""
    odd = [(0, 1) if f == 2 and n % 2 else (0, 0) for n, f in zip(block.shape, step, strict=True)]
    return np.pad(block, odd, mode="edge") if any(pad for pad in odd) else block

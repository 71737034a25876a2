"""Focus measures of one 2-D plane, as CellProfiler's MeasureImageQuality computes them (Bray et al. 2012,
"Workflow and metrics for image quality control in large-scale high-content screens", J Biomol Screen).

- power log-log slope: the slope of log ring power against log ring radius of the plane's power spectrum,
  over rings 2 .. min(height, width) / 8 (centrosome's ``rps``, which stops there "to avoid edge
  effects"). Blur removes high frequencies, so the slope falls: more negative = blurrier. Bray et al.
  found it the most reliable blur measure. Ring *sums* of power, as CellProfiler's, so a slope is 1
  higher than one of ring means.
- focus score: the normalised variance, var / mean (Sun, Duthaler & Nelson 2004, the best-ranked
  autofocus function in their comparison).
- local focus score: the normalised variance in windows of ``window`` pixels, then the variance of those
  over their median.

The slope is invariant to intensity scale. The two focus scores are in the plane's intensity units:
CellProfiler's, on images rescaled to 0..1, are these divided by the rescaling (65535 for uint16).

Cost: one pass over the plane in blocks of rows (the mean-subtracted block, its square, their window sums
and the block's real FFT along x), so temporaries stay small and in cache; whole-plane float64 temporaries
(9 MB each at 1080 x 1080) go through memory several times and are sometimes page-faulted anew, and took
1.6x as long. The slope needs only the lowest eighth of the spectrum, so only those columns are
transformed along y, and only the rings' pixels are summed. Every step is a numpy call that releases the
GIL, so threads run in parallel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fairimage.model.errors import InvalidInputError
from fairimage.model.qc.intensity import check_plane

WINDOW = 20  # CellProfiler's default window for the local focus score, in pixels
BLOCK_ROWS = 128  # rows per block of the sweep: 1 MiB of float64 for a 1080-pixel-wide plane


@dataclass(frozen=True)
class Focus:
    """A plane's focus measures, and the shape and window they were taken at (they depend on both)."""

    focus_score: float  # CellProfiler FocusScore
    local_focus_score: float  # CellProfiler LocalFocusScore
    power_log_log_slope: float  # CellProfiler PowerLogLogSlope
    shape: tuple[int, int]
    window: int


def measure_focus(plane: np.ndarray, window: int = WINDOW, mean: float | None = None) -> Focus:
    """The three focus measures of ``plane``; pass its ``mean`` if it is known, to save a pass."""
    check_plane(plane)
    if window < 1:
        raise InvalidInputError(f"the local focus window is {window} pixels; it must be at least 1")
    average = float(plane.mean(dtype=np.float64)) if mean is None else mean
    grid = _grid(*plane.shape, window)
    rings = _rings(*plane.shape)
    sums, half = _sweep(plane, average, grid, rings.columns if rings else 0)
    height, width = plane.shape
    return Focus(
        focus_score=_normalised_variance(float(sums[1].sum()) / plane.size, average),
        local_focus_score=_local_focus_score(sums, grid.pixels, average),
        power_log_log_slope=_slope(half, rings) if rings else 0.0,
        shape=(height, width),
        window=window,
    )


def power_log_log_slope(plane: np.ndarray) -> float:
    """The power spectrum's log-log slope of ``plane`` (CellProfiler PowerLogLogSlope); 0 for planes
    that have none: constant, or smaller than 24 pixels a side, as CellProfiler returns."""
    return measure_focus(plane).power_log_log_slope


def _normalised_variance(variance: float, mean: float) -> float:
    # CellProfiler scores a plane whose mean is not positive 0.
    return variance / mean if mean > 0 else 0.0


def _sweep(plane: np.ndarray, mean: float, grid: _Grid, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """One pass over ``plane`` in blocks of rows: the window sums of (x - mean) and (x - mean)^2, and the
    first ``columns`` frequencies of each row's real FFT."""
    sums = np.empty((2, grid.pixels.shape[0], grid.pixels.shape[1]))
    half = np.empty((plane.shape[0], columns), np.complex128)
    for block in grid.blocks:
        centred = np.subtract(plane[block.rows], mean, dtype=np.float64)
        sums[0, block.windows] = _window_sums(centred, block.starts, grid.columns)
        sums[1, block.windows] = _window_sums(np.square(centred), block.starts, grid.columns)
        if columns:
            half[block.rows] = np.fft.rfft(centred, axis=1)[:, :columns]
    return sums, half


def _slope(half: np.ndarray, rings: _Rings) -> float:
    spectrum = np.fft.fft(half, axis=0)[rings.rows]
    power = (spectrum.real**2 + spectrum.imag**2).ravel()
    sums = np.bincount(rings.own, power, rings.bins) + np.bincount(rings.mirror, power, rings.bins)
    return _fitted_slope(rings.radii, sums[2:-1])


def _fitted_slope(radii: np.ndarray, power: np.ndarray) -> float:
    """Least-squares slope of log power on log radius, over rings with power (CellProfiler's lstsq)."""
    valid = power > 0
    if np.count_nonzero(valid) < 2:
        return 0.0
    x = np.log(radii[valid])
    y = np.log(power[valid])
    x = x - x.mean()
    return float(x @ (y - y.mean()) / (x @ x))


@dataclass(frozen=True)
class _Rings:
    """Which spectrum pixels fall in which ring, for one plane shape.

    ``rows`` are the rows of the y transform that any ring needs and ``columns`` the x frequencies; ``own``
    labels each kept pixel with its ring and ``mirror`` labels the conjugate pixel the real FFT leaves out
    (the same power), both ``bins - 1`` when outside every ring; ``radii`` are the rings' labels."""

    rows: np.ndarray
    columns: int
    own: np.ndarray
    mirror: np.ndarray
    bins: int
    radii: np.ndarray


@lru_cache(maxsize=16)
def _rings(height: int, width: int) -> _Rings | None:
    # centrosome.radial_power_spectrum.rps: rings are labelled floor(sqrt(d)) + 1 for the folded squared
    # distance d, and labels 2 .. floor(min / 8) - 1 are kept (label 1 is the DC term). It folds with
    # flipud/fliplr, so row i is min(i, height - 1 - i) from the origin: frequency -k sits at k - 1. That
    # is kept, so the slope equals CellProfiler's.
    top = math.floor(min(height, width) / 8.0) - 1  # the last ring
    if top < 2:
        return None
    outside = top + 1
    rows = np.concatenate([np.arange(0, top + 1), np.arange(height - top, height)])
    columns = np.arange(top + 1)
    own = _ring_labels(_folded(rows, height), _folded(columns, width), outside)
    # The real FFT keeps x frequencies 0..width/2; pixel (i, j) stands for itself and, for j > 0, its
    # conjugate (-i, -j), which has the same power and lies at ((height - i) % height, width - j).
    mirror = _ring_labels(_folded((height - rows) % height, height), _folded(width - columns, width), outside)
    mirror[:, 0] = outside
    return _Rings(
        rows=_frozen(rows),
        columns=top + 1,
        own=_frozen(own.ravel()),
        mirror=_frozen(mirror.ravel()),
        bins=outside + 1,
        radii=_frozen(np.arange(2, outside, dtype=np.float64)),
    )


def _folded(index: np.ndarray, size: int) -> np.ndarray:
    return np.minimum(index, size - 1 - index)


def _ring_labels(rows: np.ndarray, columns: np.ndarray, outside: int) -> np.ndarray:
    squared = rows[:, None] ** 2 + columns[None, :] ** 2
    labels = np.floor(np.sqrt(squared)).astype(np.intp) + 1
    return np.minimum(labels, outside)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False  # shared between calls (and threads) through the cache
    return array


def _local_focus_score(sums: np.ndarray, pixels: np.ndarray, mean: float) -> float:
    """CellProfiler's LocalFocusScore: normalised variance per window, then var / median of those."""
    local = sums[0] / pixels  # the window's mean minus the plane's
    # E[x^2] - E[x]^2 can round below 0 in a flat window; a variance is not negative.
    local_variance = np.maximum(sums[1] / pixels - local**2, 0.0)
    local_mean = local + mean
    kept = local_mean != 0  # CellProfiler leaves out windows whose mean is 0
    if not kept.any():
        return 0.0
    scores = local_variance[kept] / local_mean[kept]
    median = float(np.median(scores))
    if not (math.isfinite(median) and median > 0):
        return 0.0
    return float(scores.var()) / median


@dataclass(frozen=True)
class _Block:
    rows: slice  # rows of the plane
    windows: slice  # rows of the window grid they make up
    starts: np.ndarray  # where each of those windows starts, within the block


@dataclass(frozen=True)
class _Grid:
    """CellProfiler's window grid for one plane shape, and the row blocks of the sweep, made of whole
    window rows."""

    columns: np.ndarray  # where each window column starts
    pixels: np.ndarray  # pixels per window
    blocks: tuple[_Block, ...]


@lru_cache(maxsize=16)
def _grid(height: int, width: int, window: int) -> _Grid:
    rows, columns = _window_starts(height, window), _window_starts(width, window)
    pixels = np.outer(np.diff(rows, append=height), np.diff(columns, append=width))
    per_block = max(1, BLOCK_ROWS // window)
    blocks = []
    for first in range(0, rows.size, per_block):
        last = min(first + per_block, rows.size)
        start, stop = int(rows[first]), int(rows[last]) if last < rows.size else height
        blocks.append(_Block(slice(start, stop), slice(first, last), _frozen(rows[first:last] - start)))
    return _Grid(_frozen(columns), _frozen(pixels), tuple(blocks))


def _window_starts(size: int, window: int) -> np.ndarray:
    # CellProfiler's grid: ceil(size / window) windows, pixel i in window int(i * count / size).
    count = (size + window - 1) // window
    labels = (np.arange(size, dtype=np.float64) * float(count) / float(size)).astype(np.intp)
    return np.flatnonzero(np.diff(labels, prepend=-1))


def _window_sums(values: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    return np.add.reduceat(np.add.reduceat(values, rows, axis=0), columns, axis=1)

"""Intensity statistics and saturation of one 2-D plane.

8- and 16-bit planes (what microscopes write) are counted into a histogram in one pass, and every statistic
comes from the histogram: exact, and several times faster than separate min, max, median, std and
percentile passes. Other dtypes go through one partition for the order statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fairimage.model.errors import InvalidInputError

QUANTILES = (0.01, 0.5, 0.99)  # p01, median, p99


@dataclass(frozen=True)
class Intensity:
    """A plane's intensities in its own units; std is the population SD, as numpy's and CellProfiler's."""

    minimum: float
    maximum: float
    mean: float
    median: float
    std: float
    p01: float
    p99: float
    ceiling: float  # the value counted as saturated: the detector's, or the dtype's maximum
    percent_saturated: float  # % of pixels at or above the ceiling
    percent_maximal: float  # % at the plane's own maximum (CellProfiler PercentMaximal)
    percent_minimal: float  # % at the plane's own minimum (CellProfiler PercentMinimal)


def check_plane(plane: np.ndarray) -> None:
    """Refuse what is not a non-empty 2-D numeric plane, with the shape that was given."""
    if plane.ndim != 2 or plane.size == 0:
        raise InvalidInputError(f"a QC plane must be a non-empty 2-D (y, x) array; got shape {plane.shape}")
    if plane.dtype.kind not in "biuf":
        raise InvalidInputError(f"a QC plane must hold integers or floats; got dtype {plane.dtype}")


def default_ceiling(dtype: np.dtype) -> float:
    """The dtype's maximum for integers; 1.0 for floats (scaled to 0..1, as CellProfiler keeps images)."""
    if dtype.kind == "b":
        return 1.0
    if dtype.kind in "iu":
        return float(np.iinfo(dtype).max)
    return 1.0


def measure_intensity(plane: np.ndarray, ceiling: float | None = None) -> Intensity:
    """Min, max, mean, median, std, p01, p99 and the saturated share of ``plane``; ``ceiling`` is the
    detector's maximum (4095 for a 12-bit camera writing uint16), the dtype's maximum if not given."""
    check_plane(plane)
    top = default_ceiling(plane.dtype) if ceiling is None else float(ceiling)
    if plane.dtype.kind in "biu" and plane.dtype.itemsize <= 2:
        return _from_histogram(plane, top)
    return _from_values(plane, top)


def _from_histogram(plane: np.ndarray, ceiling: float) -> Intensity:
    offset = int(np.iinfo(plane.dtype).min) if plane.dtype.kind == "i" else 0
    levels: np.ndarray = plane
    if plane.dtype.kind == "b":
        levels = plane.view(np.uint8)
    elif offset:
        levels = plane.astype(np.int32) - offset  # bincount counts non-negative values only
    counts = np.bincount(levels.ravel())
    present = np.flatnonzero(counts)
    low, high = int(present[0]), int(present[-1])
    weights = counts[low : high + 1].astype(np.float64)
    grey = np.arange(low, high + 1, dtype=np.float64)
    n = plane.size
    mean = float(weights @ grey) / n
    variance = float(weights @ np.square(grey - mean)) / n
    p01, median, p99 = _quantiles(np.cumsum(counts[low : high + 1]), n) + low + offset
    first_saturated = min(max(math.ceil(ceiling) - offset, 0), counts.size)
    return Intensity(
        minimum=float(low + offset),
        maximum=float(high + offset),
        mean=mean + offset,
        median=float(median),
        std=math.sqrt(variance),
        p01=float(p01),
        p99=float(p99),
        ceiling=ceiling,
        percent_saturated=100.0 * float(counts[first_saturated:].sum()) / n,
        percent_maximal=100.0 * float(counts[high]) / n,
        percent_minimal=100.0 * float(counts[low]) / n,
    )


def _quantiles(cumulative: np.ndarray, n: int) -> np.ndarray:
    """QUANTILES of the values a histogram counts (bin i holds value i), interpolated between order
    statistics as numpy.percentile's default ("linear") method does."""
    position = (n - 1) * np.asarray(QUANTILES)
    below = np.floor(position)
    above = np.minimum(below + 1, n - 1)
    # The k-th smallest value (0-based) is the first bin whose cumulative count exceeds k.
    low = np.searchsorted(cumulative, below, side="right").astype(np.float64)
    high = np.searchsorted(cumulative, above, side="right").astype(np.float64)
    return low + (position - below) * (high - low)


def _from_values(plane: np.ndarray, ceiling: float) -> Intensity:
    flat = plane.ravel()
    n = flat.size
    minimum, p01, median, p99, maximum = np.percentile(flat, [0, *(100 * q for q in QUANTILES), 100])
    return Intensity(
        minimum=float(minimum),
        maximum=float(maximum),
        mean=float(flat.mean(dtype=np.float64)),
        median=float(median),
        std=float(flat.std(dtype=np.float64)),
        p01=float(p01),
        p99=float(p99),
        ceiling=ceiling,
        percent_saturated=100.0 * np.count_nonzero(flat >= ceiling) / n,
        percent_maximal=100.0 * np.count_nonzero(flat == maximum) / n,
        percent_minimal=100.0 * np.count_nonzero(flat == minimum) / n,
    )

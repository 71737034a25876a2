"""Robust statistics QC judges by: median and MAD instead of mean and SD, so that the defects being looked
for do not hide themselves by inflating the spread; and Tukey's median polish for plate rows and columns."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# The MAD of a normal sample times 1 / Phi^-1(3/4) = 1.4826 estimates its SD (Iglewicz & Hoaglin 1993).
MAD_TO_SD = 1.4826
# When more than half the values are equal the MAD is 0; the mean absolute deviation times sqrt(pi/2)
# = 1.2533 estimates the SD instead (the fallback of IBM's modified z-score).
MEAN_AD_TO_SD = 1.2533


def robust_sd(values: Sequence[float] | np.ndarray) -> float:
    """An SD estimate that outliers barely move: 1.4826 MAD, or 1.2533 mean |x - median| if the MAD is 0."""
    array = np.asarray(values, dtype=np.float64)
    deviations = np.abs(array - np.median(array))
    mad = float(np.median(deviations))
    return MAD_TO_SD * mad if mad > 0 else MEAN_AD_TO_SD * float(deviations.mean())


def robust_z(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """(x - median) / robust SD for each value; all 0 when the values are all equal."""
    array = np.asarray(values, dtype=np.float64)
    spread = robust_sd(array)
    if spread == 0:
        return np.zeros_like(array)
    return (array - np.median(array)) / spread


def divided(numerator: float, denominator: float, undefined: float = math.nan) -> float:
    """numerator / denominator; a signed infinity when only the denominator is 0, ``undefined`` when both
    are (0 for an effect size: no difference and no spread is no effect)."""
    if denominator != 0:
        return numerator / denominator
    return undefined if numerator == 0 else math.copysign(math.inf, numerator)


@dataclass(frozen=True)
class MedianPolish:
    """``table`` = overall + rows[:, None] + columns[None, :] + residuals, each effect a median; a row or
    column with no value has a NaN effect."""

    overall: float
    rows: np.ndarray
    columns: np.ndarray
    residuals: np.ndarray  # NaN where the table had no value


def median_polish(table: np.ndarray, iterations: int = 10, tolerance: float = 1e-9) -> MedianPolish:
    """Tukey's median polish of a 2-D table with NaN for missing cells (as R's medpolish): alternately
    sweep row and column medians into the effects until a sweep changes nothing."""
    residuals = np.array(table, dtype=np.float64)
    has_rows = ~np.all(np.isnan(residuals), axis=1)
    has_columns = ~np.all(np.isnan(residuals), axis=0)
    rows = np.zeros(int(has_rows.sum()))
    columns = np.zeros(int(has_columns.sum()))
    cells = residuals[np.ix_(has_rows, has_columns)]
    overall = 0.0
    for _ in range(iterations):
        row_step = np.nanmedian(cells, axis=1)
        cells -= row_step[:, None]
        rows += row_step
        shift = float(np.median(columns))
        columns -= shift
        overall += shift
        column_step = np.nanmedian(cells, axis=0)
        cells -= column_step[None, :]
        columns += column_step
        shift = float(np.median(rows))
        rows -= shift
        overall += shift
        if max(np.abs(row_step).max(), np.abs(column_step).max()) <= tolerance:
            break
    residuals[np.ix_(has_rows, has_columns)] = cells
    return MedianPolish(overall, _placed(rows, has_rows), _placed(columns, has_columns), residuals)


def _placed(effects: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Effects of the lines that have values, placed back among all lines (NaN for the empty ones)."""
    placed = np.full(present.shape, np.nan)
    placed[present] = effects
    return placed

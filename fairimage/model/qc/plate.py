"""Plate statistics on one readout per well: assay quality from the controls (Z'-factor, SSMD, signal
window) and spatial artefacts (edge effect, row and column effects).

Readouts are keyed by well, (row, column) 0-based; controls by well, as a platemap's control types.
Edge and line effects are judged on the sample wells only: screens put their controls in the outer
columns, where they would pass for an edge effect.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fairimage.model.errors import InvalidInputError
from fairimage.model.plates.layout import Geometry, well_name
from fairimage.model.qc.robust import divided, median_polish, robust_sd
from fairimage.model.qc.thresholds import PlateFlag, QcThresholds

Well = tuple[int, int]  # (row, column), 0-based: (0, 0) is A1


@dataclass(frozen=True)
class ControlStatistics:
    """How well the positive and negative controls separate; SDs are sample SDs (n - 1)."""

    positive_mean: float
    positive_sd: float
    negative_mean: float
    negative_sd: float
    positives: int
    negatives: int
    z_prime: float
    ssmd: float
    signal_window: float


@dataclass(frozen=True)
class EdgeEffect:
    """Outer-ring wells against inner ones; ``size`` is the difference of medians in robust SDs."""

    outer_median: float
    inner_median: float
    spread: float  # robust SD of the wells around their own group's median
    size: float
    outer: int
    inner: int


@dataclass(frozen=True)
class LineEffects:
    """Tukey's median polish of the plate: readout = overall + row + column + residual. Effects are in
    readout units (NaN for a line without wells); B-scores are the residuals over their robust SD
    (Brideau et al. 2003, J Biomol Screen 8:634)."""

    overall: float
    rows: tuple[float, ...]
    columns: tuple[float, ...]
    # The robust SD of the wells' readouts, the unit effects are judged in. Not that of the residuals: a
    # median polish leaves many residuals at exactly 0, so their MAD is ~0.75 of the noise on 96 wells.
    spread: float
    b_scores: Mapping[Well, float]

    def flagged(self, limit: float) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Rows and columns whose effect is beyond ``limit`` robust SDs."""
        return _beyond(self.rows, self.spread, limit), _beyond(self.columns, self.spread, limit)


@dataclass(frozen=True)
class PlateStatistics:
    """Everything judged on a plate's readout; ``controls`` and ``edge`` are None when the plate has no
    (or too few) control wells, or no inner or no outer sample wells."""

    controls: ControlStatistics | None
    edge: EdgeEffect | None
    lines: LineEffects | None  # None when every imaged well is a control: no samples to compare
    flagged_rows: tuple[int, ...]
    flagged_columns: tuple[int, ...]
    flags: frozenset[PlateFlag]


def control_statistics(positive: Sequence[float], negative: Sequence[float]) -> ControlStatistics:
    """Z'-factor, SSMD and signal window of two sets of control readouts (at least 2 of each)."""
    if len(positive) < 2 or len(negative) < 2:
        raise InvalidInputError(
            f"control statistics need at least 2 positive and 2 negative control wells; the plate has "
            f"{len(positive)} positive and {len(negative)} negative"
        )
    mean_p, sd_p = float(np.mean(positive)), float(np.std(positive, ddof=1))
    mean_n, sd_n = float(np.mean(negative)), float(np.std(negative, ddof=1))
    separation = abs(mean_p - mean_n)
    band = 3 * (sd_p + sd_n)
    return ControlStatistics(
        positive_mean=mean_p,
        positive_sd=sd_p,
        negative_mean=mean_n,
        negative_sd=sd_n,
        positives=len(positive),
        negatives=len(negative),
        # Zhang, Chung & Oldenburg (1999), J Biomol Screen 4:67: Z' = 1 - 3(sd_p + sd_n) / |mean_p - mean_n|.
        z_prime=1 - divided(band, separation),
        # Zhang (2007), Genomics 89:552: SSMD = (mean_p - mean_n) / sqrt(sd_p^2 + sd_n^2).
        ssmd=divided(mean_p - mean_n, math.hypot(sd_p, sd_n)),
        # Iversen et al. (2006), J Biomol Screen 11:247: SW = (|mean_p - mean_n| - 3(sd_p + sd_n)) / sd,
        # sd that of the maximum signal, the negative (uninhibited) control of an inhibition assay.
        signal_window=divided(separation - band, sd_n),
    )


def edge_effect(readouts: Mapping[Well, float], geometry: Geometry, ring: int = 1) -> EdgeEffect:
    """Outer ``ring`` wells of the plate against the wells inside it, by medians scaled by a robust SD."""
    outer = [value for well, value in readouts.items() if _on_edge(well, geometry, ring)]
    inner = [value for well, value in readouts.items() if not _on_edge(well, geometry, ring)]
    if not outer or not inner:
        raise InvalidInputError(
            f"an edge effect needs readouts of outer and inner wells; there are {len(outer)} outer and "
            f"{len(inner)} inner"
        )
    outer_median, inner_median = float(np.median(outer)), float(np.median(inner))
    # The spread is taken around each group's own median, so the effect does not inflate its own scale.
    spread = robust_sd(np.concatenate([np.subtract(outer, outer_median), np.subtract(inner, inner_median)]))
    return EdgeEffect(
        outer_median=outer_median,
        inner_median=inner_median,
        spread=spread,
        size=divided(outer_median - inner_median, spread, undefined=0.0),
        outer=len(outer),
        inner=len(inner),
    )


def line_effects(readouts: Mapping[Well, float], geometry: Geometry) -> LineEffects:
    """Row and column effects by a two-way median polish, with the B-score of every well."""
    if not readouts:
        raise InvalidInputError("row and column effects need at least one well's readout")
    table = np.full((geometry.rows, geometry.columns), np.nan)
    for (row, column), value in readouts.items():
        if not geometry.contains(row, column):
            raise InvalidInputError(
                f"well {well_name(row, column)} is outside the {geometry.rows * geometry.columns}-well plate"
            )
        table[row, column] = value
    polish = median_polish(table)
    residuals = [float(polish.residuals[well]) for well in readouts]
    residual_spread = robust_sd(residuals)
    return LineEffects(
        overall=polish.overall,
        rows=tuple(float(effect) for effect in polish.rows),
        columns=tuple(float(effect) for effect in polish.columns),
        spread=robust_sd(list(readouts.values())),
        b_scores={
            well: divided(residual, residual_spread, undefined=0.0)
            for well, residual in zip(readouts, residuals, strict=True)
        },
    )


def plate_statistics(
    readouts: Mapping[Well, float],
    controls: Mapping[Well, str],
    geometry: Geometry,
    thresholds: QcThresholds | None = None,
) -> PlateStatistics:
    """Control statistics, edge and line effects of a plate, and the flags they raise. ``controls`` maps
    control wells to their type ("positive", "negative", "neutral"); positive and negative ones are left
    out of the edge and line effects, neutral ones (e.g. DMSO) count as samples."""
    limits = thresholds or QcThresholds()
    samples = {well: value for well, value in readouts.items() if controls.get(well) not in _CONTROLS}
    stats = _controls(readouts, controls)
    edge = _edge(samples, geometry)
    lines = line_effects(samples, geometry) if samples else None
    rows, columns = lines.flagged(limits.line_effect) if lines else ((), ())
    flags: set[PlateFlag] = set()
    if stats is not None and not stats.z_prime >= limits.z_prime_min:  # a NaN Z' is poor too
        flags.add("poor_separation")
    if edge is not None and abs(edge.size) > limits.edge_effect:
        flags.add("edge_effect")
    if rows:
        flags.add("row_effect")
    if columns:
        flags.add("column_effect")
    return PlateStatistics(stats, edge, lines, rows, columns, frozenset(flags))


_CONTROLS = ("positive", "negative")  # wells that are not samples for edge and line effects


def _controls(readouts: Mapping[Well, float], controls: Mapping[Well, str]) -> ControlStatistics | None:
    positive, negative = (
        [value for well, value in readouts.items() if controls.get(well) == kind] for kind in _CONTROLS
    )
    if len(positive) < 2 or len(negative) < 2:
        return None
    return control_statistics(positive, negative)


def _edge(samples: Mapping[Well, float], geometry: Geometry) -> EdgeEffect | None:
    edge = [well for well in samples if _on_edge(well, geometry, 1)]
    if not edge or len(edge) == len(samples):
        return None
    return edge_effect(samples, geometry)


def _on_edge(well: Well, geometry: Geometry, ring: int) -> bool:
    row, column = well
    return min(row, column, geometry.rows - 1 - row, geometry.columns - 1 - column) < ring


def _beyond(effects: Sequence[float], spread: float, limit: float) -> tuple[int, ...]:
    return tuple(
        index
        for index, effect in enumerate(effects)
        if not math.isnan(effect) and abs(divided(effect, spread, undefined=0.0)) > limit
    )

"""Fields judged against their peers, and wells against the plate, by robust z-scores.

Peers are the planes of one channel: a DNA stain and a cytoplasm stain differ in every measure. Planes
flagged empty or dark are left out of the peers (their measures say nothing of focus or staining, and
they are flagged already), and so are not judged blurred or outlying.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from fairimage.model.qc.metrics import ImageMetrics, image_flags
from fairimage.model.qc.plate import Well
from fairimage.model.qc.robust import robust_z
from fairimage.model.qc.thresholds import Flag, QcThresholds

_UNMEASURABLE: frozenset[Flag] = frozenset({"empty", "dark"})
SLOPE = "power_log_log_slope"
Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True)
class FieldMetrics:
    """One plane's measures and where it was taken: well, field index, channel name."""

    well: Well
    field: int
    channel: str
    metrics: ImageMetrics


@dataclass(frozen=True)
class Outlier:
    """A measure whose robust z among its peers is beyond the outlier threshold."""

    metric: str
    value: float
    z: float


@dataclass(frozen=True)
class FieldVerdict:
    well: Well
    field: int
    channel: str
    flags: frozenset[Flag]
    outliers: tuple[Outlier, ...]


@dataclass(frozen=True)
class WellSummary:
    """One well in one channel: its fields' median measures, how many fields raise each flag, and the
    measures in which the well stands out from the plate's other wells."""

    well: Well
    channel: str
    fields: int
    medians: Mapping[str, float]  # over the well's measurable fields; over all when none is
    flagged: Mapping[Flag, int]
    outliers: tuple[Outlier, ...]


@dataclass(frozen=True)
class PlateQc:
    fields: tuple[FieldVerdict, ...]
    wells: tuple[WellSummary, ...]

    def readouts(self, channel: str, measure: str = "mean") -> dict[Well, float]:
        """One value per well, a measure's well median in ``channel``: the input of plate_statistics."""
        return {well.well: well.medians[measure] for well in self.wells if well.channel == channel}


def assess_plate(fields: Sequence[FieldMetrics], thresholds: QcThresholds | None = None) -> PlateQc:
    """Flag every field (empty, dark, saturated; blurred against its channel's peers), find outlying
    fields and wells, and summarise each well per channel."""
    limits = thresholds or QcThresholds()
    verdicts = _judge_fields(fields, limits)
    return PlateQc(tuple(verdicts), tuple(_summarise_wells(fields, verdicts, limits)))


def peer_outliers(
    rows: Sequence[Mapping[str, float]], thresholds: QcThresholds | None = None
) -> list[tuple[Outlier, ...]]:
    """For each row of measures, those whose robust z among all rows is beyond ``outlier_z``; none when
    there are fewer rows than ``min_peers``."""
    limits = thresholds or QcThresholds()
    found: list[list[Outlier]] = [[] for _ in rows]
    for metric in limits.outlier_metrics:
        z = _peer_z(rows, metric, limits.min_peers)
        for index in np.flatnonzero(np.abs(z) > limits.outlier_z).tolist():
            found[index].append(Outlier(metric, rows[index][metric], float(z[index])))
    return [tuple(outliers) for outliers in found]


def _peer_z(rows: Sequence[Mapping[str, float]], metric: str, min_peers: int) -> np.ndarray:
    if len(rows) < min_peers:
        return np.zeros(len(rows))
    return robust_z([row[metric] for row in rows])


def _judge_fields(fields: Sequence[FieldMetrics], limits: QcThresholds) -> list[FieldVerdict]:
    flags = [set(image_flags(item.metrics, limits)) for item in fields]
    outliers: list[tuple[Outlier, ...]] = [() for _ in fields]
    for members in _groups([item.channel for item in fields]).values():
        peers = [index for index in members if not flags[index] & _UNMEASURABLE]
        rows = [fields[index].metrics.values() for index in peers]
        slope_z = _peer_z(rows, SLOPE, limits.min_peers)
        for index, found, z in zip(peers, peer_outliers(rows, limits), slope_z, strict=True):
            outliers[index] = found
            if z < -limits.blur_z:
                flags[index].add("blurred")
    return [
        FieldVerdict(item.well, item.field, item.channel, frozenset(flags[index]), outliers[index])
        for index, item in enumerate(fields)
    ]


def _summarise_wells(
    fields: Sequence[FieldMetrics], verdicts: Sequence[FieldVerdict], limits: QcThresholds
) -> list[WellSummary]:
    groups = _groups([(item.well, item.channel) for item in fields])
    measurable = {
        key: [fields[index] for index in members if not verdicts[index].flags & _UNMEASURABLE]
        for key, members in groups.items()
    }
    # A well's medians come from its measurable fields, or from all when every field is empty or dark;
    # only wells with measurable fields are peers for the well outliers.
    medians = {key: _medians(measurable[key] or [fields[i] for i in groups[key]]) for key in groups}
    peers = [key for key in groups if measurable[key]]
    outliers: dict[tuple[Well, str], tuple[Outlier, ...]] = {}
    for members in _groups([channel for _, channel in peers]).values():
        keys = [peers[index] for index in members]
        outliers.update(zip(keys, peer_outliers([medians[key] for key in keys], limits), strict=True))
    return [
        WellSummary(
            well=well,
            channel=channel,
            fields=len(members),
            medians=medians[(well, channel)],
            flagged=_flag_counts([verdicts[index] for index in members]),
            outliers=outliers.get((well, channel), ()),
        )
        for (well, channel), members in groups.items()
    ]


def _medians(fields: Sequence[FieldMetrics]) -> dict[str, float]:
    rows = [item.metrics.values() for item in fields]
    return {name: float(np.median([row[name] for row in rows])) for name in rows[0]}


def _flag_counts(verdicts: Sequence[FieldVerdict]) -> dict[Flag, int]:
    counts: dict[Flag, int] = {}
    for verdict in verdicts:
        for flag in verdict.flags:
            counts[flag] = counts.get(flag, 0) + 1
    return counts


def _groups(keys: Sequence[Key]) -> dict[Key, list[int]]:
    """Indices of ``keys`` by value, in order of first appearance."""
    groups: dict[Key, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    return groups

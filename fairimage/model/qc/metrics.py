"""Quality measures of one image plane (a field's channel), and the flags a plane raises on its own.

Which measures depend on the pyramid level they are taken at (fairimage pyramids are 2x2 means):

- mean: the same at every level.
- min, max, median, std, p01, p99: scale-dependent; averaging shrinks the tails and the noise (the std
  of pure noise halves per level).
- percent_saturated, _maximal, _minimal: scale-dependent; a clipped pixel survives only if its whole
  block is clipped, so take them at level 0.
- focus_score, local_focus_score: scale-dependent; noise variance falls ~4x per level, the window is in
  pixels.
- power_log_log_slope: scale-dependent; it is fitted over rings 2 .. size/8 of the plane, so level 1
  sees the lower half of level 0's band. Blur lowers it at every level where the blur spans more than
  a pixel, so it still finds blur at level 1 or 2.

So compare planes only at one level. ``measure_plane`` takes intensity and saturation from the plane it is
given (level 0: one histogram pass, cheap) and can take the focus measures from a lower level
(``focus_plane``), where the FFT costs a quarter as much per level.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from fairimage.model.qc.focus import WINDOW, Focus, measure_focus
from fairimage.model.qc.intensity import Intensity, measure_intensity
from fairimage.model.qc.thresholds import Flag, QcThresholds

# The measures ``ImageMetrics.values`` gives, by name; aggregates and outliers refer to them so.
MEASURES = (
    "minimum", "maximum", "mean", "median", "std", "p01", "p99",
    "percent_saturated", "percent_maximal", "percent_minimal",
    "focus_score", "local_focus_score", "power_log_log_slope",
)  # fmt: skip

_FOCUS = frozenset(item.name for item in fields(Focus))


@dataclass(frozen=True)
class ImageMetrics:
    intensity: Intensity
    focus: Focus

    def values(self) -> dict[str, float]:
        """Every measure by its name in MEASURES, e.g. for a table row."""
        return {
            name: float(getattr(self.focus if name in _FOCUS else self.intensity, name)) for name in MEASURES
        }


def measure_plane(
    plane: np.ndarray,
    *,
    ceiling: float | None = None,
    window: int = WINDOW,
    focus_plane: np.ndarray | None = None,
) -> ImageMetrics:
    """Intensity, saturation and focus measures of a 2-D plane of any integer or float dtype.

    ``ceiling`` is the detector's saturation value (the dtype's maximum if not given); the focus measures
    come from ``focus_plane`` (the same field at a lower pyramid level) when it is given."""
    intensity = measure_intensity(plane, ceiling)
    if focus_plane is None:
        focus = measure_focus(plane, window, mean=intensity.mean)
    else:
        focus = measure_focus(focus_plane, window)
    return ImageMetrics(intensity, focus)


def image_flags(metrics: ImageMetrics, thresholds: QcThresholds | None = None) -> frozenset[Flag]:
    """The flags a plane raises by itself: empty, dark, saturated (blurred needs peers: see aggregate)."""
    limits = thresholds or QcThresholds()
    intensity = metrics.intensity
    flags: set[Flag] = set()
    if intensity.std <= limits.empty_std:
        flags.add("empty")
    if intensity.maximum < limits.dark_fraction * intensity.ceiling:
        flags.add("dark")
    if intensity.percent_saturated > limits.saturated_percent:
        flags.add("saturated")
    return frozenset(flags)

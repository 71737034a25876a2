"""What quality control flags, and the thresholds that raise the flags. Each default says why it is set
where it is."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from fairimage.model.errors import InvalidInputError

# Image flags. empty, dark and saturated are decided per plane; blurred only against the plane's peers.
Flag = Literal["empty", "dark", "saturated", "blurred"]
# Plate flags, decided on a readout per well.
PlateFlag = Literal["poor_separation", "edge_effect", "row_effect", "column_effect"]


@dataclass(frozen=True)
class QcThresholds:
    """Every cut-off QC applies; one frozen object, so a study can record the ones it was judged by."""

    # Empty: the plane's standard deviation is at most this (intensity units). 0 means a constant plane:
    # an all-zero dead channel or a plane the acquisition never wrote. Raise it to call read-noise-only
    # planes empty (a camera's read noise is ~1-3 counts).
    empty_std: float = 0.0
    # Dark: the plane's maximum is below this fraction of the ceiling. 1% of full scale (655 counts in
    # uint16, 41 for a 12-bit ceiling of 4095) is camera offset plus noise, not stained signal; exposures
    # for a screen are set to use a good part of the range. The maximum is a hot pixel away from
    # missing a dark plane; the peer outliers on the mean catch dim planes relative to the plate.
    dark_fraction: float = 0.01
    # Saturated: more than this percent of the pixels at the ceiling. 0.5% of a 1080x1080 field is
    # ~5,800 pixels, some 20 cell-sized (20 px) objects clipped: enough to bias intensity features of the
    # field. A few saturated spots or hot pixels stay below it.
    saturated_percent: float = 0.5
    # Outliers: |robust z| above this, z = (x - median) / (1.4826 MAD). Iglewicz & Hoaglin (1993)
    # recommend 3.5 for the modified z-score; a normal sample exceeds it once in ~2,100 values.
    outlier_z: float = 3.5
    # Blurred: power log-log slope's robust z below minus this, among the same channel's planes. The
    # slope is the blur measure Bray et al. (2012) found most reliable; one-sided, since blur lowers it.
    # Not 3.5: cell density moves the slope too and gives it a heavier lower tail than a normal's. Of
    # 10,000 generated clean fields (nuclei and cytoplasm stains) 0.1% fall below z -3.5 and 0.04%
    # below -4, while a Gaussian blur of 1.5 px (nuclei) or 2 px (cytoplasm) reaches z -5 to -13.
    blur_z: float = 4.0
    # Peers needed for robust z: a MAD of n values has a relative standard error of ~1.17/sqrt(n), so
    # below 10 values it is uncertain by more than a third and a 3.5 cut would act like anything from
    # 2.3 to 5. Smaller groups get no blur flag and no outliers.
    min_peers: int = 10
    # Metrics tested for outliers, per field against the plate and per well against the plate. Not the
    # saturation percentages: they are 0 on most planes (MAD 0), and the saturated flag judges them.
    outlier_metrics: tuple[str, ...] = ("mean", "focus_score", "power_log_log_slope")
    # Poor separation: Z' below 0.5. Zhang, Chung & Oldenburg (1999): 0.5 <= Z' < 1 is an excellent
    # assay, 0 < Z' < 0.5 a marginal one.
    z_prime_min: float = 0.5
    # Edge effect: outer-ring median minus inner median, in robust SDs of the wells, beyond this. The
    # difference of two medians has a standard error of ~0.26 SD on a 96-well plate (36 outer, 60 inner
    # wells) and ~0.16 SD on 384, so 1.0 is 3.8 to 6 standard errors: none of 2,000 simulated clean
    # plates of either size trips it (0.75 trips 0.5% of 96-well ones), and an effect as large as the
    # well-to-well spread, which biases hit calling, does.
    edge_effect: float = 1.0
    # Row or column effect: a median-polish line effect (Tukey; as for B-scores, Brideau et al. 2003)
    # beyond this many robust SDs of the wells. A column of 8 wells has a median with a standard error of
    # ~0.44 SD, so 1.5 is ~3.4 of them: of 2,000 simulated clean plates it flags 0.8% of 96-well plates
    # (20 lines each) and none of 384-well ones; 1.0 would flag a quarter of the 96-well plates.
    line_effect: float = 1.5
    # Pixel sizes agree within this relative difference: metadata rounding (0.65 vs 0.6500001 um) stays
    # inside, another objective or a 2x binning is far outside.
    pixel_size_tolerance: float = 1e-3

    def changed(self) -> dict[str, Any]:
        """The thresholds that differ from the defaults, as JSON values (what a study keeps)."""
        defaults = asdict(QcThresholds())
        return {name: value for name, value in asdict(self).items() if value != defaults[name]}


# The admissible range of each threshold: a value outside is a typo or a misunderstanding, not a choice.
_RANGES: dict[str, tuple[float, float]] = {
    "empty_std": (0.0, float("inf")),
    "dark_fraction": (0.0, 1.0),
    "saturated_percent": (0.0, 100.0),
    "outlier_z": (1.0, 100.0),
    "blur_z": (1.0, 100.0),
    "min_peers": (3, 1_000_000),
    "z_prime_min": (-1.0, 1.0),
    "edge_effect": (0.0, 100.0),
    "line_effect": (0.0, 100.0),
    "pixel_size_tolerance": (0.0, 1.0),
}


def thresholds_with(changes: dict[str, Any], known_metrics: tuple[str, ...]) -> QcThresholds:
    """The defaults with ``changes`` applied, each checked: an unknown name, a value that is not a number
    or lies outside its range, or an unknown metric is InvalidInputError naming it."""
    names = {item.name for item in fields(QcThresholds)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise InvalidInputError(
            f"QC threshold {unknown[0]!r} does not exist; the thresholds are {', '.join(sorted(names))}"
        )
    checked: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "outlier_metrics":
            metrics = tuple(str(m).strip() for m in (value.split(",") if isinstance(value, str) else value))
            bad = [m for m in metrics if m not in known_metrics]
            if bad or not metrics:
                raise InvalidInputError(
                    f"QC threshold outlier_metrics: {bad[0] if bad else 'none'!r} is not a measure; "
                    f"use some of {', '.join(known_metrics)}"
                )
            checked[name] = metrics
            continue
        low, high = _RANGES[name]
        try:
            number = int(value) if name == "min_peers" else float(value)
        except (TypeError, ValueError):
            raise InvalidInputError(f"QC threshold {name}: {value!r} is not a number") from None
        if not low <= number <= high:
            raise InvalidInputError(f"QC threshold {name}: {number:g} is outside {low:g} to {high:g}")
        checked[name] = number
    return replace(QcThresholds(), **checked)

"""Quality control finds defects planted in generated plates (a blurred field, a saturated well, a dead
channel, dim outer wells, a dim row), and flags nothing on a clean plate; its focus slope is CellProfiler's
to rounding; Z', SSMD and signal window are the papers' formulas on the sample."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from fairimage.model.errors import InvalidInputError
from fairimage.model.plates.layout import Geometry
from fairimage.model.qc.aggregate import FieldMetrics, PlateQc, assess_plate
from fairimage.model.qc.dataset import (
    ImageGeometry,
    duplicate_images,
    inconsistent_geometry,
    missing_images,
    unresolved_terms,
)
from fairimage.model.qc.focus import measure_focus, power_log_log_slope
from fairimage.model.qc.intensity import measure_intensity
from fairimage.model.qc.metrics import image_flags, measure_plane
from fairimage.model.qc.plate import Well, control_statistics, plate_statistics
from fairimage.model.qc.robust import median_polish, robust_z
from fairimage.model.qc.thresholds import QcThresholds

SIDE = 256
PLATE = Geometry(8, 12)  # 96 wells
FIELDS = 2
CHANNELS = {"DNA": 2.5, "actin": 5.0}  # blob sigma in pixels: nuclei, and larger, smoother cytoplasm
Key = tuple[Well, int, str]
Planes = dict[Key, np.ndarray]


# Generated fields: cells are Gaussian blobs on a background, imaged with shot noise.


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian filter of ``sigma`` pixels, applied through the FFT (the fields are periodic)."""
    fy = np.fft.fftfreq(image.shape[0])[:, None]
    fx = np.fft.rfftfreq(image.shape[1])[None, :]
    transfer = np.exp(-2 * np.pi**2 * sigma**2 * (fx**2 + fy**2))
    return np.fft.irfft2(np.fft.rfft2(image) * transfer, s=image.shape)


def cells(rng: np.random.Generator, sigma: float, count: int = 40, background: float = 120.0) -> np.ndarray:
    """The expected photon counts of a field: ~``count`` cells, peaks of 600-2000 over the background."""
    points = np.zeros((SIDE, SIDE))
    n = rng.poisson(count)
    peaks = rng.uniform(600, 2000, n) * 2 * np.pi * sigma**2  # a unit blob's peak is 1 / (2 pi sigma^2)
    np.add.at(points, (rng.integers(0, SIDE, n), rng.integers(0, SIDE, n)), peaks)
    return background + gaussian_blur(points, sigma)


def acquire(rng: np.random.Generator, expected: np.ndarray) -> np.ndarray:
    """A uint16 camera frame of ``expected``: shot noise (normal approximation of Poisson, close above the
    background's 120 photons), clipped at the ceiling."""
    noisy = expected + np.sqrt(np.maximum(expected, 0)) * rng.standard_normal(expected.shape)
    return np.clip(np.rint(noisy), 0, 65535).astype(np.uint16)


def field(key: Key, change: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """One field's plane, the same for the same key (its own random stream); ``change`` edits the
    expected image before it is imaged, as optics or exposure would."""
    (row, column), index, channel = key
    rng = np.random.default_rng([7, row, column, index, list(CHANNELS).index(channel)])
    expected = cells(rng, CHANNELS[channel])
    return acquire(rng, expected if change is None else change(expected))


KEYS = [
    ((r, c), f, ch)
    for r in range(PLATE.rows)
    for c in range(PLATE.columns)
    for f in range(FIELDS)
    for ch in CHANNELS
]


def assess(measured: dict[Key, FieldMetrics], changed: Planes | None = None) -> PlateQc:
    """QC of the clean plate's measures with the ``changed`` planes measured in their place."""
    remeasured = {key: FieldMetrics(*key, measure_plane(plane)) for key, plane in (changed or {}).items()}
    return assess_plate(list((measured | remeasured).values()))


def flagged(qc: PlateQc) -> dict[Key, frozenset[str]]:
    return {(v.well, v.field, v.channel): v.flags for v in qc.fields if v.flags}


def on_edge(well: Well) -> bool:
    row, column = well
    return row in (0, PLATE.rows - 1) or column in (0, PLATE.columns - 1)


@pytest.fixture(scope="module")
def clean() -> Planes:
    return {key: field(key) for key in KEYS}


@pytest.fixture(scope="module")
def measured(clean: Planes) -> dict[Key, FieldMetrics]:
    return {key: FieldMetrics(*key, measure_plane(plane)) for key, plane in clean.items()}


@pytest.fixture(scope="module")
def clean_qc(measured: dict[Key, FieldMetrics]) -> PlateQc:
    return assess(measured)


# CellProfiler's measures written out plainly, as MeasureImageQuality and centrosome compute them.


def reference_slope(image: np.ndarray) -> float:
    """PowerLogLogSlope as centrosome.radial_power_spectrum.rps + MeasureImageQuality: full FFT, radii
    folded with flipud/fliplr, ring sums of power for rings 2 .. min/8, least squares on the logs."""
    image = image.astype(np.float64)
    height, width = image.shape
    radii2 = np.arange(height)[:, None] ** 2 + np.arange(width)[None, :] ** 2
    radii2 = np.minimum(radii2, np.flipud(radii2))
    radii2 = np.minimum(radii2, np.fliplr(radii2))
    labels = np.floor(np.sqrt(radii2)).astype(int) + 1
    rings = np.arange(2, int(np.floor(min(height, width) / 8.0)))
    power = np.abs(np.fft.fft2(image - image.mean())) ** 2
    if rings.size == 0 or image.max() == image.min():
        return 0.0
    sums = np.bincount(labels.ravel(), power.ravel())[rings]
    valid = sums > 0
    if valid.sum() < 2:
        return 0.0
    design = np.stack([np.log(rings[valid]), np.ones(valid.sum())], axis=1)
    return float(np.linalg.lstsq(design, np.log(sums[valid]), rcond=None)[0][0])


def reference_local_focus(image: np.ndarray, window: int = 20) -> float:
    """LocalFocusScore as MeasureImageQuality: a grid of windows, each one's normalised variance, then
    their variance over their median."""
    image = image.astype(np.float64)
    height, width = image.shape
    i, j = np.mgrid[0:height, 0:width].astype(float)
    m, n = (height + window - 1) // window, (width + window - 1) // window
    grid = (
        (i * float(m) / float(height)).astype(int) * n + (j * float(n) / float(width)).astype(int)
    ).ravel()
    counts = np.bincount(grid)
    means = np.bincount(grid, image.ravel()) / counts
    sums = np.bincount(grid, (image.ravel() - means[grid]) ** 2)
    keep = means != 0
    scores = sums[keep] / (counts[keep] * means[keep])
    median = np.median(scores)
    return float(np.var(scores) / median) if median > 0 else 0.0


def some_planes() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    nuclei = acquire(rng, cells(rng, 2.5))
    return [
        nuclei,
        acquire(rng, gaussian_blur(cells(rng, 2.5), 2.0)),
        rng.poisson(300, (300, 217)).astype(np.uint16),
        (nuclei[:97, :131] >> 4).astype(np.uint8),
        (nuclei.astype(np.int32) - 800).astype(np.int16)[:100, :180],
        (nuclei / 65535.0).astype(np.float32),
        nuclei[:24, :40],
        nuclei[:23, :90],
        np.full((64, 64), 7, np.uint16),
    ]


@pytest.mark.parametrize("plane", some_planes(), ids=lambda plane: f"{plane.dtype}-{plane.shape}")
def test_focus_measures_are_cellprofilers(plane: np.ndarray) -> None:
    focus = measure_focus(plane)
    values = plane.astype(np.float64)
    assert focus.power_log_log_slope == pytest.approx(reference_slope(plane), abs=1e-9)
    assert power_log_log_slope(plane) == focus.power_log_log_slope
    mean = values.mean()
    focus_score = ((values - mean) ** 2).sum() / (values.size * mean) if mean > 0 else 0.0
    assert focus.focus_score == pytest.approx(focus_score, rel=1e-9, abs=1e-12)
    assert focus.local_focus_score == pytest.approx(reference_local_focus(plane), rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("plane", some_planes(), ids=lambda plane: f"{plane.dtype}-{plane.shape}")
def test_intensity_statistics_are_numpys(plane: np.ndarray) -> None:
    stats = measure_intensity(plane)
    values = plane.astype(np.float64)
    p01, median, p99 = np.percentile(plane, [1, 50, 99])
    expected = (values.min(), values.max(), values.mean(), median, values.std(), p01, p99)
    measured = (stats.minimum, stats.maximum, stats.mean, stats.median, stats.std, stats.p01, stats.p99)
    assert measured == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert stats.percent_maximal == pytest.approx(100 * np.mean(plane == plane.max()))
    assert stats.percent_minimal == pytest.approx(100 * np.mean(plane == plane.min()))


def test_saturation_is_counted_at_the_dtype_maximum_or_the_detectors_ceiling() -> None:
    plane = np.zeros((100, 100), np.uint16)
    plane[:10, :10] = 4095  # a 12-bit camera's maximum, written as uint16
    plane[:2, :5] = 65535
    assert measure_intensity(plane).percent_saturated == pytest.approx(0.1)
    assert measure_intensity(plane, ceiling=4095).percent_saturated == pytest.approx(1.0)
    assert measure_intensity(plane.astype(np.float32) / 65535).percent_saturated == pytest.approx(0.1)


def test_a_plane_that_is_not_2d_is_refused_with_its_shape() -> None:
    with pytest.raises(InvalidInputError, match=r"2-D .*\(3, 64, 64\)"):
        measure_plane(np.zeros((3, 64, 64), np.uint16))
    with pytest.raises(InvalidInputError, match="window is 0 pixels"):
        measure_focus(np.zeros((64, 64), np.uint16), window=0)


def test_a_clean_plate_raises_no_flag(clean_qc: PlateQc) -> None:
    assert flagged(clean_qc) == {}
    assert all(not well.flagged for well in clean_qc.wells)
    # Outliers are reported, not flags: a 3.5 cut lets a few per thousand measures through on any plate
    # (~0.13% of field and of well measures over 30 generated clean plates).
    measures = len(QcThresholds().outlier_metrics)
    assert sum(len(verdict.outliers) for verdict in clean_qc.fields) <= 0.003 * len(KEYS) * measures
    assert sum(len(well.outliers) for well in clean_qc.wells) <= 0.003 * len(clean_qc.wells) * measures
    for channel in CHANNELS:
        stats = plate_statistics(clean_qc.readouts(channel), {}, PLATE)
        assert stats.flags == frozenset()
        assert stats.edge is not None and abs(stats.edge.size) < 0.5


def test_a_blurred_field_is_flagged_and_no_other(measured: dict[Key, FieldMetrics]) -> None:
    key = ((3, 5), 0, "DNA")
    qc = assess(measured, {key: field(key, lambda expected: gaussian_blur(expected, 1.5))})
    assert flagged(qc) == {key: frozenset({"blurred"})}
    blurred = next(v for v in qc.fields if (v.well, v.field, v.channel) == key)
    assert [o.metric for o in blurred.outliers] == ["power_log_log_slope"]
    assert next(w for w in qc.wells if w.well == (3, 5) and w.channel == "DNA").flagged == {"blurred": 1}


def test_blur_is_found_from_a_lower_pyramid_level(clean: Planes) -> None:
    key = ((4, 7), 1, "actin")
    planes = clean | {key: field(key, lambda expected: gaussian_blur(expected, 3.0))}
    fields = [
        FieldMetrics(*key, measure_plane(plane, focus_plane=downsampled(plane)))
        for key, plane in planes.items()
    ]
    assert {(v.well, v.field, v.channel) for v in assess_plate(fields).fields if v.flags} == {key}
    assert fields[0].metrics.focus.shape == (SIDE // 2, SIDE // 2)


def downsampled(plane: np.ndarray) -> np.ndarray:
    """Pyramid level 1: 2x2 means, as fairimage's pyramids are made."""
    h, w = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    blocks = plane[:h, :w].reshape(h // 2, 2, w // 2, 2).astype(np.float64)
    return blocks.mean(axis=(1, 3)).astype(plane.dtype)


def test_an_overexposed_well_is_saturated_in_its_fields_only(measured: dict[Key, FieldMetrics]) -> None:
    keys = [((5, 8), index, "DNA") for index in range(FIELDS)]
    qc = assess(measured, {key: field(key, lambda expected: 60 * expected) for key in keys})
    assert flagged(qc) == {key: frozenset({"saturated"}) for key in keys}
    summary = next(w for w in qc.wells if w.well == (5, 8) and w.channel == "DNA")
    assert summary.flagged == {"saturated": FIELDS}
    assert summary.medians["percent_saturated"] > QcThresholds().saturated_percent


def test_a_dead_channel_is_empty_and_dark_and_nothing_else(measured: dict[Key, FieldMetrics]) -> None:
    keys = [((6, 2), index, "actin") for index in range(FIELDS)]
    qc = assess(measured, {key: np.zeros((SIDE, SIDE), np.uint16) for key in keys})
    assert flagged(qc) == {key: frozenset({"empty", "dark"}) for key in keys}
    summary = next(w for w in qc.wells if w.well == (6, 2) and w.channel == "actin")
    assert summary.flagged == {"empty": FIELDS, "dark": FIELDS}
    assert summary.medians["maximum"] == 0
    assert summary.outliers == ()  # a well without a measurable field is flagged, not compared


def test_a_camera_offset_with_read_noise_is_dark_not_empty() -> None:
    rng = np.random.default_rng(14)
    plane = (100 + rng.normal(0, 2, (SIDE, SIDE))).astype(np.uint16)
    assert image_flags(measure_plane(plane)) == {"dark"}
    assert image_flags(measure_plane(plane), QcThresholds(empty_std=3)) == {"dark", "empty"}


def test_dim_outer_wells_are_an_edge_effect(measured: dict[Key, FieldMetrics]) -> None:
    dim = {key: field(key, lambda expected: 0.7 * expected) for key in KEYS if on_edge(key[0])}
    stats = plate_statistics(assess(measured, dim).readouts("DNA"), {}, PLATE)
    assert "edge_effect" in stats.flags
    assert stats.edge is not None and stats.edge.size < -QcThresholds().edge_effect
    assert (stats.edge.outer, stats.edge.inner) == (36, 60)


def test_a_dim_row_is_a_row_effect(clean_qc: PlateQc) -> None:
    readouts = {
        well: value * (0.7 if well[0] == 2 else 1.0) for well, value in clean_qc.readouts("DNA").items()
    }
    stats = plate_statistics(readouts, {}, PLATE)
    assert stats.flags == {"row_effect"}
    assert stats.flagged_rows == (2,) and stats.flagged_columns == ()
    assert stats.lines.rows[2] < 0
    # B-scores take the row effect out: the row's wells are no hits.
    assert abs(np.median([stats.lines.b_scores[(2, column)] for column in range(PLATE.columns)])) < 0.5


def test_z_prime_ssmd_and_signal_window_of_controls_with_a_known_separation() -> None:
    rng = np.random.default_rng(15)
    positive, negative = rng.normal(100, 4, 48), rng.normal(30, 5, 48)
    stats = control_statistics(list(positive), list(negative))
    # Drawn so that Z' = 1 - 3 (4 + 5) / 70 = 0.614.
    assert stats.z_prime == pytest.approx(1 - 27 / 70, abs=0.08)
    mp, sp, mn, sn = positive.mean(), positive.std(ddof=1), negative.mean(), negative.std(ddof=1)
    assert stats.z_prime == pytest.approx(1 - 3 * (sp + sn) / abs(mp - mn), rel=1e-12)
    assert stats.ssmd == pytest.approx((mp - mn) / np.sqrt(sp**2 + sn**2), rel=1e-12)
    assert stats.signal_window == pytest.approx((abs(mp - mn) - 3 * (sp + sn)) / sn, rel=1e-12)
    assert (stats.positives, stats.negatives) == (48, 48)


def test_controls_on_the_edge_columns_are_judged_apart_from_the_samples(clean_qc: PlateQc) -> None:
    rng = np.random.default_rng(16)
    readouts = clean_qc.readouts("DNA")
    controls: dict[Well, str] = {}
    for row in range(PLATE.rows):
        readouts[(row, 0)], controls[(row, 0)] = float(rng.normal(3000, 60)), "positive"
        readouts[(row, 11)], controls[(row, 11)] = float(rng.normal(400, 40)), "negative"
    stats = plate_statistics(readouts, controls, PLATE)
    assert stats.flags == frozenset()
    assert stats.controls is not None and stats.controls.z_prime > 0.8
    assert (0, 0) not in stats.lines.b_scores  # controls are no samples
    poor = plate_statistics(readouts, controls, PLATE, QcThresholds(z_prime_min=0.95))
    assert poor.flags == {"poor_separation"}


def test_too_few_controls_or_a_well_off_the_plate_is_an_error_a_user_can_act_on() -> None:
    with pytest.raises(InvalidInputError, match=r"at least 2 positive and 2 negative.*1 positive"):
        control_statistics([1.0], [0.0, 0.1])
    with pytest.raises(InvalidInputError, match="well I1 is outside the 96-well plate"):
        plate_statistics({(0, 0): 1.0, (8, 0): 2.0}, {}, PLATE)


def test_robust_z_is_median_and_mad_based() -> None:
    z = robust_z([1, 2, 3, 4, 100])
    assert z[2] == 0 and z[4] == pytest.approx(97 / 1.4826)
    assert robust_z([5, 5, 5, 5, 9])[-1] == pytest.approx(4 / (1.2533 * 0.8))  # MAD 0: mean |deviation|
    assert not robust_z([2.0] * 6).any()


def test_median_polish_recovers_additive_row_and_column_effects() -> None:
    rows, columns = np.array([0.0, 5.0, -3.0, 1.0]), np.array([2.0, 0.0, -1.0, 4.0, 0.5])
    table = 10 + rows[:, None] + columns[None, :]
    table[1, 2] = np.nan
    polish = median_polish(table)
    fitted = polish.overall + polish.rows[:, None] + polish.columns[None, :]
    assert np.allclose(fitted, 10 + rows[:, None] + columns[None, :])
    assert np.allclose(np.nan_to_num(polish.residuals), 0) and np.isnan(polish.residuals[1, 2])


def test_missing_wells_fields_and_channels_are_named_once_each() -> None:
    wells = [(0, 0), (0, 1), (1, 0)]
    present = {(w, f, c) for w in wells for f in range(3) for c in ("DNA", "actin")}
    present -= {((0, 0), f, c) for f in range(3) for c in ("DNA", "actin")}  # A1: nothing
    present -= {((0, 1), 2, "DNA"), ((0, 1), 2, "actin")}  # A2 field 3
    present -= {((1, 0), 0, "actin")}  # B1 field 1: one channel
    findings = missing_images(wells, 3, ["DNA", "actin"], present)
    assert [str(finding) for finding in findings] == [
        "A1: no images; the well was not imaged or its files were not found",
        "A2 field 3: no images of this field",
        "B1 field 1: channel(s) actin missing",
    ]
    assert [finding.rule for finding in findings] == ["missing_well", "missing_field", "missing_channel"]


def test_images_of_another_shape_or_pixel_size_are_named() -> None:
    usual = ImageGeometry("img-1", (2, 1080, 1080), (0.65, 0.65))
    images = [replace(usual, image=f"img-{n}") for n in range(1, 6)] + [
        ImageGeometry("img-6", (2, 540, 540), (1.3, 1.3)),
        ImageGeometry("img-7", (2, 1080, 1080), (0.6500001, 0.65)),  # rounding, not a difference
        ImageGeometry("img-8", (2, 1080, 1080), None),
    ]
    findings = inconsistent_geometry(images)
    assert [(finding.rule, finding.subject) for finding in findings] == [
        ("dimensions", "img-6"),
        ("pixel_size", "img-6"),
        ("pixel_size", "img-8"),
    ]
    assert "2 x 540 x 540 differs from 2 x 1080 x 1080, the shape of 7 of the study's 8 images" in str(
        findings[0]
    )


def test_duplicate_images_are_found_by_content_hash(clean: Planes) -> None:
    planes = list(clean.values())[:4]
    hashes = {f"img-{n}": hashlib.sha256(plane.tobytes()).hexdigest() for n, plane in enumerate(planes)}
    hashes["img-9"] = hashes["img-2"]  # the same field saved twice
    [finding] = duplicate_images(hashes)
    assert (finding.rule, finding.subject) == ("duplicate", "img-2")
    assert finding.message.startswith("same pixels as img-9")


def test_ontology_terms_that_do_not_resolve_are_named_with_their_field() -> None:
    known = {"FBbi:00000246": "fluorescence microscopy", "NCBITaxon:9606": "Homo sapiens"}
    terms = {
        "study_components[0].imaging_methods": ["FBbi:00000246", "FBbi:99999999"],
        "biosamples[0].organism": ["NCBITaxon:9606"],
    }
    [finding] = unresolved_terms(terms, known.get)
    assert str(finding).startswith("study_components[0].imaging_methods: FBbi:99999999 does not resolve")

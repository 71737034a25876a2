"""Image QC throughput: fairimage's per-image measures against the same measures as CellProfiler computes
them, in the same run, on this machine.

The plate is generated in memory (nothing is written): 384 wells x 4 fields x 3 channels of 1080 x 1080 uint16
fields, cells as Gaussian blobs of three sizes (one per channel) on a background, with shot noise. A bank of
distinct fields is generated once and the plate cycles through it, so generation is not timed.

Measures, per image: min, max, mean, median, std, p01, p99; % of pixels at the dtype maximum, at the image's
maximum and minimum; focus score (normalised variance), local focus score (20 px windows) and power log-log
slope. Tools:

- **fairimage**: ``fairimage.model.qc.metrics.measure_plane``, one call per image, in a thread per core (its
  numpy calls release the GIL). Also on one thread, for the cost per core.
- **CellProfiler-style reference**: MeasureImageQuality's code for those measures (calculate_saturation,
  run_intensity_measurement, calculate_focus_scores, calculate_power_spectrum with centrosome's ``rps``),
  on ``skimage.util.img_as_float`` of the image as CellProfiler rescales it, plus ``np.percentile`` for p01
  and p99; one call per image, as a user writes it. Sequential, and in a process per core (CellProfiler's
  workers are processes).

Both run at level 0 and at level 1 (2x2 mean downsampled, what a pyramid's next level holds). The reference's
results are compared with fairimage's on every image it measured, so the ratio is for the same numbers.

Needs scipy and scikit-image (both come with the test extra, through ome-zarr):
``pip install scipy scikit-image``.

    python benchmarks/qc.py                          # the 384-well plate, about 10 minutes on 2 cores
    python benchmarks/qc.py --wells 96 --side 540    # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from fairimage.model.qc.metrics import measure_plane

try:
    import scipy.fftpack
    import scipy.linalg
    import scipy.ndimage
    from skimage.util import img_as_float
except ImportError as missing:
    raise SystemExit(
        f"benchmarks/qc.py measures its reference with scipy and scikit-image ({missing.name} is missing): "
        "pip install scipy scikit-image"
    ) from None

HERE = Path(__file__).parent
RESULTS = HERE / "results"
BLOB_SIGMAS = (2.5, 5.0, 8.0)  # px: nuclei, cytoplasm, a smoother stain; one per channel
WINDOW = 20  # CellProfiler's default local focus window
TARGET = 3.0  # issue 18: at least 3x the reference's throughput
REFERENCE = "CellProfiler-style reference"


@dataclass
class Case:
    level: int
    tool: str
    workers: int
    images: int
    seconds: float
    images_per_s: float


# Generated fields: the same kind as tests/test_qc_metrics.py's, at screen size.


def _blurred(image: np.ndarray, sigma: float) -> np.ndarray:
    fy = np.fft.fftfreq(image.shape[0])[:, None]
    fx = np.fft.rfftfreq(image.shape[1])[None, :]
    transfer = np.exp(-2 * np.pi**2 * sigma**2 * (fx**2 + fy**2))
    return np.fft.irfft2(np.fft.rfft2(image) * transfer, s=image.shape)


def make_field(seed: int, side: int, sigma: float) -> np.ndarray:
    """A uint16 field: ~1 cell per 1,600 px^2 with peaks of 600-2000 photons over 120, and shot noise."""
    rng = np.random.default_rng(seed)
    points = np.zeros((side, side))
    count = rng.poisson(side * side / 1600)
    peaks = rng.uniform(600, 2000, count) * 2 * np.pi * sigma**2
    np.add.at(points, (rng.integers(0, side, count), rng.integers(0, side, count)), peaks)
    expected = 120 + _blurred(points, sigma)
    noisy = expected + np.sqrt(np.maximum(expected, 0)) * rng.standard_normal(expected.shape)
    return np.clip(np.rint(noisy), 0, 65535).astype(np.uint16)


def downsampled(plane: np.ndarray) -> np.ndarray:
    """The next pyramid level: 2x2 means."""
    h, w = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    return plane[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3), dtype=np.float64).astype(plane.dtype)


# The reference: MeasureImageQuality's code (CellProfiler 4) for the same measures.


def reference_measures(raw: np.ndarray) -> dict[str, float]:
    """Every measure of one image, written as CellProfiler computes it, on CellProfiler's 0..1 image."""
    image = img_as_float(raw)
    return (
        _cp_intensity(image)
        | _cp_saturation(image)
        | _cp_focus(image)
        | {"power_log_log_slope": _cp_slope(image)}
    )


def _cp_intensity(pixels: np.ndarray) -> dict[str, float]:
    p01, p99 = np.percentile(pixels, [1, 99])
    return {
        "minimum": float(np.min(pixels)),
        "maximum": float(np.max(pixels)),
        "mean": float(np.sum(pixels) / float(np.prod(pixels.shape))),
        "median": float(np.median(pixels)),
        "std": float(np.std(pixels)),
        "p01": float(p01),
        "p99": float(p99),
    }


def _cp_saturation(pixels: np.ndarray) -> dict[str, float]:
    count = float(np.prod(pixels.shape))
    return {
        "percent_saturated": 100.0 * float(np.sum(pixels >= 1.0)) / count,
        "percent_maximal": 100.0 * float(np.sum(pixels == np.max(pixels))) / count,
        "percent_minimal": 100.0 * float(np.sum(pixels == np.min(pixels))) / count,
    }


def _cp_focus(pixel_data: np.ndarray, scale: int = WINDOW) -> dict[str, float]:
    shape = pixel_data.shape
    mean_image_value = np.mean(pixel_data)
    squared_normalized_image = (pixel_data - mean_image_value) ** 2
    focus_score = np.sum(squared_normalized_image) / (np.prod(pixel_data.shape) * mean_image_value)
    i, j = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    m, n = (np.array(shape) + scale - 1) // scale
    i = (i * float(m) / float(shape[0])).astype(int)
    j = (j * float(n) / float(shape[1])).astype(int)
    grid = i * n + j + 1
    grid_range = np.arange(0, m * n + 1, dtype=np.int32)
    with np.errstate(invalid="ignore"):  # label 0 is empty; CellProfiler drops its NaN mean the same way
        local_means = np.asarray(scipy.ndimage.mean(pixel_data, grid, grid_range))
    local_squared_normalized_image = (pixel_data - local_means[grid]) ** 2
    grid_mask = (local_means != 0) & ~np.isnan(local_means)
    nz_grid_range = grid_range[grid_mask]
    sums = np.asarray(scipy.ndimage.sum(local_squared_normalized_image, grid, nz_grid_range))
    pixel_counts = np.asarray(scipy.ndimage.sum(np.ones(shape), grid, nz_grid_range))
    local_norm_var = sums / (pixel_counts * local_means[grid_mask])
    local_norm_median = np.median(local_norm_var)
    local_focus_score = 0.0
    if np.isfinite(local_norm_median) and local_norm_median > 0:
        local_focus_score = float(np.var(local_norm_var) / local_norm_median)
    return {"focus_score": float(focus_score), "local_focus_score": local_focus_score}


def _cp_rps(img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # centrosome.radial_power_spectrum.rps
    radii2 = (np.arange(img.shape[0]).reshape((img.shape[0], 1)) ** 2) + (np.arange(img.shape[1]) ** 2)
    radii2 = np.minimum(radii2, np.flipud(radii2))
    radii2 = np.minimum(radii2, np.fliplr(radii2))
    maxwidth = min(img.shape[0], img.shape[1]) / 8.0
    if np.ptp(img) > 0:
        img = img / np.median(abs(img - img.mean()))
    mag = abs(scipy.fftpack.fft2(img - np.mean(img)))
    power = mag**2
    radii = np.floor(np.sqrt(radii2)).astype(int) + 1
    labels = np.arange(2, np.floor(maxwidth)).astype(int).tolist()
    if len(labels) > 0:
        magsum = scipy.ndimage.sum(mag, radii, labels)
        powersum = scipy.ndimage.sum(power, radii, labels)
        return np.array(labels), np.array(magsum), np.array(powersum)
    return np.array([2]), np.array([0]), np.array([0])


def _cp_slope(pixel_data: np.ndarray) -> float:
    radii, magnitude, power = _cp_rps(pixel_data)
    if sum(magnitude) > 0 and len(np.unique(pixel_data)) > 1:
        valid = magnitude > 0
        radii = radii[valid].reshape((-1, 1))
        power = power[valid].reshape((-1, 1))
        if radii.shape[0] > 1:
            idx = np.isfinite(np.log(power))
            design = np.hstack((np.log(radii)[idx][:, np.newaxis], np.ones(radii.shape)[idx][:, np.newaxis]))
            return float(scipy.linalg.lstsq(design, np.log(power)[idx][:, np.newaxis])[0][0][0])
    return 0.0


# Timing.

_BANK: list[np.ndarray] = []  # a worker process's copy of the fields, set by _load


def _load(bank: list[np.ndarray]) -> None:
    _BANK[:] = bank


def _reference_at(index: int) -> dict[str, float]:
    return reference_measures(_BANK[index % len(_BANK)])


def _ours_at(bank: Sequence[np.ndarray], index: int) -> dict[str, float]:
    return measure_plane(bank[index % len(bank)]).values()


def timed(pool: Executor | None, work: Callable[[int], dict[str, float]], images: int) -> float:
    start = time.perf_counter()
    list(map(work, range(images)) if pool is None else pool.map(work, range(images), chunksize=4))
    return time.perf_counter() - start


def measure_level(level: int, bank: list[np.ndarray], args: argparse.Namespace) -> list[Case]:
    """Every tool at one level, ``--repeat`` rounds that interleave the tools; each case is its best round."""
    plate, workers, sample = args.wells * args.fields * args.channels, args.workers, args.reference_images
    _load(bank)
    ours = partial(_ours_at, bank)
    threads = ThreadPoolExecutor(workers)
    processes = ProcessPoolExecutor(
        workers, mp_context=get_context("fork"), initializer=_load, initargs=(bank,)
    )
    runs: list[tuple[str, int, int, Callable[[], float]]] = [
        ("fairimage", workers, plate, partial(timed, threads, ours, plate)),
        ("fairimage", 1, sample, partial(timed, None, ours, sample)),
        (REFERENCE, 1, sample, partial(timed, None, _reference_at, sample)),
        (REFERENCE, workers, sample, partial(timed, processes, _reference_at, sample)),
    ]
    with threads, processes:
        timed(threads, ours, 2 * workers)  # warm-up: FFT plans, ring tables, worker start
        timed(processes, _reference_at, 2 * workers)
        best = [min(run() for _ in range(args.repeat)) for *_, run in runs]
    cases = []
    for (tool, count_workers, images, _), seconds in zip(runs, best, strict=True):
        case = Case(level, tool, count_workers, images, round(seconds, 2), round(images / seconds, 1))
        rate = f"{images:>5} images {case.images_per_s:>8} images/s"
        print(f"  level {level}: {tool:<28} {count_workers} worker(s) {rate}")
        cases.append(case)
    compare(bank[:sample], [_reference_at(index) for index in range(min(sample, len(bank)))])
    return cases


def compare(bank: list[np.ndarray], reference: list[dict[str, float]]) -> None:
    """Largest difference between fairimage and the reference on the images both measured (the reference
    works on the image scaled to 0..1, so intensities and focus scores are compared in those units)."""
    worst: dict[str, float] = {}
    for index, theirs in enumerate(reference):
        plane = bank[index % len(bank)]
        ceiling = float(np.iinfo(plane.dtype).max)
        ours = measure_plane(plane).values()
        for name, value in theirs.items():
            unit = 1.0 if name.startswith("percent") or name == "power_log_log_slope" else ceiling
            difference = abs(ours[name] / unit - value) / max(abs(value), 1e-12)
            worst[name] = max(worst.get(name, 0.0), difference)
    shown = ", ".join(f"{name} {difference:.1e}" for name, difference in worst.items())
    print(f"  largest relative difference from the reference: {shown}")


def print_summary(cases: list[Case]) -> dict[str, float]:
    ratios = {}
    print(f"\n{'level':>5} {'fairimage img/s':>16} {'reference img/s':>16} {'ratio':>6}  workers")
    for level in sorted({c.level for c in cases}):
        for workers in sorted({c.workers for c in cases}):
            ours = next(c for c in cases if (c.level, c.tool, c.workers) == (level, "fairimage", workers))
            theirs = next(
                c
                for c in cases
                if (c.level, c.tool, c.workers) == (level, "CellProfiler-style reference", workers)
            )
            ratio = ours.images_per_s / theirs.images_per_s
            ratios[f"level{level}-workers{workers}"] = round(ratio, 2)
            verdict = "ok" if ratio >= TARGET else f"below {TARGET:g}x"
            figures = f"{ours.images_per_s:>16} {theirs.images_per_s:>16} {ratio:>6.1f}"
            print(f"{level:>5} {figures}  {workers:>7}  {verdict}")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--wells", type=int, default=384)
    parser.add_argument("--fields", type=int, default=4)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--side", type=int, default=1080, help="field side in pixels (default 1080)")
    parser.add_argument("--bank", type=int, default=24, help="distinct fields generated (default 24)")
    parser.add_argument(
        "--reference-images", type=int, default=96, help="images the reference measures (default 96)"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="default: every core")
    parser.add_argument("--repeat", type=int, default=2, help="rounds per tool, the best is kept (default 2)")
    args = parser.parse_args()
    print(f"generating {args.bank} distinct {args.side} x {args.side} uint16 fields ...")
    bank = [make_field(seed, args.side, BLOB_SIGMAS[seed % len(BLOB_SIGMAS)]) for seed in range(args.bank)]
    plate = args.wells * args.fields * args.channels
    print(f"plate: {args.wells} wells x {args.fields} fields x {args.channels} channels = {plate} images")
    cases = measure_level(0, bank, args)
    cases += measure_level(1, [downsampled(plane) for plane in bank], args)
    ratios = print_summary(cases)
    RESULTS.mkdir(exist_ok=True)
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__},
        "plate": {"wells": args.wells, "fields": args.fields, "channels": args.channels, "side": args.side},
        "cases": [asdict(case) for case in cases],
        "ratios": ratios,
    }
    (RESULTS / "qc.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

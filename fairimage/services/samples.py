"""Generated sample images for the demo repository: realistic enough to look at, made from a seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image


def _cells(rng: np.random.Generator, shape: tuple[int, int], count: int, radius: float) -> np.ndarray:
    """Soft round blobs (nuclei-like) on a dark background, values 0..1, each drawn in its own window."""
    height, width = shape
    plane = np.zeros(shape, np.float32)
    for _ in range(count):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        r = radius * rng.uniform(0.6, 1.4)
        reach = int(3 * r) + 1
        y0, y1 = max(0, int(cy) - reach), min(height, int(cy) + reach)
        x0, x1 = max(0, int(cx) - reach), min(width, int(cx) + reach)
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        plane[y0:y1, x0:x1] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    return np.clip(plane, 0, 1)


def _noisy(rng: np.random.Generator, signal: np.ndarray, peak: float, background: float) -> np.ndarray:
    return rng.poisson(background + peak * signal).clip(0, 65535).astype(np.uint16)


def write_samples(folder: Path, seed: int = 7) -> list[Path]:
    """Write the demo's input files into ``folder`` and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []

    # A 3-channel confocal-like z-stack as OME-TIFF with physical sizes and channel names.
    nuclei = _cells(rng, (512, 768), 40, 14)
    membrane = _cells(rng, (512, 768), 60, 22) - 0.6 * nuclei
    spots = _cells(rng, (512, 768), 120, 3)
    stack = np.stack(
        [
            np.stack(
                [_noisy(rng, np.clip(base, 0, 1) * np.exp(-((z - 4) ** 2) / 8), peak, 100) for z in range(9)]
            )
            for base, peak in ((nuclei, 3000), (membrane, 1500), (spots, 5000))
        ]
    )
    path = folder / "hela-confocal.ome.tif"
    tifffile.imwrite(
        path,
        stack,
        ome=True,
        photometric="minisblack",
        metadata={
            "axes": "CZYX",
            "PhysicalSizeX": 0.1025,
            "PhysicalSizeY": 0.1025,
            "PhysicalSizeZ": 0.5,
            "Channel": {"Name": ["DAPI", "WGA-488", "mCherry-spots"]},
        },
    )
    paths.append(path)

    # A time-lapse as an ImageJ hyperstack.
    frames = np.stack([_noisy(rng, np.roll(nuclei[:256, :256], 6 * t, axis=1), 2000, 80) for t in range(6)])
    path = folder / "timelapse.tif"
    tifffile.imwrite(
        path,
        frames[:, None],
        imagej=True,
        resolution=(1 / 0.65, 1 / 0.65),
        metadata={"axes": "TZYX", "unit": "um", "finterval": 30.0},
    )
    paths.append(path)

    # A large single plane, to show a deep pyramid.
    tissue = _cells(rng, (3072, 4096), 1500, 18)
    path = folder / "tissue-section.tif"
    tifffile.imwrite(path, _noisy(rng, tissue, 4000, 200), tile=(512, 512), compression="zlib")
    paths.append(path)

    # A colour picture (PNG) and a camera JPEG.
    rgb = np.stack([_cells(rng, (480, 640), 30, 25) for _ in range(3)], axis=-1)
    path = folder / "brightfield.png"
    Image.fromarray((255 * (1 - 0.7 * rgb)).astype(np.uint8), "RGB").save(path)
    paths.append(path)
    path = folder / "gel-photo.jpg"
    Image.fromarray((255 * rgb[..., ::-1]).astype(np.uint8), "RGB").save(path, quality=92)
    paths.append(path)
    return paths

"""Section-folder ingest: MB/s and peak RSS of `fairimage ingest FOLDER --sections` on a generated folder of
section images (section_00001.tif ..., one uint8 plane per file, as volume EM exports them), checked plane
for plane against the files.

The folder is generated into a temporary directory (never committed): smooth structures that drift from
section to section plus shot noise, so it compresses as real sections do. Peak RSS is the VmHWM of the
ingest's process tree; ingest streams a z-chunk of sections at a time, so it must stay far below the
volume's size (the issue's bound: 512 MiB whatever the number of sections).

    python benchmarks/sections.py                              # 200 sections of 2048 x 2048 uint8, 800 MiB
    python benchmarks/sections.py --sections 1000 --size 4096  # 16 GiB
    python benchmarks/sections.py --format png                 # PNG sections (decoded whole, one at a time)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import zarr
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from convert import FAIRIMAGE, _folder_mib, _measure  # noqa: E402  (the same process-tree measurement)

RESULTS = Path(__file__).parent / "results"
BOUND_MIB = 512


def write_sections(folder: Path, count: int, size: int, kind: str) -> int:
    """``count`` sections of ``size`` x ``size`` uint8 into ``folder``; returns their bytes on disk."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    centres = rng.random((12, 2), dtype=np.float32)
    for z in range(count):
        drift = 0.05 * np.sin(z / 17 + np.arange(12))[:, None].astype(np.float32)
        plane = np.zeros((size, size), np.float32)
        for (cy, cx), shift in zip(centres + drift, drift[:, 0], strict=True):
            plane += np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (0.004 + 0.002 * shift))
        plane = 40 + 180 * plane / max(float(plane.max()), 1e-6) + rng.normal(0, 8, (size, size))
        pixels = np.clip(plane, 0, 255).astype(np.uint8)
        name = folder / f"section_{z + 1:05d}.{kind}"
        if kind == "png":
            Image.fromarray(pixels).save(name, compress_level=1)
        else:
            tifffile.imwrite(name, pixels, resolution=(2.5e6, 2.5e6), resolutionunit="CENTIMETER")
    return sum(path.stat().st_size for path in folder.iterdir())


def check_planes(folder: Path, image: Path, count: int, kind: str) -> bool:
    """A few planes (first, last, some between) stored exactly as their files hold them."""
    level = zarr.open_group(image, mode="r")["0"]
    for z in sorted({0, count // 3, count // 2, count - 1}):
        path = folder / f"section_{z + 1:05d}.{kind}"
        expected = np.asarray(Image.open(path)) if kind == "png" else tifffile.imread(path)
        if not np.array_equal(level[z], expected):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", type=int, default=200)
    parser.add_argument("--size", type=int, default=2048, help="pixels along y and x")
    parser.add_argument("--format", choices=("tif", "png"), default="tif")
    parser.add_argument("--work", type=Path, help="where to generate (default: a temporary folder)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fairimage-sections-", dir=args.work))
    try:
        folder = work / "volume"
        started = time.perf_counter()
        on_disk = write_sections(folder, args.sections, args.size, args.format)
        generated = time.perf_counter() - started
        repo = work / "repo"
        _measure([FAIRIMAGE, "init", str(repo)])
        command = [FAIRIMAGE, "ingest", str(folder), "--sections", "--z-spacing", "30nm", "--repo", str(repo)]
        if args.format == "png":
            command += ["--pixel-size", "4nm"]
        seconds, peak_mib, outcome = _measure([*command, "--json"])
        if outcome.returncode != 0:
            raise SystemExit(f"ingest failed:\n{outcome.stdout}\n{outcome.stderr}")
        [reported] = json.loads(outcome.stdout)
        image = repo / "objects" / "images" / f"{reported['images'][0]}.ome.zarr"
        pixels = args.sections * args.size * args.size
        result = {
            "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
            "sections": args.sections,
            "size": args.size,
            "format": args.format,
            "volume_mib": round(pixels / 2**20, 1),
            "files_mib": round(on_disk / 2**20, 1),
            "generated_s": round(generated, 1),
            "ingest_s": round(seconds, 2),
            "mb_per_s": round(pixels / 1e6 / seconds, 1),
            "peak_rss_mib": round(peak_mib, 1),
            "within_bound": peak_mib <= BOUND_MIB,
            "stored_mib": round(_folder_mib(image), 1),
            "pixels_match": check_planes(folder, image, args.sections, args.format),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sections.json").write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"{args.sections} sections of {args.size} x {args.size} uint8 ({args.format}, "
        f"{result['volume_mib']} MiB): {result['ingest_s']} s, {result['mb_per_s']} MB/s, "
        f"peak RSS {result['peak_rss_mib']} MiB (bound {BOUND_MIB}), stored {result['stored_mib']} MiB, "
        f"pixels match: {result['pixels_match']}"
    )


if __name__ == "__main__":
    main()

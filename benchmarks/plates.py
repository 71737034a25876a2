"""Plate ingest of a vendor folder: files/s, MB/s and peak RSS of `fairimage plate ingest` on a generated
ImageXpress/MetaXpress folder (PLATE_B02_s1_w1.tif, one uint16 plane per file), checked pixel for pixel.

The folder is generated into a temporary directory (never committed): smooth structures plus shot noise,
like fluorescence, so it compresses as real fields do. Peak RSS is the VmHWM of the ingest's process tree.

    python benchmarks/plates.py                                   # 96 wells x 4 fields x 3 channels, 1080 px
    python benchmarks/plates.py --wells 384 --fields 9 --channels 4 --size 2160   # the issue's full plate
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import zarr

sys.path.insert(0, str(Path(__file__).parent))
from convert import FAIRIMAGE, _measure  # noqa: E402  (the same process-tree measurement)

FORMATS = {96: (8, 12), 384: (16, 24), 1536: (32, 48)}


def write_plate(folder: Path, wells: int, fields: int, channels: int, size: int) -> tuple[int, int]:
    """The folder's files and bytes; a few base planes, each file its own noise on one of them."""
    rows, columns = FORMATS[wells]
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    bases = [
        (800 + 600 * np.sin(2 * np.pi * (k + 2) * xx) * np.cos(2 * np.pi * (k + 3) * yy)).clip(0)
        for k in range(4)
    ]
    folder.mkdir(parents=True)
    count = 0
    for row in range(rows):
        for column in range(columns):
            well = f"{chr(65 + row)}{column + 1:02d}"
            for field in range(fields):
                for channel in range(channels):
                    base = bases[(row + column + field + channel) % len(bases)]
                    plane = rng.poisson(base).astype(np.uint16)
                    tifffile.imwrite(folder / f"BENCH_{well}_s{field + 1}_w{channel + 1}.tif", plane)
                    count += 1
    return count, count * size * size * 2


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--wells", type=int, choices=sorted(FORMATS), default=96)
    parser.add_argument("--fields", type=int, default=4)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--size", type=int, default=1080)
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[0, 2],
        help="dask worker processes for each run (0: fields one after another in the CLI's process)",
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="fairimage-bench-plate-", dir=Path.cwd()) as work:
        root = Path(work)
        started = time.perf_counter()
        files, nbytes = write_plate(root / "BENCH", args.wells, args.fields, args.channels, args.size)
        print(f"generated {files} files, {nbytes / 1e9:.2f} GB in {time.perf_counter() - started:.0f} s")
        first = tifffile.imread(root / "BENCH" / "BENCH_A01_s1_w1.tif")
        for workers in args.workers:
            repo = root / "repo"
            subprocess.run([FAIRIMAGE, "init", str(repo)], check=True, capture_output=True)
            command = [FAIRIMAGE, "plate", "ingest", str(root / "BENCH"), "--repo", str(repo), "--json"]
            command += ["--workers", str(workers)] if workers else []
            seconds, peak_mib, done = _measure(command)
            if done.returncode != 0:
                sys.exit(f"plate ingest failed: {done.stderr.strip()[-500:]}")
            (outcome,) = json.loads(done.stdout)
            field = zarr.open_group(
                str(repo / "objects" / "images" / f"{outcome['images'][0]}.ome.zarr"), mode="r"
            )
            rows.append((workers, seconds, peak_mib, np.array_equal(np.asarray(field["0"][0]), first)))
            shutil.rmtree(repo)
    planes = f"{args.size}x{args.size} uint16"
    plate = f"{args.wells} wells x {args.fields} fields x {args.channels} channels of {planes}"
    print(f"\nplate ingest on {platform.node()} ({platform.processor() or platform.machine()}): {plate}")
    print(
        f"{'workers':>8} {'files':>8} {'GB':>7} {'seconds':>8} {'files/s':>8} {'MB/s':>7} "
        f"{'peak RSS MiB':>13}  pixels"
    )
    for workers, seconds, peak_mib, same in rows:
        rate = f"{files / seconds:>8.1f} {nbytes / 1e6 / seconds:>7.1f}"
        verdict = "identical" if same else "DIFFER"
        print(
            f"{workers or 'here':>8} {files:>8} {nbytes / 1e9:>7.2f} {seconds:>8.1f} {rate} "
            f"{peak_mib:>13.0f}  {verdict}"
        )
    if not all(same for *_, same in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()

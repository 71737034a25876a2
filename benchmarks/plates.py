"""Plate ingest of a vendor folder: files/s, MB/s and peak RSS of `fairimage plate ingest` on a generated
ImageXpress/MetaXpress folder (PLATE_B02_s1_w1.tif, one uint16 plane per file), checked pixel for pixel,
against ome-zarr-py writing the same plate in the same run (its write_plate_metadata, write_well_metadata and
write_image, a field at a time, with fairimage's chunks, levels and Blosc zstd-5: the same output, less the
checksums, verification and atomic publish that fairimage adds).

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
from convert import CODEC, FAIRIMAGE, _measure  # noqa: E402  (the same process-tree measurement)

FORMATS = {96: (8, 12), 384: (16, 24), 1536: (32, 48)}


def write_plate(
    folder: Path, wells: int, fields: int, channels: int, size: int, linked: int = 0
) -> tuple[int, int]:
    """The folder's files and bytes; a few base planes, each file its own noise on one of them. With
    ``linked``, only that many distinct planes are written, smooth (no noise), and every file is a hard link
    to one of them: the issue's full plate (129 GB of pixels) then fits a disk of tens of GB, in and out,
    which measures memory and per-file cost, not how real noise compresses."""
    rows, columns = FORMATS[wells]
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    bases = [
        (800 + 600 * np.sin(2 * np.pi * (k + 2) * xx) * np.cos(2 * np.pi * (k + 3) * yy)).clip(0)
        for k in range(4)
    ]
    folder.mkdir(parents=True)
    distinct: list[Path] = []
    if linked:
        for index in range(linked):
            distinct.append(folder.parent / f"distinct-{index}.tif")
            plane = (bases[index % len(bases)] + 10 * index).astype(np.uint16)
            tifffile.imwrite(distinct[-1], plane)
    count = 0
    for row in range(rows):
        for column in range(columns):
            well = well_name(row, column)
            for field in range(fields):
                for channel in range(channels):
                    path = folder / f"BENCH_{well}_s{field + 1}_w{channel + 1}.tif"
                    if linked:
                        path.hardlink_to(distinct[count % linked])
                    else:
                        base = bases[(row + column + field + channel) % len(bases)]
                        tifffile.imwrite(path, rng.poisson(base).astype(np.uint16))
                    count += 1
    return count, count * size * size * 2


def well_name(row: int, column: int) -> str:
    return f"{chr(65 + row)}{column + 1:02d}"


def peer_ome_zarr_py(folder: Path, output: Path, wells: int, fields: int, channels: int, size: int) -> None:
    """ome-zarr-py writes the plate: fields one after another, as its documentation shows."""
    from ome_zarr.format import FormatV05
    from ome_zarr.scale import Methods
    from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata
    from zarr.codecs import BloscCodec

    from fairimage.model.image import choose_chunks, pyramid_shapes

    rows, columns = FORMATS[wells]
    shape = (channels, size, size)
    chunks = choose_chunks(shape, "cyx", 2)
    levels = len(pyramid_shapes(shape, "cyx", chunks))
    fmt = FormatV05()
    root = zarr.open_group(str(output), mode="w", zarr_format=3)
    row_names, column_names = [chr(65 + r) for r in range(rows)], [str(c + 1) for c in range(columns)]
    paths = [f"{r}/{c}" for r in row_names for c in column_names]
    write_plate_metadata(root, row_names, column_names, paths, fmt=fmt, name="BENCH")
    for row in range(rows):
        for column in range(columns):
            well = root.require_group(f"{row_names[row]}/{column_names[column]}")
            write_well_metadata(well, [{"path": str(f)} for f in range(fields)], fmt=fmt)
            for field in range(fields):
                pixels = np.stack(
                    [
                        tifffile.imread(folder / f"BENCH_{well_name(row, column)}_s{field + 1}_w{c + 1}.tif")
                        for c in range(channels)
                    ]
                )
                write_image(
                    pixels,
                    well.require_group(str(field)),
                    axes="cyx",
                    fmt=fmt,
                    scale_factors=[2**level for level in range(1, levels)],
                    method=Methods.LOCAL_MEAN,
                    storage_options={"chunks": chunks, "compressor": [BloscCodec(typesize=2, **CODEC)]},
                )


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
    parser.add_argument("--no-peer", action="store_true", help="skip the ome-zarr-py run")
    parser.add_argument(
        "--linked",
        type=int,
        default=0,
        help="write only N distinct smooth planes and hard-link every file to one (for plates larger than "
        "the disk: memory and per-file cost, not compression)",
    )
    parser.add_argument("--peer-child", nargs=2, metavar=("FOLDER", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer_child:
        folder, output = map(Path, args.peer_child)
        peer_ome_zarr_py(folder, output, args.wells, args.fields, args.channels, args.size)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="fairimage-bench-plate-", dir=Path.cwd()) as work:
        root = Path(work)
        started = time.perf_counter()
        files, nbytes = write_plate(
            root / "BENCH", args.wells, args.fields, args.channels, args.size, args.linked
        )
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
            same = np.array_equal(np.asarray(field["0"][0]), first)
            rows.append(("fairimage", "here" if not workers else f"{workers} dask", seconds, peak_mib, same))
            shutil.rmtree(repo)
        if not args.no_peer:
            output = root / "peer.ome.zarr"
            shape = ["--wells", str(args.wells), "--fields", str(args.fields)]
            shape += ["--channels", str(args.channels), "--size", str(args.size)]
            command = [sys.executable, __file__, *shape, "--peer-child", str(root / "BENCH"), str(output)]
            seconds, peak_mib, done = _measure(command)
            if done.returncode != 0:
                sys.exit(f"ome-zarr-py failed: {done.stderr.strip()[-500:]}")
            field_group = zarr.open_group(str(output / "A" / "1" / "0"), mode="r")
            level_0 = field_group.attrs["ome"]["multiscales"][0]["datasets"][0]["path"]
            same = np.array_equal(np.asarray(field_group[level_0][0]), first)
            rows.append(("ome-zarr-py", "here", seconds, peak_mib, same))
    planes = f"{args.size}x{args.size} uint16"
    plate = f"{args.wells} wells x {args.fields} fields x {args.channels} channels of {planes}"
    print(f"\nplate ingest on {platform.node()} ({platform.processor() or platform.machine()}): {plate}")
    print(
        f"{'tool':>12} {'where':>8} {'files':>8} {'GB':>7} {'seconds':>8} {'files/s':>8} {'MB/s':>7} "
        f"{'peak RSS MiB':>13}  pixels"
    )
    for tool, where, seconds, peak_mib, same in rows:
        rate = f"{files / seconds:>8.1f} {nbytes / 1e6 / seconds:>7.1f}"
        verdict = "identical" if same else "DIFFER"
        print(
            f"{tool:>12} {where:>8} {files:>8} {nbytes / 1e9:>7.2f} {seconds:>8.1f} {rate} "
            f"{peak_mib:>13.0f}  {verdict}"
        )
    peers = [seconds for tool, _, seconds, *_ in rows if tool != "fairimage"]
    here = [seconds for tool, where, seconds, *_ in rows if tool == "fairimage" and where == "here"]
    if peers and here:
        print(f"\nfairimage here is {min(peers) / here[0]:.2f}x ome-zarr-py's speed")
    if not all(row[-1] for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Register in place: seconds for `fairimage register` of an OME-Zarr 0.5 plate of about 100,000 files, beside
what copying the same plate takes (`cp -r`, the least any import that copies must do) and ome-zarr-py's
walk of the same plate's metadata (its Reader, as napari's plugin opens a plate), in the same run.

The plate is written into a temporary directory (never committed) the way zarr-python lays it out: 384 wells x
6 fields, each field a 2-channel image of two levels (256 x 256 in 64 x 64 chunks, then 128 x 128), zstd-
compressed constant chunks so the files are small and the disk is not what is timed. One field is read back
with zarr-python to check the layout. Then `fairimage register` is timed, and with `--verify` the chunk
checksum pass (`fairimage verify-registered PLATE`) too.

    python benchmarks/register.py                       # 384 x 6 fields: ~100,000 files
    python benchmarks/register.py --wells 96 --fields 2 # quicker
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

sys.path.insert(0, str(Path(__file__).parent))
from convert import FAIRIMAGE  # noqa: E402

FORMATS = {96: (8, 12), 384: (16, 24), 1536: (32, 48)}
ROWS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SIDE, CHUNK, CHANNELS = 256, 64, 2


def _row_name(index: int) -> str:
    return ROWS[index] if index < 26 else "A" + ROWS[index - 26]


def _array_document(shape: list[int]) -> dict[str, object]:
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": shape,
        "data_type": "uint16",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1, CHUNK, CHUNK]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [
            {"name": "bytes", "configuration": {"endian": "little"}},
            {"name": "zstd", "configuration": {"level": 3, "checksum": False}},
        ],
        "attributes": {},
        "dimension_names": ["c", "y", "x"],
    }


def _group_document(ome: dict[str, object] | None = None) -> bytes:
    attributes = {"ome": {"version": "0.5", **ome}} if ome else {}
    return json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attributes}).encode()


def write_plate(root: Path, wells: int, fields: int, shaded: bool = False) -> int:
    """An OME-Zarr 0.5 plate; the number of files written. Every pixel is 100, or with ``shaded`` each well
    has its own constant, from 0 in the first well to 100 in the last, so their thumbnails differ."""
    import numcodecs

    def constant_chunk(value: int) -> bytes:
        return numcodecs.Zstd(level=3).encode(np.full((1, CHUNK, CHUNK), value, dtype="<u2").tobytes())

    rows, columns = FORMATS[wells]
    chunk = constant_chunk(100)
    image_ome = {
        "multiscales": [
            {
                "axes": [
                    {"name": "c", "type": "channel"},
                    {"name": "y", "type": "space", "unit": "micrometer"},
                    {"name": "x", "type": "space", "unit": "micrometer"},
                ],
                "datasets": [
                    {"path": str(level), "coordinateTransformations": [{"type": "scale", "scale": [1, s, s]}]}
                    for level, s in ((0, 0.65), (1, 1.3))
                ],
            }
        ],
        "omero": {
            "channels": [
                {
                    "label": f"ch{c}",
                    "color": "FFFFFF",
                    "window": {"start": 0, "end": 200, "min": 0, "max": 200},
                }
                for c in range(CHANNELS)
            ]
        },
    }
    well_paths = [f"{_row_name(r)}/{c + 1}" for r in range(rows) for c in range(columns)]
    plate_ome = {
        "plate": {
            "name": "register benchmark",
            "rows": [{"name": _row_name(r)} for r in range(rows)],
            "columns": [{"name": str(c + 1)} for c in range(columns)],
            "wells": [
                {"path": path, "rowIndex": index // columns, "columnIndex": index % columns}
                for index, path in enumerate(well_paths)
            ],
            "field_count": fields,
            "acquisitions": [{"id": 0, "name": "benchmark"}],
        }
    }
    files = 0

    def put(path: Path, body: bytes) -> None:
        nonlocal files
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        files += 1

    put(root / "zarr.json", _group_document(plate_ome))
    for r in range(rows):
        put(root / _row_name(r) / "zarr.json", _group_document())
    well_document = _group_document(
        {"well": {"images": [{"path": str(f), "acquisition": 0} for f in range(fields)]}}
    )
    image_document = _group_document(image_ome)
    for index, path in enumerate(well_paths):
        if shaded:
            chunk = constant_chunk(100 * index // max(1, len(well_paths) - 1))
        put(root / path / "zarr.json", well_document)
        for field in range(fields):
            image = root / path / str(field)
            put(image / "zarr.json", image_document)
            for level, side in ((0, SIDE), (1, SIDE // 2)):
                put(
                    image / str(level) / "zarr.json",
                    json.dumps(_array_document([CHANNELS, side, side])).encode(),
                )
                for c in range(CHANNELS):
                    for y in range(side // CHUNK):
                        for x in range(side // CHUNK):
                            put(image / str(level) / "c" / str(c) / str(y) / str(x), chunk)
    return files


def _timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command[:2])} failed:\n{result.stderr[-2000:]}")
    return elapsed, result


def _ome_zarr_walk(plate: Path) -> float:
    """ome-zarr-py's Reader over the plate, as napari-ome-zarr opens one: every node it yields."""
    code = (
        "import sys; from ome_zarr.io import parse_url; from ome_zarr.reader import Reader;"
        "nodes = list(Reader(parse_url(sys.argv[1]))()); print(len(nodes))"
    )
    elapsed, _ = _timed([sys.executable, "-c", code, str(plate)])
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--wells", type=int, default=384, choices=sorted(FORMATS))
    parser.add_argument("--fields", type=int, default=6)
    parser.add_argument("--verify", action="store_true", help="also time checksumming every chunk")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fairimage-register-") as work:
        plate = Path(work) / "plate.ome.zarr"
        started = time.perf_counter()
        files = write_plate(plate, args.wells, args.fields)
        print(f"wrote {files:,} files in {time.perf_counter() - started:.1f} s", flush=True)
        first = zarr.open_group(str(plate / "A" / "1" / "0"), mode="r")["0"]
        assert int(np.asarray(first[0, :CHUNK, :CHUNK]).mean()) == 100, (
            "the generated plate does not read back"
        )
        repo = Path(work) / "repo"
        subprocess.run([FAIRIMAGE, "init", str(repo)], check=True, capture_output=True)
        register_s, result = _timed([FAIRIMAGE, "register", str(plate), "--repo", str(repo), "--json"])
        (outcome,) = json.loads(result.stdout)
        copy_s, _ = _timed(["cp", "-r", str(plate), str(Path(work) / "copied")])
        walk_s = _ome_zarr_walk(plate)
        figures = {
            "machine": f"{platform.machine()}, {platform.python_version()}",
            "files": files,
            "fields": outcome["fields"],
            "metadata_documents": outcome["documents"],
            "register_s": round(register_s, 2),
            "cp_r_s": round(copy_s, 2),
            "ome_zarr_py_reader_s": round(walk_s, 2),
        }
        if args.verify:
            verify_s, _ = _timed([FAIRIMAGE, "verify-registered", outcome["plate_id"], "--repo", str(repo)])
            figures["verify_s"] = round(verify_s, 2)
    print(json.dumps(figures, indent=1))
    print(
        f"register: {register_s:.1f} s for {files:,} files ({files / register_s:,.0f} files/s); "
        f"cp -r of the same plate {copy_s:.1f} s ({copy_s / register_s:.1f}x register's time); "
        f"ome-zarr-py's Reader {walk_s:.1f} s"
    )


if __name__ == "__main__":
    main()

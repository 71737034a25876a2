"""Rendered tile latency: 256x256 and 512x512 tiles of a 3-channel uint16 image at several pyramid levels,
cold (never rendered before) and warm (rendered before, served from the renderer's cache), over real HTTP.

The input (never committed; cached in benchmarks/results/inputs) is a 3 x 8192 x 8192 uint16 OME-TIFF of
blobs plus shot noise, ingested by the real CLI with its default settings (Blosc zstd-5, 512x1024 chunks).
`fairimage serve` runs in its own process; a client on the same machine asks for IIIF tiles
(``/iiif/3/{id}/{x},{y},{w},{h}/{size},/0/default.jpg``, what OpenSeadragon and Mirador ask for) and for
``/render`` PNGs, one request at a time for latency, then with 4 clients at once for throughput.

For scale, the same tiles are also made in this process with zarr-python + NumPy + Pillow and no HTTP and no
cache (the floor of any Python tile server on this storage): the ratio says what the server adds.

Target (issue 5): p95 <= 30 ms warm and <= 100 ms cold on this 2-core machine.

    python benchmarks/tiles.py                # about 2 minutes
    python benchmarks/tiles.py --tiles 40     # fewer tiles per case
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np
import tifffile
import zarr
from PIL import Image

HERE = Path(__file__).parent
RESULTS = HERE / "results"
FAIRIMAGE = str(Path(sys.executable).with_name("fairimage"))
SIDE = 8192
CHANNELS = 3
LEVELS = (0, 2, 4)
SIZES = (256, 512)
TARGET_WARM_MS = 30.0
TARGET_COLD_MS = 100.0


@dataclass
class Case:
    kind: str  # iiif-jpeg or render-png
    size: int
    level: int
    state: str  # cold or warm
    p50_ms: float
    p95_ms: float
    tiles_per_s: float
    count: int


def make_input(path: Path, seed: int = 11) -> Path:
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) / SIDE
    channels = []
    for channel in range(CHANNELS):
        phase = rng.uniform(0, 6.28, 2)
        smooth = (np.sin(40 * xx + phase[0]) * np.cos(37 * yy + phase[1]) + 1) * (800 + 400 * channel)
        channels.append(rng.poisson(smooth + 100).astype(np.uint16))
    tifffile.imwrite(path, np.stack(channels), ome=True, photometric="minisblack", metadata={"axes": "CYX"})
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tile_regions(size: int, level: int, count: int, seed: int) -> list[tuple[int, int, int, int]]:
    """``count`` distinct tile-aligned regions (level-0 pixels) of a ``size`` tile at ``level``."""
    span = size * 2**level
    per_side = SIDE // span
    cells = [(x, y) for x in range(per_side) for y in range(per_side)]
    random.Random(seed).shuffle(cells)
    return [(x * span, y * span, span, span) for x, y in cells[:count]]


def _url(kind: str, image: str, region: tuple[int, int, int, int], size: int) -> str:
    x, y, w, h = region
    if kind == "iiif-jpeg":
        return f"/iiif/3/{image}/{x},{y},{w},{h}/{size},/0/default.jpg"
    level = {size: 0, size * 4: 2, size * 16: 4}[w]
    return f"/api/images/{image}/render?region={x},{y},{w},{h}&level={level}&format=png"


def _timed(client: httpx.Client, path: str) -> float:
    start = time.perf_counter()
    response = client.get(path)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"{path}: HTTP {response.status_code} {response.text[:200]}")
    return elapsed


def _summary(kind: str, size: int, level: int, state: str, seconds: list[float]) -> Case:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return Case(
        kind,
        size,
        level,
        state,
        round(statistics.median(ordered) * 1000, 1),
        round(p95 * 1000, 1),
        round(len(ordered) / sum(ordered), 1),
        len(ordered),
    )


def measure_server(base: str, image: str, count: int) -> list[Case]:
    cases = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for kind in ("iiif-jpeg", "render-png"):
            for size in SIZES:
                for level in LEVELS:
                    regions = _tile_regions(size, level, count, seed=size * 10 + level + len(kind))
                    paths = [_url(kind, image, region, size) for region in regions]
                    cold = [_timed(client, path) for path in paths]
                    warm = [_timed(client, path) for path in paths]
                    cases.append(_summary(kind, size, level, "cold", cold))
                    cases.append(_summary(kind, size, level, "warm", warm))
    return cases


def measure_concurrent(base: str, image: str, count: int, clients: int = 4) -> dict[str, float]:
    """Tiles per second with several clients at once (256 px IIIF, level 0, cold then warm)."""
    regions = _tile_regions(256, 0, count * clients, seed=99)
    paths = [_url("iiif-jpeg", image, region, 256) for region in regions]
    result = {}
    with httpx.Client(base_url=base, timeout=60, limits=httpx.Limits(max_connections=clients)) as client:
        for state in ("cold", "warm"):
            start = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(lambda path: _timed(client, path), paths))
            result[state] = round(len(paths) / (time.perf_counter() - start), 1)
    return result


def measure_floor(repo: Path, image: str, count: int) -> list[Case]:
    """The same 256/512 tiles made in-process: zarr-python read, compose, resize, JPEG; no HTTP, no cache."""
    cases = []
    root = repo / "objects" / "images" / f"{image}.ome.zarr"
    for size in SIZES:
        for level in LEVELS:
            array = zarr.open_array(str(root / str(level)), mode="r")
            times = []
            for x, y, w, h in _tile_regions(size, level, count, seed=size * 10 + level + 1000):
                start = time.perf_counter()
                f = 2**level
                block = np.asarray(array[:, y // f : (y + h) // f, x // f : (x + w) // f], np.float32)
                rgb = np.clip(block[:3].transpose(1, 2, 0) / 3000.0, 0, 1)
                picture = Image.fromarray((rgb * 255).astype(np.uint8), "RGB")
                buffer = io.BytesIO()
                picture.save(buffer, "JPEG", quality=90)
                times.append(time.perf_counter() - start)
            cases.append(_summary("in-process floor", size, level, "cold", times))
    return cases


def print_table(cases: list[Case], floor: list[Case], concurrent: dict[str, float]) -> None:
    floors = {(c.size, c.level): c.p50_ms for c in floor}
    print(
        f"\n{'request':<12} {'tile':>5} {'level':>5} {'state':<5} {'p50 ms':>7} {'p95 ms':>7} {'tiles/s':>8}"
        f" {'target':>7} {'p50 / floor':>11} {'n':>4}"
    )
    for case in cases:
        target = TARGET_WARM_MS if case.state == "warm" else TARGET_COLD_MS
        verdict = "ok" if case.p95_ms <= target else "MISSED"
        ratio = case.p50_ms / floors[(case.size, case.level)] if case.state == "cold" else float("nan")
        row = f"{case.kind:<12} {case.size:>5} {case.level:>5} {case.state:<5}"
        figures = f"{case.p50_ms:>7} {case.p95_ms:>7} {case.tiles_per_s:>8}"
        print(f"{row} {figures} {verdict:>7} {ratio:>11.2f} {case.count:>4}")
    for case in floor:
        print(
            f"{'floor':<12} {case.size:>5} {case.level:>5} {'-':<5} {case.p50_ms:>7} {case.p95_ms:>7}"
            f" {case.tiles_per_s:>8}"
        )
    print(
        f"\n4 clients at once, 256 px IIIF tiles at level 0: {concurrent['cold']} tiles/s cold, "
        f"{concurrent['warm']} tiles/s warm"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiles", type=int, default=60, help="distinct tiles per case (default 60)")
    args = parser.parse_args()
    source = make_input(RESULTS / "inputs" / f"tiles-{CHANNELS}x{SIDE}.ome.tif")
    with tempfile.TemporaryDirectory(dir=RESULTS) as work:
        repo = Path(work) / "repo"
        subprocess.run([FAIRIMAGE, "init", str(repo)], check=True, capture_output=True)
        ingest = subprocess.run(
            [FAIRIMAGE, "ingest", "--repo", str(repo), "--study", "bench", "--json", str(source)],
            check=True,
            capture_output=True,
            text=True,
        )
        image = json.loads(ingest.stdout)[0]["images"][0]
        port = _free_port()
        server = subprocess.Popen(
            [FAIRIMAGE, "serve", "--repo", str(repo), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(base + "/api/studies", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise SystemExit("the server did not start") from None
                    time.sleep(0.2)
            cases = measure_server(base, image, args.tiles)
            concurrent = measure_concurrent(base, image, args.tiles)
        finally:
            server.terminate()
            server.wait(timeout=10)
        floor = measure_floor(repo, image, args.tiles)
    print_table(cases, floor, concurrent)
    RESULTS.mkdir(exist_ok=True)
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "image": {"channels": CHANNELS, "side": SIDE, "dtype": "uint16"},
        "cases": [asdict(case) for case in cases],
        "floor": [asdict(case) for case in floor],
        "concurrent_tiles_per_s": concurrent,
    }
    (RESULTS / "tiles.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

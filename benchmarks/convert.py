"""TIFF to OME-Zarr conversion: fairimage against ome-zarr-py and ngff-zarr, in the same run, on this machine.

Generates its inputs (never committed; cached in benchmarks/results/inputs): a 1 GiB 4D uint16 stack
(2 channels x 64 z x 2048 x 2048, OME-TIFF) and a 512 MiB single uint16 plane (16384 x 16384), converted by
every tool; a 4 GiB stack (32 x 8192 x 8192) and a 768 MiB plane as wide as a slide scan (4096 x 98304), for
fairimage's memory checks. Content is smooth structures plus shot noise, like a fluorescence image:
compressible, but neither random bytes nor zeros.

Each conversion runs in its own process, as its users run it: fairimage through its CLI (`fairimage ingest`,
which also hashes the input, writes a manifest and records the image in the catalog), the peers through their
Python APIs on a dask array from tifffile's zarr store. Peers run twice: with the same codec, chunks and
pyramid as fairimage (Blosc zstd-5 + shuffle, fairimage's chunk shape, 2x mean downsampling to one chunk), and
with their own defaults. Peak RSS is the VmHWM of the process tree, read from /proc while it runs.

The machine's ceiling is measured in the same run: the disk's write rate with fsync, and the Blosc zstd-5
encode rate of one core on chunks of the input, times the cores. fairimage's throughput is printed as a share
of min(disk, codec x cores).

    python benchmarks/convert.py                  # everything (about 15 minutes on 2 cores)
    python benchmarks/convert.py --inputs stack   # one input; --no-peers for fairimage alone
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import psutil
import tifffile

HERE = Path(__file__).parent
RESULTS = HERE / "results"
FAIRIMAGE = str(Path(sys.executable).with_name("fairimage"))
CODEC = {"cname": "zstd", "clevel": 5, "shuffle": "shuffle"}


@dataclass(frozen=True)
class Input:
    name: str
    axes: str  # NGFF order, as the file's series stores it
    shape: tuple[int, ...]
    peers: bool  # big and wide are fairimage's memory checks; peers are not run on them

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * 2

    @property
    def path(self) -> Path:
        return RESULTS / "inputs" / f"{self.name}.tif"


INPUTS = {
    "stack": Input("stack", "czyx", (2, 64, 2048, 2048), peers=True),
    "plane": Input("plane", "yx", (16384, 16384), peers=True),
    "big": Input("big", "zyx", (32, 8192, 8192), peers=False),
    "wide": Input("wide", "yx", (4096, 98304), peers=False),
}


@dataclass
class Run:
    input: str
    tool: str
    mode: str
    seconds: float
    mb_per_s: float
    peak_rss_mib: float
    output_mib: float
    ok: bool
    note: str = ""


# Inputs ---------------------------------------------------------------------------------------------------


def _planes(spec: Input, seed: int = 7) -> Iterator[np.ndarray]:
    """Planes of smooth blobs and gradients with shot noise (normal approximation of Poisson, mean >= 200)."""
    rng = np.random.default_rng(seed)
    height, width = spec.shape[-2:]
    count = math.prod(spec.shape[:-2])
    yy = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    xx = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    centres = rng.uniform(0, 1, size=(12, 2)).astype(np.float32)
    for index in range(count):
        phase = np.float32(index / max(count, 1))
        signal = 200 + 300 * xx + 200 * yy
        for cy, cx in centres:
            # Separable Gaussian blobs: cheap for large planes, smooth like cells or nuclei.
            gy = np.exp(-(((yy - cy - 0.1 * phase) / 0.05) ** 2))
            gx = np.exp(-(((xx - cx) / 0.05) ** 2))
            signal = signal + 3000 * gy * gx
        noise = rng.standard_normal(signal.shape, dtype=np.float32) * np.sqrt(signal)
        yield np.clip(signal + noise, 0, 65535).astype(np.uint16)


def make_input(spec: Input) -> Path:
    if spec.path.exists() and spec.path.stat().st_size >= spec.nbytes:
        return spec.path
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    partial = spec.path.with_suffix(".partial")
    print(f"generating {spec.path.name}: {spec.shape} uint16, {spec.nbytes / 2**30:.2f} GiB", flush=True)
    tifffile.imwrite(
        partial,
        _planes(spec),
        shape=spec.shape,
        dtype=np.uint16,
        photometric="minisblack",
        bigtiff=spec.nbytes >= 2**32 - 2**25,
        ome=True,
        metadata={"axes": spec.axes.upper()},
    )
    partial.replace(spec.path)
    return spec.path


# Tools (each runs in a child process: `convert.py --child TOOL MODE INPUT OUTPUT`) -------------------------


def _fairimage_chunks(spec: Input) -> tuple[int, ...]:
    from fairimage.model.image import choose_chunks

    return choose_chunks(spec.shape, spec.axes, 2)


def _level_count(spec: Input) -> int:
    from fairimage.model.image import pyramid_shapes

    return len(pyramid_shapes(spec.shape, spec.axes, _fairimage_chunks(spec)))


def _dask_source(spec: Input):
    import dask.array as da
    import zarr

    store = tifffile.imread(spec.path, aszarr=True)
    return da.from_zarr(zarr.open_array(store, mode="r", zarr_format=2)), store


def _blosc():
    from zarr.codecs import BloscCodec

    return BloscCodec(typesize=2, **CODEC)


def child_ome_zarr_py(spec: Input, mode: str, output: Path) -> None:
    import zarr
    from ome_zarr.format import FormatV05
    from ome_zarr.scale import Methods
    from ome_zarr.writer import write_image

    array, store = _dask_source(spec)
    root = zarr.open_group(str(output), mode="w", zarr_format=3)
    if mode == "same":
        chunks = _fairimage_chunks(spec)
        write_image(
            array.rechunk(chunks),
            root,
            axes=spec.axes,
            fmt=FormatV05(),
            scale_factors=[2**level for level in range(1, _level_count(spec))],
            method=Methods.LOCAL_MEAN,
            storage_options={"chunks": chunks, "compressor": [_blosc()]},
        )
    else:
        write_image(array, root, axes=spec.axes, fmt=FormatV05())
    store.close()


def child_ngff_zarr(spec: Input, mode: str, output: Path) -> None:
    import ngff_zarr

    array, store = _dask_source(spec)
    image = ngff_zarr.to_ngff_image(array, dims=list(spec.axes))
    if mode == "same":
        chunks = _fairimage_chunks(spec)
        multiscales = ngff_zarr.to_multiscales(
            image,  # y and x only, as fairimage and ome-zarr-py do (an int would also halve z)
            scale_factors=[
                {"z": 1, "y": 2**level, "x": 2**level} if "z" in spec.axes else {"y": 2**level, "x": 2**level}
                for level in range(1, _level_count(spec))
            ],
            method=ngff_zarr.Methods.DASK_BIN_SHRINK,
            chunks=dict(zip(spec.axes, chunks, strict=True)),
        )
        ngff_zarr.to_ngff_zarr(str(output), multiscales, version="0.5", compressors=[_blosc()])
    else:
        multiscales = ngff_zarr.to_multiscales(image)
        ngff_zarr.to_ngff_zarr(str(output), multiscales, version="0.5")
    store.close()


CHILDREN = {"ome-zarr-py": child_ome_zarr_py, "ngff-zarr": child_ngff_zarr}


# Measuring ------------------------------------------------------------------------------------------------


def _tree_high_water_kib(pid: int) -> int:
    """Sum of VmHWM over a process and its descendants (each one's peak resident set since exec).

    Not getrusage: ru_maxrss of a child keeps the RSS inherited at fork, before exec, and this script may
    hold a lot by then.
    """
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return total


def _measure(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Seconds, peak RSS (MiB) and the outcome of ``command``. Its output goes to temporary files, not
    pipes: a child writing more than a pipe holds (a plate's JSON) would otherwise wait for us forever."""
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, text=True)
        peak = 0
        while process.poll() is None:
            peak = max(peak, _tree_high_water_kib(process.pid))
            time.sleep(0.1)  # VmHWM is a high-water mark: polling only has to see each process once
        seconds = time.perf_counter() - started
        stdout.seek(0)
        stderr.seek(0)
        done = subprocess.CompletedProcess(command, process.returncode, stdout.read(), stderr.read())
    return seconds, peak / 1024, done


def _folder_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def run_fairimage(spec: Input, work: Path, shard_chunks: int = 0, codec: str = "") -> Run:
    repo = work / "fairimage-repo"
    init = [FAIRIMAGE, "init", str(repo), "--shard-chunks", str(shard_chunks)]
    subprocess.run(init, check=True, capture_output=True)
    command = [FAIRIMAGE, "ingest", "--repo", str(repo), str(spec.path), "--json"]
    if codec:
        command += ["--codec", codec]
    seconds, peak, done = _measure(command)
    ok = done.returncode == 0
    note = "" if ok else done.stderr.strip()[-300:]
    if ok:
        image_id = json.loads(done.stdout)[0]["images"][0]
        same = _level_0_matches(spec, repo / "objects" / "images" / f"{image_id}.ome.zarr")
        note = "level 0 pixel-identical" if same else "LEVEL 0 DIFFERS FROM THE INPUT"
        ok = same
    output = _folder_mib(repo / "objects")
    shutil.rmtree(repo)
    mode = (
        f"shards {shard_chunks}x{shard_chunks}" if shard_chunks else f"--codec {codec}" if codec else "same"
    )
    return _run(spec, "fairimage", mode, seconds, peak, output, ok, note)


def run_peer(spec: Input, tool: str, mode: str, work: Path) -> Run:
    output = work / f"{tool}-{mode}.ome.zarr"
    command = [sys.executable, __file__, "--child", tool, mode, spec.name, str(output)]
    seconds, peak, done = _measure(command)
    ok = done.returncode == 0
    note = "" if ok else (done.stderr.strip().splitlines() or ["failed"])[-1][:200]
    size = _folder_mib(output) if output.exists() else 0.0
    shutil.rmtree(output, ignore_errors=True)
    return _run(spec, tool, mode, seconds, peak, size, ok, note)


def _run(
    spec: Input, tool: str, mode: str, seconds: float, peak: float, output: float, ok: bool, note: str
) -> Run:
    return Run(
        input=spec.name,
        tool=tool,
        mode=mode,
        seconds=round(seconds, 2),
        mb_per_s=round(spec.nbytes / 1e6 / seconds, 1),
        peak_rss_mib=round(peak),
        output_mib=round(output),
        ok=ok,
        note=note,
    )


def _level_0_matches(spec: Input, image: Path) -> bool:
    """Compare the stored level 0 with the input, plane by plane (memory-mapped input)."""
    import zarr

    level = zarr.open_array(str(image / "0"), mode="r")
    expected = tifffile.memmap(spec.path)
    if tuple(level.shape) != tuple(expected.shape):
        return False
    flat_level = level[...] if level.ndim == 2 else None
    if flat_level is not None:
        return bool(np.array_equal(flat_level, expected))
    return all(np.array_equal(level[lead], expected[lead]) for lead in np.ndindex(*expected.shape[:-2]))


def measure_ceiling(spec: Input, work: Path) -> dict[str, float]:
    """Disk write rate with fsync, and Blosc zstd-5 encode rate per core (and of all cores together)."""
    from numcodecs import Blosc

    block = os.urandom(4 << 20)
    target = work / "disk-probe"
    started = time.perf_counter()
    with target.open("wb") as f:
        for _ in range(256):  # 1 GiB
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    disk = 256 * len(block) / 1e6 / (time.perf_counter() - started)
    target.unlink()

    chunks_shape = _fairimage_chunks(spec)
    pixels = tifffile.memmap(spec.path)
    sample = np.asarray(pixels.reshape(-1, *pixels.shape[-2:])[:4]).reshape(-1, pixels.shape[-1])
    rows, width = chunks_shape[-2], chunks_shape[-1]
    chunks = [
        np.ascontiguousarray(sample[r : r + rows, c : c + width])
        for r in range(0, sample.shape[0] - rows + 1, rows)
        for c in range(0, sample.shape[1] - width + 1, width)
    ]
    codec = Blosc(cname="zstd", clevel=5, shuffle=Blosc.SHUFFLE, blocksize=0, typesize=2)
    nbytes = sum(chunk.nbytes for chunk in chunks)
    cores = len(os.sched_getaffinity(0))
    # From pool threads numcodecs runs Blosc single-threaded (in the main thread it would use Blosc's own
    # threads, and "one core" would be all of them).
    # Best of three trials of the 32 MiB sample each: a short probe on a shared machine is easily disturbed,
    # and the ceiling should be what the machine can do, not what it did during a hiccup.
    rates = []
    for threads in (1, cores):
        best = 0.0
        with ThreadPoolExecutor(threads) as pool:
            for _ in range(3):
                started = time.perf_counter()
                list(pool.map(codec.encode, chunks * threads))
                best = max(best, threads * nbytes / 1e6 / (time.perf_counter() - started))
        rates.append(best)
    per_core, together = rates
    from fairimage.model.image import pyramid_shapes

    levels = pyramid_shapes(spec.shape, spec.axes, chunks_shape)
    encoded = sum(math.prod(shape) for shape in levels) / math.prod(spec.shape)
    return {
        "pyramid_factor": round(encoded, 3),  # pixels encoded per input pixel, all levels together
        "disk_mb_per_s": round(disk, 1),
        "codec_mb_per_s_per_core": round(per_core, 1),
        "cores": cores,
        "codec_mb_per_s_all_cores_measured": round(together, 1),
        "ceiling_mb_per_s": round(min(disk, per_core * cores), 1),
    }


# What users pick when they want speed (`ingest --codec`), measured beside the default zstd-5.
CODEC_CHOICES = ("zstd:3", "lz4")


def _round(spec: Input, work: Path, peers: bool) -> Iterator[Run]:
    jobs = [lambda: run_fairimage(spec, work), lambda: run_fairimage(spec, work, shard_chunks=8)]
    jobs += [lambda codec=codec: run_fairimage(spec, work, codec=codec) for codec in CODEC_CHOICES]
    if peers:
        jobs += [
            lambda tool=tool, mode=mode: run_peer(spec, tool, mode, work)
            for tool in CHILDREN
            for mode in ("same", "default")
        ]
    for job in jobs:
        run = job()
        print(f"  {asdict(run)}", flush=True)
        yield run


def _fastest(runs: list[Run]) -> list[Run]:
    """Each tool and mode's fastest successful round (a failed one only if all failed), in order."""
    best: dict[tuple[str, str], Run] = {}
    for run in runs:
        key = (run.tool, run.mode)
        held = best.get(key)
        if held is None or (run.ok and (not held.ok or run.seconds < held.seconds)):
            best[key] = run
    return list(best.values())


# Report ---------------------------------------------------------------------------------------------------


def print_table(runs: list[Run], ceilings: dict[str, dict[str, float]]) -> None:
    header = (
        f"{'input':<6} {'tool':<12} {'mode':<11} {'s':>7} {'MB/s':>7} {'x':>6} {'RSS MiB':>8} {'out MiB':>8}"
    )
    print("\n" + header + "  note")
    for name in dict.fromkeys(run.input for run in runs):
        group = [run for run in runs if run.input == name]
        ours = next((run for run in group if run.tool == "fairimage" and run.mode == "same"), None)
        for run in group:
            peer = run.tool != "fairimage"
            ratio = f"{ours.mb_per_s / run.mb_per_s:.2f}" if ours and run.ok and peer else ""
            print(
                f"{run.input:<6} {run.tool:<12} {run.mode:<11} {run.seconds:>7.1f} {run.mb_per_s:>7.1f} "
                f"{ratio:>6} {run.peak_rss_mib:>8.0f} {run.output_mib:>8.0f}  {run.note}"
            )
        ceiling = ceilings.get(name)
        if ours and ceiling:
            share = 100 * ours.mb_per_s / ceiling["ceiling_mb_per_s"]
            factor = ceiling["pyramid_factor"]
            print(
                f"       ceiling {ceiling['ceiling_mb_per_s']} MB/s = min(disk {ceiling['disk_mb_per_s']}, "
                f"zstd-5 {ceiling['codec_mb_per_s_per_core']} x {ceiling['cores']} cores; all cores measured "
                f"together: {ceiling['codec_mb_per_s_all_cores_measured']}); fairimage at {share:.0f}%\n"
                f"       the pyramid encodes {factor}x the input, so encoding alone caps any converter at "
                f"{ceiling['ceiling_mb_per_s'] / factor:.0f} MB/s here "
                f"({ceiling['codec_mb_per_s_all_cores_measured'] / factor:.0f} at the measured all-core rate)"
            )
    print("x = fairimage's MB/s divided by this row's")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--inputs", default="stack,plane,big,wide", help="comma-separated: stack, plane, big, wide"
    )
    parser.add_argument("--no-peers", action="store_true", help="run fairimage only")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; each tool's fastest round is reported")
    parser.add_argument(
        "--child", nargs=4, metavar=("TOOL", "MODE", "INPUT", "OUTPUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        tool, mode, name, output = args.child
        CHILDREN[tool](INPUTS[name], mode, Path(output))
        return
    runs: list[Run] = []
    ceilings: dict[str, dict[str, float]] = {}
    RESULTS.mkdir(exist_ok=True)
    for name in args.inputs.split(","):
        spec = INPUTS[name]
        make_input(spec)
        with tempfile.TemporaryDirectory(prefix="fairimage-bench-", dir=RESULTS) as folder:
            work = Path(folder)
            ceilings[name] = measure_ceiling(spec, work)
            print(f"{name}: ceiling {ceilings[name]}", flush=True)
            measured: list[Run] = []
            for _ in range(args.repeat):  # rounds interleave the tools, so a slow spell hits all of them
                measured.extend(_round(spec, work, peers=spec.peers and not args.no_peers))
            runs.extend(_fastest(measured))
    print_table(runs, ceilings)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cores": len(os.sched_getaffinity(0)), "cpu": platform.processor() or platform.machine()},
        "ceilings": ceilings,
        "runs": [asdict(run) for run in runs],
    }
    (RESULTS / "convert.json").write_text(json.dumps(report, indent=1))
    print(f"written {RESULTS / 'convert.json'}")


if __name__ == "__main__":
    main()

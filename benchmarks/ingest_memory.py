"""Peak memory and throughput of `fairimage ingest` on a large generated stack (default 4 GiB).

Generates the input (never committed), runs the real CLI in a child process, and reads the peak RSS of the
child's process tree from the kernel (VmHWM in /proc, the high-water mark since exec), not from the tool.
getrusage(RUSAGE_CHILDREN) would be wrong here: its ru_maxrss keeps the RSS a child inherits at fork, before
exec, and this script holds the generated data. Peer comparisons come with the scale issue.

    python benchmarks/ingest_memory.py [--gib 4] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import tifffile

FAIRIMAGE = str(Path(sys.executable).with_name("fairimage"))


def _planes(count: int, side: int, seed: int = 1):
    """Smooth structures plus noise, like a fluorescence stack: compressible, but not trivially."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    base = (2000 + 1500 * np.sin(12 * xx) * np.cos(9 * yy) ** 2).astype(np.uint16)
    for z in range(count):
        yield base + rng.integers(0, 200, size=(side, side), dtype=np.uint16) + np.uint16(z * 10)


def _tree_high_water_kib(pid: int) -> int:
    """Sum of VmHWM over a process and its descendants (each one's peak resident set since exec)."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=4.0, help="input size in GiB")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    side = 8192
    count = max(1, round(args.gib * 2**30 / (side * side * 2)))
    work = Path(tempfile.mkdtemp(prefix="fairimage-bench-"))
    try:
        source = work / "stack.tif"
        tifffile.imwrite(
            source,
            _planes(count, side),
            shape=(count, side, side),
            dtype=np.uint16,
            photometric="minisblack",
            bigtiff=True,
        )
        size = source.stat().st_size
        subprocess.run([FAIRIMAGE, "init", str(work / "repo")], check=True, capture_output=True)
        started = time.perf_counter()
        command = [FAIRIMAGE, "ingest", "--repo", str(work / "repo"), str(source), "--json"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak_kib = 0
        while process.poll() is None:
            peak_kib = max(peak_kib, _tree_high_water_kib(process.pid))
            time.sleep(0.05)
        stdout, stderr = process.communicate()
        seconds = time.perf_counter() - started
        peak_mib = peak_kib / 1024
        if process.returncode != 0:
            sys.exit(f"ingest failed: {stderr}")
        stored = sum(p.stat().st_size for p in (work / "repo" / "objects").rglob("*") if p.is_file())
        figures = {
            "input_gib": round(size / 2**30, 2),
            "shape": [count, side, side],
            "seconds": round(seconds, 1),
            "mb_per_s": round(size / 1e6 / seconds, 1),
            "peak_rss_mib": round(peak_mib),
            "stored_gib": round(stored / 2**30, 2),
            "status": json.loads(stdout)[0]["status"],
        }
        print(json.dumps(figures, indent=1))
        results = Path(__file__).parent / "results"
        results.mkdir(exist_ok=True)
        (results / "ingest_memory.json").write_text(json.dumps(figures, indent=1))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Serving under load: `fairimage serve` against nginx on the same files, both on 127.0.0.1, loaded by wrk.

Three runs, each with wrk's 2 threads and 64 connections:
- **chunks**: wrk cycles over every chunk key (43 keys, up to 1 MiB each) of a public 4096 x 4096 uint16
  image, from fairimage's ``/zarr/{id}.ome.zarr/...`` and from nginx's ``root`` on the repository's object
  folder (the same files, the same disk, no access check: nginx's figure is the ceiling). The ratio is
  fairimage's requests/s over nginx's.
- **tiles**: wrk asks fairimage for IIIF tiles (256 px JPEG at levels 0 to 2), each URL once (a tile never
  rendered before: cold), for as long as there are new URLs.
- **access under load**: while the chunk run goes on, an anonymous client asks for a key of a *restricted*
  image twice a second and must get 404 every time; the owner's bearer token must get 200.

`fairimage serve` runs as the README recommends for production (``--workers`` = cores); ``--workers 1``
measures one process. nginx runs ``worker_processes auto`` with sendfile on, its defaults otherwise.

    python benchmarks/serve.py                  # 20 s per run
    python benchmarks/serve.py --seconds 60     # the issue's full run
    python benchmarks/serve.py --workers 1      # one server process

Needs Debian's nginx and wrk (``apt-get install nginx wrk``). Results: benchmarks/results/serve.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np
import tifffile

HERE = Path(__file__).parent
RESULTS = HERE / "results"
FAIRIMAGE = str(Path(sys.executable).with_name("fairimage"))
SIDE = 4096
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
TARGET_RATIO = 0.5
TARGET_TILE_P99_MS = 200.0
TILE_SECONDS = 10  # short enough that every tile asked for is new

# wrk cycles over PATHS (one request each, in order); done() prints one JSON line the script parses.
WRK_SCRIPT = """
local paths = {%s}
local cycle = %s
local counter = 0
request = function()
  counter = counter + 1
  local index = counter
  if cycle then index = (counter - 1) %% #paths + 1 elseif counter > #paths then index = #paths end
  return wrk.format("GET", paths[index], {["Accept-Encoding"] = "identity"%s})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK{"requests":%%d,"duration_us":%%d,"bytes":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass
class Run:
    server: str
    what: str
    requests_per_s: float
    mb_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: int
    distinct_urls: int
    notes: list[str] = field(default_factory=list)


def make_input(path: Path, side: int = SIDE, seed: int = 5) -> Path:
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    smooth = (np.sin(31 * xx) * np.cos(29 * yy) + 1) * 900
    tifffile.imwrite(path, rng.poisson(smooth + 100).astype(np.uint16), photometric="minisblack")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(*args: str) -> str:
    done = subprocess.run([FAIRIMAGE, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"fairimage {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def build_repository(repo: Path, source: Path, secret: Path) -> tuple[str, str, str]:
    """A repository with a public image and a restricted one; the restricted study's owner's token."""
    _cli("init", str(repo))
    public = json.loads(_cli("ingest", "--repo", str(repo), "--study", "open", "--json", str(source)))
    hidden = json.loads(_cli("ingest", "--repo", str(repo), "--study", "closed", "--json", str(secret)))
    _cli("user", "add", "owner", "--repo", str(repo))
    _cli("study", "owner", "closed", "owner", "--repo", str(repo))
    _cli("study", "policy", "closed", "restricted", "--repo", str(repo))
    token = _cli("token", "create", "owner", "--repo", str(repo), "--json")
    return public[0]["images"][0], hidden[0]["images"][0], json.loads(token)["secret"]


def chunk_keys(repo: Path, image: str) -> list[str]:
    """Every chunk key of the image (not the zarr.json documents), in path order."""
    root = repo / "objects" / "images" / f"{image}.ome.zarr"
    keys = [p.relative_to(root).as_posix() for p in sorted(root.rglob("*")) if p.is_file()]
    return [key for key in keys if "/c/" in key]


def tile_urls(image: str) -> list[str]:
    """IIIF 256 px tiles at levels 0-2 on a grid that steps by an eighth of a tile, so that each URL is new
    (about 19,000 of them)."""
    urls = []
    for level in (0, 1, 2):
        span = 256 * 2**level
        step = span // 8
        for y in range(0, SIDE - span + 1, step):
            for x in range(0, SIDE - span + 1, step):
                urls.append(f"/iiif/3/{image}/{x},{y},{span},{span}/256,/0/default.jpg")
    order = np.random.default_rng(3).permutation(len(urls))
    return [urls[i] for i in order]


def wrk(
    base: str, paths: list[str], seconds: int, work: Path, cycle: bool = True, header: str = ""
) -> dict[str, int]:
    script = work / "paths.lua"
    quoted = ",".join(json.dumps(path) for path in paths)
    script.write_text(WRK_SCRIPT % (quoted, "true" if cycle else "false", header))
    done = subprocess.run(
        [WRK, "-t2", "-c64", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("WRK{"))
    result: dict[str, int] = json.loads(line[3:])
    return result


def summarise(server: str, what: str, figures: dict[str, int], distinct: int) -> Run:
    seconds = figures["duration_us"] / 1e6
    errors = sum(figures[kind] for kind in ("connect", "read", "write", "status", "timeout"))
    return Run(
        server,
        what,
        round(figures["requests"] / seconds, 1),
        round(figures["bytes"] / seconds / 1e6, 1),
        round(figures["p50_us"] / 1000, 1),
        round(figures["p90_us"] / 1000, 1),
        round(figures["p99_us"] / 1000, 1),
        round(figures["max_us"] / 1000, 1),
        figures["requests"],
        errors,
        distinct,
    )


def start_nginx(objects: Path, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    conf = work / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(
        f"""{user}
worker_processes auto;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        location /zarr/ {{ alias {objects}/images/; }}
    }}
}}
"""
    )
    process = subprocess.Popen([NGINX, "-p", str(work), "-c", str(conf), "-g", "daemon off;"])
    return process, f"http://127.0.0.1:{port}"


def start_fairimage(repo: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [FAIRIMAGE, "serve", "--repo", str(repo), "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, f"http://127.0.0.1:{port}"


def wait_for(base: str, path: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + path, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{base} did not start")
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


class AccessProbe(threading.Thread):
    """Twice a second: the restricted image's key anonymously (must be 404) and with its owner's token
    (must be 200)."""

    def __init__(self, base: str, path: str, token: str) -> None:
        super().__init__(daemon=True)
        self.base, self.path, self.token = base, path, token
        self.anonymous: list[int] = []
        self.owner: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.halt.wait(0.5):
                self.anonymous.append(client.get(self.path).status_code)
                owner = client.get(self.path, headers={"Authorization": f"Bearer {self.token}"})
                self.owner.append(owner.status_code)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=20, help="seconds per wrk run (default 20)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="fairimage serve --workers")
    args = parser.parse_args()
    for tool in (NGINX, WRK):
        if not Path(tool).exists():
            raise SystemExit(f"{tool} is missing: apt-get install nginx wrk")
    source = make_input(RESULTS / "inputs" / f"serve-{SIDE}.tif")
    runs: list[Run] = []
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=RESULTS) as scratch:
        work = Path(scratch)
        repo = work / "repo"
        secret = make_input(RESULTS / "inputs" / "serve-restricted-1024.tif", side=1024, seed=6)
        public, restricted, token = build_repository(repo, source, secret)
        keys = chunk_keys(repo, public)
        paths = [f"/zarr/{public}.ome.zarr/{key}" for key in keys]
        probe_path = f"/zarr/{restricted}.ome.zarr/{chunk_keys(repo, restricted)[0]}"
        sizes = [(repo / "objects" / "images" / f"{public}.ome.zarr" / key).stat().st_size for key in keys]
        print(f"{len(keys)} chunk keys, {min(sizes) / 1e6:.2f}-{max(sizes) / 1e6:.2f} MB each")

        nginx, nginx_base = start_nginx(repo / "objects", work)
        try:
            wait_for(nginx_base, paths[0])
            runs.append(summarise("nginx", "chunks", wrk(nginx_base, paths, args.seconds, work), len(paths)))
        finally:
            stop(nginx)

        server, base = start_fairimage(repo, args.workers)
        try:
            wait_for(base, "/api/studies")
            for path in paths:  # both servers start with the files in the page cache
                httpx.get(base + path, timeout=30)
            probe = AccessProbe(base, probe_path, token)
            probe.start()
            chunks = summarise(
                f"fairimage ({args.workers} workers)",
                "chunks",
                wrk(base, paths, args.seconds, work),
                len(paths),
            )
            probe.halt.set()
            probe.join()
            anonymous, owner = _counts(probe.anonymous), _counts(probe.owner)
            chunks.notes.append(f"restricted key during the run: anonymous {anonymous}, owner {owner}")
            runs.append(chunks)
            tiles = tile_urls(public)
            tile_run = summarise(
                f"fairimage ({args.workers} workers)",
                "tiles, cold",
                wrk(base, tiles, min(args.seconds, TILE_SECONDS), work, cycle=False),
                len(tiles),
            )
            if tile_run.requests > len(tiles):
                tile_run.notes.append(f"ran out of new tiles after {len(tiles)}: the rest were warm")
            runs.append(tile_run)
        finally:
            stop(server)

    print_table(runs)
    anonymous_ok = all(code == 404 for code in probe.anonymous) and probe.anonymous
    owner_ok = all(code == 200 for code in probe.owner) and probe.owner
    print(
        f"access under load: anonymous always 404: {bool(anonymous_ok)}; owner always 200: {bool(owner_ok)}"
    )
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "seconds": args.seconds,
        "workers": args.workers,
        "runs": [asdict(run) for run in runs],
        "access": {"anonymous": probe.anonymous, "owner": probe.owner},
    }
    (RESULTS / "serve.json").write_text(json.dumps(report, indent=2))


def _counts(codes: list[int]) -> str:
    found: dict[int, int] = {}
    for code in codes:
        found[code] = found.get(code, 0) + 1
    return ", ".join(f"{count} x {code}" for code, count in sorted(found.items())) or "none"


def print_table(runs: list[Run]) -> None:
    nginx = next(run for run in runs if run.server == "nginx")
    print(
        f"\n{'server':<24} {'what':<12} {'req/s':>8} {'MB/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7}"
        f" {'errors':>6} {'of nginx':>8}"
    )
    for run in runs:
        ratio = f"{run.requests_per_s / nginx.requests_per_s:.0%}" if run.what == "chunks" else ""
        print(
            f"{run.server:<24} {run.what:<12} {run.requests_per_s:>8} {run.mb_per_s:>7} {run.p50_ms:>7}"
            f" {run.p90_ms:>7} {run.p99_ms:>7} {run.errors:>6} {ratio:>8}"
        )
        for note in run.notes:
            print(f"    {note}")
    fairimage = next(run for run in runs if run.what == "chunks" and run is not nginx)
    tiles = next(run for run in runs if run.what.startswith("tiles"))
    ratio = fairimage.requests_per_s / nginx.requests_per_s
    tiles_ok = tiles.p99_ms <= TARGET_TILE_P99_MS and not tiles.errors
    print(
        f"\nchunks: {ratio:.0%} of nginx's requests/s (target {TARGET_RATIO:.0%}: "
        f"{'ok' if ratio >= TARGET_RATIO else 'MISSED'}); tiles cold p99 {tiles.p99_ms} ms (target "
        f"{TARGET_TILE_P99_MS:.0f}: {'ok' if tiles_ok else 'MISSED'})"
    )


if __name__ == "__main__":
    main()

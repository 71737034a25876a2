"""Mirror throughput between real nodes: an origin (`fairimage serve` on 127.0.0.1) holds one public image
of SIZE x SIZE uint16 pixels (a generated texture, zstd-compressed, 1 MiB chunks, a full pyramid); a
second repository mirrors it with `fairimage mirror` (every object fetched, checked against the origin's
signed manifest, kept, then published under an ingest run). The peer in the same run: the same objects
fetched over the same HTTP with the same concurrency and written to a folder, unchecked (what `wget -r`
or a copy with no manifest does). The ratio is what checking and publishing cost.

    python benchmarks/mirror.py               # 8192 x 8192 (128 MiB of pixels)
    python benchmarks/mirror.py --size 16384  # 512 MiB
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import tifffile

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from federation import FAIRIMAGE, RESULTS, Node, _clean_env  # noqa: E402  (real `fairimage serve` nodes)

FETCHERS = 8  # as fairimage.services.federation.mirror.FETCHERS


def origin_with_image(root: Path, size: int) -> tuple[Node, str]:
    """A served node with one public image of ``size`` squared uint16 pixels; its study's id."""
    node = Node("origin", root / "origin")
    _init(node.repo)
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 4096, (1024, 1024), dtype=np.uint16)
    pixels = np.tile(tile, (size // 1024, size // 1024)) + rng.integers(0, 64, (size, size), dtype=np.uint16)
    path = root / "texture.tif"
    tifffile.imwrite(path, pixels)
    node.cli("ingest", str(path), "--study", "texture")
    studies = json.loads(node.cli("studies", "--json").stdout)
    node.serve()
    return node, studies[0]["id"]


def _init(repo: Path) -> None:
    subprocess.run([FAIRIMAGE, "init", str(repo)], check=True, capture_output=True, env=_clean_env())


def mirror(root: Path, origin: Node, study: str) -> dict[str, float]:
    copy = Node("copy", root / "copy")
    _init(copy.repo)
    copy.cli("peer", "add", origin.url, "--name", "origin")
    started = time.perf_counter()
    (outcome,) = json.loads(copy.cli("mirror", study, "--from", "origin", "--json").stdout)
    seconds = time.perf_counter() - started
    assert outcome["status"] == "mirrored", outcome
    again = time.perf_counter()
    (repeat,) = json.loads(copy.cli("mirror", study, "--from", "origin", "--json").stdout)
    assert repeat["status"] == "already_present", repeat
    return {
        "objects": outcome["objects"],
        "bytes": outcome["bytes"],
        "seconds": round(seconds, 2),
        "mb_per_s": round(outcome["bytes"] / seconds / 1e6, 1),
        "again_seconds": round(time.perf_counter() - again, 2),
    }


def plain_copy(root: Path, origin: Node, image: str, keys: list[str]) -> dict[str, float]:
    """The same objects fetched with the same concurrency and written to a folder, nothing checked."""
    target = root / "plain"
    started = time.perf_counter()
    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=FETCHERS)) as client:

        def one(key: str) -> int:
            data = client.get(f"{origin.url}/zarr/{image}.ome.zarr/{key}").content
            path = target / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return len(data)

        with ThreadPoolExecutor(FETCHERS) as pool:
            nbytes = sum(pool.map(one, keys))
    seconds = time.perf_counter() - started
    return {"bytes": nbytes, "seconds": round(seconds, 2), "mb_per_s": round(nbytes / seconds / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size", type=int, default=8192, help="the image's side in pixels (a multiple of 1024)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fairimage-mirror-") as folder:
        root = Path(folder)
        origin, study = origin_with_image(root, args.size)
        try:
            sources = httpx.get(f"{origin.url}/federation/mirror-sources/{study}", timeout=60).json()
            (image,) = sources["images"]
            keys = sorted(json.loads(image["manifest"])["objects"])
            plain = plain_copy(root, origin, image["id"], keys)  # first: the origin's page cache warms
            mirrored = mirror(root, origin, study)
        finally:
            origin.stop()
    found = {
        "date": datetime.now(UTC).date().isoformat(),
        "size": args.size,
        "mirror": mirrored,
        "plain_copy": plain,
        "ratio": round(mirrored["mb_per_s"] / plain["mb_per_s"], 2),
    }
    print(json.dumps(found, indent=1))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"mirror-{found['date']}.json").write_text(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()

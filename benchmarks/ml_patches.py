"""Training patches: `fairimage.ml` over HTTP and from the repository folder, against zarr-python reading the
same patches straight from the stored OME-Zarr.

N two-channel uint16 images (default 8 of 2048 x 2048: smooth structure plus shot noise, like the other
benchmarks' fluorescence) are generated into a temporary directory under benchmarks/results, ingested into a
temporary repository with its default settings (``ingest_paths``, the CLI's service), each given a label
(``nuclei``: a mask of numbered cells where the first channel is bright) and put into one dataset
(``create_dataset``, ``label="nuclei"``, split 50/50). Every ``--patch`` x ``--patch`` window at stride
``--patch`` of every image (all channels, edges that do not fit left out) is then read, in these ways:

- **zarr-python direct, local**: each image's level-0 array opened with ``zarr.open_group`` on its folder in
  the repository's objects, every patch read as ``array[:, y:y+P, x:x+P]`` in row order, one process. This
  is the issue's baseline. The same again reading each patch's mask from the label's level 0 as well.
- **zarr-python direct, DataLoader**: a trivial map-style torch Dataset over the same (image, y, x) list
  doing that read (and the float32 tensor ``fairimage.ml.torch`` makes), ``DataLoader(batch_size=16,
  num_workers=W)`` for each ``--workers`` W; and again with each patch's mask (int64, as
  ``fairimage.ml.torch`` gives it).
- **DataLoader alone, no read**: items of the same shapes and types made of zeros, through the same
  DataLoader: what workers, collation and shared memory cost, the ceiling of any DataLoader row.
- **fairimage.ml, HTTP**: ``Patches(server_url, "nuclei", size=P)`` against ``fairimage serve`` in its own
  process on a random 127.0.0.1 port (``--server-workers``, default one per core; the study is public, so
  no token), iterated in one process, and ``DataLoader(PatchStream(patches), batch_size=16, num_workers=W)``
  for each W. Every patch comes with its mask (the dataset has labels).
- **fairimage.ml, folder**: ``Patches(repo_folder, "nuclei", size=P)``, one process and a DataLoader with the
  first of ``--workers``.

Each row is one full pass over every patch with fresh objects (a new ``Patches``, so an empty chunk cache;
DataLoader workers started for the pass, as every epoch without ``persistent_workers`` does). Before the
timed rounds one direct pass and one HTTP pass are run and shown as *cold* (the server just started), so the
rows after them are warm: the files are in the OS page cache and the server's processes have started. *setup*
is opening (the constructor: the dataset from the API, each image's metadata, the list of windows), not
counted in patches/s; *first* is the time to the first patch or batch, which is counted. Each row is the
fastest of ``--repeat`` interleaved rounds (default 2). The ratios are to the direct image-only rows, as the
issue states its target, although every fairimage.ml row also reads and delivers the masks.

The script fails unless every pass yields the same number of patches and the same (image, y, x) places, each
once, and a sample of every fairimage.ml pass (every 1/16th patch; a DataLoader's first and last batch)
equals the direct zarr-python read pixel for pixel, masks included.

Target (the issue): with several workers, fairimage.ml over HTTP reaches >= 0.8x the patches/s of direct
local reads with several workers.

    python benchmarks/ml_patches.py                      # 8 images of 2048 x 2048, 256 px patches, ~2 min
    python benchmarks/ml_patches.py --repeat 3 --workers 1,2,4
    python benchmarks/ml_patches.py --quick              # a smoke run: 2 images of 512, 128 px patches

Results: benchmarks/results/ml_patches.json (ml_patches-quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch
import zarr
from torch.utils.data import DataLoader, Dataset

from fairimage.ml import Patches
from fairimage.ml.torch import PatchStream
from fairimage.model.governance.policy import operator
from fairimage.model.labels import MadeBy
from fairimage.services.datasets.datasets import DatasetRequest, create_dataset
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.labels.labels import add_label
from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from fairimage.storage import layout

sys.path.insert(0, str(Path(__file__).parent))
from serve import start_fairimage, stop, wait_for  # noqa: E402

HERE = Path(__file__).parent
RESULTS = HERE / "results"
ADMIN = operator("benchmark")
STUDY = "cells"
DATASET = "nuclei"
CHANNELS = 2
BATCH = 16
SAMPLES = 16  # patches of each single-process pass compared with the direct read
TARGET_RATIO = 0.8

Place = tuple[str, int, int]  # image id, y, x


@dataclass
class Row:
    reader: str  # zarr-python direct, zarr-python direct + mask, fairimage.ml
    source: str  # local folder, HTTP
    workers: int  # 0: this process
    state: str  # cold or warm
    patches: int
    setup_s: float
    first_s: float
    pass_s: float
    patches_per_s: float
    mb_per_s: float  # image pixels (not masks) delivered
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, int, str]:
        return self.reader, self.source, self.workers, self.state


@dataclass
class Stored:
    """Where the generated images and their labels are, on disk and in the catalog."""

    repo: Path
    images: dict[str, Path]  # image id -> its OME-Zarr folder
    labels: dict[str, Path]  # image id -> its label's OME-Zarr folder
    side: int
    chunks: tuple[int, ...] = ()
    label_chunks: tuple[int, ...] = ()


# --- data ---------------------------------------------------------------------------------------------------


def make_image(side: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two channels of smooth blobs with shot noise (cyx uint16), and a mask numbering the cells of a 64 px
    grid where the first channel's structure is bright (yx uint16)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / 2048
    channels, smooth = [], []
    for channel in range(CHANNELS):
        phase = rng.uniform(0, 6.28, 2)
        level = (np.sin(40 * xx + phase[0]) * np.cos(37 * yy + phase[1]) + 1) * (800 + 400 * channel)
        smooth.append(level)
        channels.append(rng.poisson(level + 100).astype(np.uint16))
    cells = (np.arange(side)[:, None] // 64) * (side // 64 + 1) + np.arange(side)[None, :] // 64 + 1
    mask = np.where(smooth[0] > 800, cells, 0).astype(np.uint16)
    return np.stack(channels), mask


def build_repository(work: Path, count: int, side: int) -> Stored:
    repository = init_repository(load_settings(work / "repo"))
    images: dict[str, Path] = {}
    labels: dict[str, Path] = {}
    try:
        objects = Path(repository.settings.storage)
        for n in range(count):
            pixels, mask = make_image(side, seed=n)
            source = work / f"cells-{n}.ome.tif"
            tifffile.imwrite(source, pixels, ome=True, photometric="minisblack", metadata={"axes": "CYX"})
            (outcome,) = ingest_paths(repository, [source], study=STUDY)
            if outcome.status != "ingested" or len(outcome.images) != 1:
                raise SystemExit(f"ingest of {source}: {outcome.status} {outcome.error or ''}")
            image_id = outcome.images[0]
            mask_path = work / f"mask-{n}.tif"
            tifffile.imwrite(mask_path, mask)
            label = add_label(repository, ADMIN, image_id, mask_path, "nuclei", MadeBy("person", "benchmark"))
            images[image_id] = objects / layout.image_prefix(image_id)
            labels[image_id] = objects / layout.label_prefix(label.id)
            source.unlink()
            mask_path.unlink()
        create_dataset(repository, ADMIN, DatasetRequest(DATASET, (STUDY,), "50/50", label="nuclei"))
    finally:
        repository.close()
    stored = Stored(work / "repo", images, labels, side)
    for folder in (*images.values(), *labels.values()):
        if not (folder / "zarr.json").exists():
            raise SystemExit(f"{folder}: not where the repository keeps it")
    first = next(iter(images))
    stored.chunks = tuple(level0(images[first])[0].chunks)
    stored.label_chunks = tuple(level0(labels[first])[0].chunks)
    return stored


def level0(folder: Path) -> tuple[zarr.Array, str]:
    group = zarr.open_group(str(folder), mode="r")
    multiscale = group.attrs["ome"]["multiscales"][0]
    array = group[multiscale["datasets"][0]["path"]]
    assert isinstance(array, zarr.Array)
    return array, "".join(axis["name"] for axis in multiscale["axes"])


def window(axes: str, y: int, x: int, size: int, channel: int | None = None) -> tuple[int | slice, ...]:
    """``[:, y:y+size, x:x+size]`` of the first plane (all channels, or one)."""
    chosen: dict[str, int | slice] = {
        "t": 0,
        "z": 0,
        "c": slice(None) if channel is None else channel,
        "y": slice(y, y + size),
        "x": slice(x, x + size),
    }
    return tuple(chosen[name] for name in axes)


def places(stored: Stored, size: int) -> list[Place]:
    steps = range(0, stored.side - size + 1, size)
    return [(image_id, y, x) for image_id in stored.images for y in steps for x in steps]


class Direct:
    """Level 0 of each image (and its label) opened with zarr-python, in the process that reads them."""

    def __init__(self, stored: Stored, size: int) -> None:
        self.stored, self.size = stored, size
        self._opened: dict[tuple[str, bool], tuple[zarr.Array, str]] = {}
        self._pid = os.getpid()

    def _array(self, image_id: str, label: bool) -> tuple[zarr.Array, str]:
        if self._pid != os.getpid():  # a forked DataLoader worker opens its own
            self._opened, self._pid = {}, os.getpid()
        key = (image_id, label)
        if key not in self._opened:
            self._opened[key] = level0((self.stored.labels if label else self.stored.images)[image_id])
        return self._opened[key]

    def image(self, image_id: str, y: int, x: int) -> np.ndarray:
        array, axes = self._array(image_id, False)
        return np.asarray(array[window(axes, y, x, self.size)])

    def mask(self, image_id: str, y: int, x: int) -> np.ndarray:
        array, axes = self._array(image_id, True)
        return np.asarray(array[window(axes, y, x, self.size, channel=0 if "c" in axes else None)])


class DirectDataset(Dataset[dict[str, Any]]):
    """The trivial map-style dataset a researcher would write over zarr-python: the image patch as float32
    and, ``with_mask``, the mask's as int64 (what ``fairimage.ml.torch`` gives)."""

    def __init__(self, direct: Direct, chosen: list[Place], with_mask: bool) -> None:
        self.direct, self.places, self.with_mask = direct, chosen, with_mask

    def __len__(self) -> int:
        return len(self.places)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_id, y, x = self.places[index]
        image = self.direct.image(image_id, y, x)
        item = {"image": torch.from_numpy(image.astype("float32")), "image_id": image_id, "y": y, "x": x}
        if self.with_mask:
            item["mask"] = torch.from_numpy(self.direct.mask(image_id, y, x).astype("int64"))
        return item


class NoRead(Dataset[dict[str, Any]]):
    """Items of the same shapes and types as ``fairimage.ml.torch``'s (float32 image, int64 mask) that read
    nothing: what the DataLoader itself (workers, collation, shared memory) costs per patch."""

    def __init__(self, chosen: list[Place], size: int) -> None:
        self.places, self.size = chosen, size

    def __len__(self) -> int:
        return len(self.places)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_id, y, x = self.places[index]
        image = torch.zeros((CHANNELS, self.size, self.size), dtype=torch.float32)
        mask = torch.zeros((self.size, self.size), dtype=torch.int64)
        return {"image": image, "mask": mask, "image_id": image_id, "y": y, "x": x}


# --- passes -------------------------------------------------------------------------------------------------


@dataclass
class Pass:
    """What one pass saw: every place (with how often), and the samples to compare afterwards."""

    seen: Counter[Place]
    images: list[tuple[Place, np.ndarray]]
    masks: list[tuple[Place, np.ndarray]]
    first_s: float
    seconds: float


def single(
    items: Iterable[Any], total: int, place: Callable[[Any], Place], image: Callable, mask: Callable
) -> Pass:
    every = max(1, total // SAMPLES)
    seen: Counter[Place] = Counter()
    images, masks = [], []
    first = 0.0
    start = time.perf_counter()
    for n, item in enumerate(items):
        if n == 0:
            first = time.perf_counter() - start
        where = place(item)
        seen[where] += 1
        if n % every == 0:
            images.append((where, image(item)))
            if mask(item) is not None:
                masks.append((where, mask(item)))
    return Pass(seen, images, masks, first, time.perf_counter() - start)


def batches(loader: DataLoader, check: bool = True) -> Pass:
    seen: Counter[Place] = Counter()
    kept: list[dict[str, Any]] = []
    first = 0.0
    start = time.perf_counter()
    last = None
    for batch in loader:
        if not kept:
            first = time.perf_counter() - start
            kept.append(batch)
        last = batch
        seen.update(zip(batch["image_id"], batch["y"].tolist(), batch["x"].tolist(), strict=True))
    seconds = time.perf_counter() - start
    if not check:
        kept = []
    elif last is not None and last is not kept[0]:
        kept.append(last)
    images, masks = [], []
    for batch in kept:
        for n, where in enumerate(
            zip(batch["image_id"], batch["y"].tolist(), batch["x"].tolist(), strict=True)
        ):
            images.append((where, batch["image"][n].numpy()))
            if "mask" in batch:
                masks.append((where, batch["mask"][n].numpy()))
    return Pass(seen, images, masks, first, seconds)


def loader(dataset: Dataset[Any], workers: int) -> DataLoader:
    return DataLoader(dataset, batch_size=BATCH, num_workers=workers)


class Bench:
    def __init__(self, stored: Stored, size: int, base: str, expected: list[Place]) -> None:
        self.stored, self.size, self.base = stored, size, base
        self.expected = Counter(expected)
        self.direct = Direct(stored, size)  # for the checks, in this process
        self.bytes_per_patch = CHANNELS * size * size * 2
        self.checked = 0

    def row(self, reader: str, source: str, workers: int, state: str, setup: float, done: Pass) -> Row:
        if done.seen != self.expected:
            missing = sum((self.expected - done.seen).values())
            extra = sum((done.seen - self.expected).values())
            raise SystemExit(
                f"{reader} {source} {workers} workers: {sum(done.seen.values())} patches, "
                f"{len(self.expected)} expected ({missing} missing, {extra} extra or repeated)"
            )
        for (image_id, y, x), pixels in done.images:
            expected = self.direct.image(image_id, y, x)
            if not np.array_equal(pixels, expected.astype(pixels.dtype)) or pixels.shape != expected.shape:
                raise SystemExit(f"{reader} {source}: patch {image_id} ({y}, {x}) differs from zarr-python's")
            self.checked += 1
        for (image_id, y, x), pixels in done.masks:
            expected = self.direct.mask(image_id, y, x)
            if not np.array_equal(pixels, expected.astype(pixels.dtype)) or pixels.shape != expected.shape:
                raise SystemExit(f"{reader} {source}: mask {image_id} ({y}, {x}) differs from zarr-python's")
            self.checked += 1
        count = sum(done.seen.values())
        rate = count / done.seconds
        return Row(
            reader,
            source,
            workers,
            state,
            count,
            round(setup, 3),
            round(done.first_s, 3),
            round(done.seconds, 3),
            round(rate, 1),
            round(rate * self.bytes_per_patch / 1e6, 1),
        )

    def direct_single(self, with_mask: bool, state: str = "warm") -> Row:
        start = time.perf_counter()
        direct = Direct(self.stored, self.size)
        chosen = list(self.expected)
        setup = time.perf_counter() - start

        def read(where: Place) -> tuple[Place, np.ndarray, np.ndarray | None]:
            return where, direct.image(*where), direct.mask(*where) if with_mask else None

        done = single(
            (read(where) for where in chosen),
            len(chosen),
            lambda item: item[0],
            lambda item: item[1],
            lambda item: item[2],
        )
        reader = "zarr-python direct + mask" if with_mask else "zarr-python direct"
        return self.row(reader, "local folder", 0, state, setup, done)

    def direct_loader(self, workers: int, with_mask: bool) -> Row:
        start = time.perf_counter()
        dataset = DirectDataset(Direct(self.stored, self.size), list(self.expected), with_mask)
        setup = time.perf_counter() - start
        reader = "zarr-python direct + mask" if with_mask else "zarr-python direct"
        return self.row(reader, "local folder", workers, "warm", setup, batches(loader(dataset, workers)))

    def no_read(self, workers: int) -> Row:
        dataset = NoRead(list(self.expected), self.size)
        return self.row(
            "DataLoader alone, no read", "-", workers, "warm", 0.0, batches(loader(dataset, workers), False)
        )

    def patches(self, http: bool) -> tuple[Patches, float]:
        start = time.perf_counter()
        patches = Patches(self.base if http else self.stored.repo, DATASET, size=self.size)
        return patches, time.perf_counter() - start

    def ml_single(self, http: bool, state: str = "warm") -> Row:
        patches, setup = self.patches(http)
        done = single(
            patches,
            len(patches),
            lambda patch: (patch.image_id, patch.y, patch.x),
            lambda patch: patch.image,
            lambda patch: patch.mask,
        )
        return self.row("fairimage.ml", "HTTP" if http else "local folder", 0, state, setup, done)

    def ml_loader(self, http: bool, workers: int) -> Row:
        patches, setup = self.patches(http)
        done = batches(loader(PatchStream(patches), workers))
        return self.row("fairimage.ml", "HTTP" if http else "local folder", workers, "warm", setup, done)


# --- report -------------------------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> dict[str, float]:
    direct = [row for row in rows if row.reader == "zarr-python direct" and row.state == "warm"]
    one = next(row for row in direct if row.workers == 0)
    several = [row for row in direct if row.workers > 0] or [one]
    best = max(several, key=lambda row: row.patches_per_s)
    name_best = f"x direct {best.workers}w"
    print(
        f"\n{'reader':<26} {'source':<12} {'workers':>7} {'state':<5} {'patches':>7} {'setup s':>7}"
        f" {'first s':>7} {'pass s':>7} {'patches/s':>9} {'MB/s':>7} {'x direct 1':>10} {name_best:>11}"
    )
    for row in rows:
        workers = str(row.workers) if row.workers else "-"
        print(
            f"{row.reader:<26} {row.source:<12} {workers:>7} {row.state:<5} {row.patches:>7}"
            f" {row.setup_s:>7.3f} {row.first_s:>7.3f} {row.pass_s:>7.3f} {row.patches_per_s:>9.1f}"
            f" {row.mb_per_s:>7.1f}"
            f" {row.patches_per_s / one.patches_per_s:>10.2f} {row.patches_per_s / best.patches_per_s:>11.2f}"
        )
    print(
        f"\nx direct 1: over zarr-python direct in one process ({one.patches_per_s:.1f} patches/s); "
        f"{name_best}: over its best DataLoader row ({best.workers} workers, "
        f"{best.patches_per_s:.1f} patches/s)"
    )
    http = [row for row in rows if row.reader == "fairimage.ml" and row.source == "HTTP" and row.workers]
    ratios = {"best_direct_workers": best.workers, "best_direct_patches_per_s": best.patches_per_s}
    if http:
        top = max(http, key=lambda row: row.patches_per_s)
        ratio = top.patches_per_s / best.patches_per_s
        ratios.update(best_http_workers=top.workers, best_http_patches_per_s=top.patches_per_s, ratio=ratio)
        print(
            f"fairimage.ml over HTTP, {top.workers} workers: {ratio:.2f}x direct local reads with "
            f"{best.workers} workers (target {TARGET_RATIO}: {'ok' if ratio >= TARGET_RATIO else 'MISSED'})"
        )
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=8, help="images in the dataset (default 8)")
    parser.add_argument("--size", type=int, default=2048, help="image side in pixels (default 2048)")
    parser.add_argument("--patch", type=int, default=256, help="patch side and stride (default 256)")
    parser.add_argument(
        "--workers", default="2,4", help="DataLoader worker counts, comma-separated (default 2,4)"
    )
    parser.add_argument(
        "--server-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="fairimage serve --workers (default: cores)",
    )
    parser.add_argument("--repeat", type=int, default=2, help="rounds; each row the fastest (default 2)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 images of 512, 128 px patches")
    args = parser.parse_args()
    if args.quick:
        args.images, args.size, args.patch, args.workers, args.repeat = 2, 512, 128, "2", 1
    workers = [int(part) for part in args.workers.split(",") if part.strip()]
    if args.patch > args.size or not workers or min(workers) < 1:
        raise SystemExit("--patch must fit in --size, and --workers list at least one count of 1 or more")
    torch.set_num_threads(1)  # the tensors are only converted; keep torch's threads off the two cores
    # more DataLoader workers than cores is what the rows measure; torch's warning about it is not news
    warnings.filterwarnings("ignore", message="This DataLoader will create")

    RESULTS.mkdir(exist_ok=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(dir=RESULTS) as scratch:
        start = time.perf_counter()
        stored = build_repository(Path(scratch), args.images, args.size)
        chosen = places(stored, args.patch)
        print(
            f"{args.images} images of {CHANNELS} x {args.size} x {args.size} uint16 (chunks {stored.chunks}, "
            f"label chunks {stored.label_chunks}) ingested and labelled in "
            f"{time.perf_counter() - start:.1f} s; "
            f"{len(chosen)} patches of {args.patch} x {args.patch}"
        )
        server, base = start_fairimage(stored.repo, args.server_workers)
        try:
            wait_for(base, "/api/studies")
            bench = Bench(stored, args.patch, base, chosen)
            rows.append(bench.direct_single(with_mask=False, state="cold"))
            rows.append(bench.ml_single(http=True, state="cold"))
            best: dict[tuple[str, str, int, str], Row] = {}
            for _ in range(args.repeat):
                measured = [bench.direct_single(with_mask=False), bench.direct_single(with_mask=True)]
                measured += [bench.direct_loader(count, with_mask=False) for count in workers]
                measured += [bench.direct_loader(count, with_mask=True) for count in workers]
                measured += [bench.no_read(count) for count in workers]
                measured.append(bench.ml_single(http=True))
                measured += [bench.ml_loader(http=True, workers=count) for count in workers]
                measured.append(bench.ml_single(http=False))
                measured.append(bench.ml_loader(http=False, workers=workers[0]))
                for row in measured:
                    if row.key not in best or row.patches_per_s > best[row.key].patches_per_s:
                        best[row.key] = row
            rows += best.values()
        finally:
            stop(server)
    ratios = print_table(rows)
    print(
        f"every pass: {len(chosen)} patches, each place once; {bench.checked} sampled patches and masks "
        "equal to zarr-python's read"
    )
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
        "images": args.images,
        "size": args.size,
        "patch": args.patch,
        "chunks": list(stored.chunks),
        "label_chunks": list(stored.label_chunks),
        "patches": len(chosen),
        "batch_size": BATCH,
        "server_workers": args.server_workers,
        "repeat": args.repeat,
        "rows": [asdict(row) for row in rows],
        "ratios": ratios,
        "load_average": os.getloadavg(),
    }
    name = "ml_patches-quick.json" if args.quick else "ml_patches.json"
    (RESULTS / name).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

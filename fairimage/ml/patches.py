"""Patches of a dataset version, for training: every ``size`` x ``size`` window (at ``stride``) of every plane
of every image in a split, with its label's window where the dataset has labels.

The source is a fairimage server (its base URL, and an API token where the studies are not public) or a
repository folder on this machine. Either way the dataset is read through the access check: over HTTP the
server's, with the token; here, the repository's, as the person at this machine. Only the chunks a patch
needs are read: a row of patches is one zarr read of the chunks under it (fetched concurrently over HTTP),
decoded once and kept while the row's patches are cut from it.

Patches with too little of their label (``min_foreground``) are left out before any image pixel is read:
the label's fraction is judged on the label's lowest pyramid level at which a patch is still at least
``FOREGROUND_PIXELS`` pixels across, so deciding costs a small fraction of reading."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np
import zarr

from fairimage.model.errors import InvalidInputError, StorageError
from fairimage.model.image import level_plane
from fairimage.ngff.reader import Lru, preload, read_region

CACHE_BYTES = 256 << 20  # decoded chunks kept: a row of patches across a wide image, with its labels
FOREGROUND_PIXELS = 8  # a patch judged on a level where it is at least this many pixels across


@dataclass(frozen=True)
class Patch:
    """One window: its place (image, plane, top-left at the chosen level), its pixels (channels, y, x) and
    its label's pixels (y, x), where the dataset has labels."""

    image_id: str
    split: str
    t: int
    z: int
    y: int
    x: int
    image: np.ndarray
    mask: np.ndarray | None


@dataclass(frozen=True)
class _Place:
    item: int
    t: int
    z: int
    y: int
    x: int


@dataclass
class _Item:
    """An item's image and label, opened again in each process that reads them: a DataLoader's workers
    are forked, and an HTTP client or event loop does not survive a fork."""

    image_id: str
    split: str
    image_at: Callable[[], zarr.Group]
    label_at: Callable[[], zarr.Group] | None
    _opened: tuple[int, zarr.Group, zarr.Group | None] | None = None
    _levels: dict[tuple[bool, int], tuple[zarr.Array, str]] = field(default_factory=dict)

    @property
    def image(self) -> zarr.Group:
        return self._groups()[0]

    @property
    def label(self) -> zarr.Group | None:
        return self._groups()[1]

    def level(self, level: int, label: bool = False) -> tuple[zarr.Array, str]:
        """A level's array and axes, opened once per process (each opening reads its zarr.json, over
        HTTP a request)."""
        image, labels = self._groups()
        found = self._levels.get((label, level))
        if found is None:
            group = labels if label else image
            assert group is not None
            what = f"the label of {self.image_id}" if label else self.image_id
            found = self._levels[(label, level)] = _level(group, level, what)
        return found

    def _groups(self) -> tuple[zarr.Group, zarr.Group | None]:
        if self._opened is None or self._opened[0] != os.getpid():
            label = self.label_at() if self.label_at is not None else None
            self._opened = (os.getpid(), self.image_at(), label)
            self._levels = {}
        return self._opened[1], self._opened[2]


class Patches:
    """The patches of one split (or all) of a dataset version; iterate it, or index it (``len``, ``[i]``)
    as a PyTorch map-style dataset does. ``fairimage.ml.torch`` wraps it for a DataLoader.

    ``source``: ``http(s)://HOST:PORT`` of a fairimage server, or a repository folder. ``level``: the pyramid
    level (0 = full resolution); ``channels``: indices (default all); ``pad``: patches at the right and
    bottom edges that would stick out are filled with zeros rather than left out."""

    def __init__(
        self,
        source: str | Path,
        dataset: str,
        version: int | None = None,
        *,
        split: str | None = None,
        size: int = 256,
        stride: int | None = None,
        level: int = 0,
        channels: list[int] | None = None,
        min_foreground: float = 0.0,
        pad: bool = False,
        token: str | None = None,
    ) -> None:
        if size < 1 or (stride is not None and stride < 1):
            raise InvalidInputError(
                f"size={size}, stride={stride}: a patch is at least one pixel, and so is a step"
            )
        if not 0.0 <= min_foreground <= 1.0:
            raise InvalidInputError(f"min_foreground={min_foreground}: give a fraction from 0 to 1")
        self.size, self.stride, self.level, self.channels, self.pad = (
            size,
            stride or size,
            level,
            channels,
            pad,
        )
        self._source = _open_source(source, token)
        described = self._source.dataset(dataset, version)
        label_name = described["parameters"].get("label")
        if min_foreground and not label_name:
            raise InvalidInputError(
                f"dataset {dataset!r} has no labels, so min_foreground={min_foreground} cannot be judged; "
                "make one with --label NAME, or leave min_foreground out"
            )
        known = sorted({item["split"] for item in described["items"]})
        if split is not None and split not in known:
            raise InvalidInputError(
                f"split {split!r}: dataset {dataset!r} has {', '.join(known) or 'no items'}"
            )
        self.dataset, self.version = described["name"], described["version"]
        self._items = [
            _Item(
                item["image_id"],
                item["split"],
                self._source.image(item["image_id"]),
                self._source.label(item["image_id"], label_name) if label_name else None,
            )
            for item in described["items"]
            if split is None or item["split"] == split
        ]
        self._places = [
            place for index in range(len(self._items)) for place in self._windows(index, min_foreground)
        ]
        self._cache = Lru(CACHE_BYTES, size=lambda chunk: chunk.nbytes)

    def __len__(self) -> int:
        return len(self._places)

    def __getitem__(self, index: int) -> Patch:
        return self._read(self._places[index], band=False)  # in any order: only its own chunks

    def __iter__(self) -> Iterator[Patch]:
        return (self._read(place) for place in self._places)

    def shard(self, part: int, parts: int) -> Iterator[Patch]:
        """Part ``part`` of ``parts`` (a DataLoader worker's share): whole images each, so that a worker
        reads a chunk once, not every worker a piece of it."""
        return (self._read(place) for place in self._places if place.item % parts == part)

    def close(self) -> None:
        """Let go of the server's connection or the repository."""
        self._source.close()

    def __enter__(self) -> Patches:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _windows(self, index: int, min_foreground: float) -> Iterator[_Place]:
        item = self._items[index]
        array, axes = item.level(self.level)
        shape = dict(zip(axes, array.shape, strict=True))
        height, width = shape["y"], shape["x"]
        last = (lambda extent: max(extent - 1, 0)) if self.pad else (lambda extent: extent - self.size)
        ys = range(0, last(height) + 1, self.stride)
        xs = range(0, last(width) + 1, self.stride)
        judged = _Foreground(item, self.level, self.size) if min_foreground else None
        for t in range(shape.get("t", 1)):
            for z in range(shape.get("z", 1)):
                for y in ys:
                    for x in xs:
                        if judged is None or judged.fraction(t, z, y, x) >= min_foreground:
                            yield _Place(index, t, z, y, x)

    def _read(self, place: _Place, band: bool = True) -> Patch:
        item = self._items[place.item]
        array, axes = item.level(self.level)
        channels = self.channels if self.channels is not None else list(range(_extent(array, axes, "c")))
        image = np.stack(self._window(array, axes, channels, place, (item.image_id, self.level), band))
        mask = None
        if item.label_at is not None:
            labels, label_axes = item.level(self.level, label=True)
            key = (item.image_id, "label", self.level)
            mask = self._window(labels, label_axes, [0], place, key, band)[0]
        return Patch(item.image_id, item.split, place.t, place.z, place.y, place.x, image, mask)

    def _window(
        self, array: zarr.Array, axes: str, channels: list[int], place: _Place, key: Any, band: bool
    ) -> list[np.ndarray]:
        """The patch's window of each channel, zero-filled where it sticks out of the image. With ``band``
        (patches read in order) the chunks under the whole row of patches are read at once."""
        height, width = _extent(array, axes, "y"), _extent(array, axes, "x")
        rows = (place.y, min(place.y + self.size, height))
        columns = (place.x, min(place.x + self.size, width))
        wanted = [_whole(name, array, axes, channels, place, rows, columns, band) for name in axes]
        preload(array, wanted, self._cache, key)
        planes = read_region(
            array, axes, channels, place.z, place.t, rows, columns, chunks=(self._cache, key)
        )
        if planes and planes[0].shape == (self.size, self.size):
            return planes
        padded = []
        for plane in planes:
            full = np.zeros((self.size, self.size), plane.dtype)
            full[: plane.shape[0], : plane.shape[1]] = plane
            padded.append(full)
        return padded


def _whole(
    name: str,
    array: zarr.Array,
    axes: str,
    channels: list[int],
    place: _Place,
    rows: tuple[int, int],
    columns: tuple[int, int],
    band: bool,
) -> int | slice:
    """The selection along axis ``name`` of the window (with ``band``: the full width of its rows)."""
    if name == "t":
        return place.t
    if name == "z":
        return place.z
    if name == "c":
        return slice(min(channels), max(channels) + 1) if channels else slice(0, 1)
    if name == "y":
        return slice(*rows)
    return slice(0, array.shape[axes.index(name)]) if band else slice(*columns)


class _Foreground:
    """How much of a patch its label covers, judged on a low level of the label's pyramid."""

    def __init__(self, item: _Item, level: int, size: int) -> None:
        assert item.label is not None
        datasets = _multiscale(item.label, f"the label of {item.image_id}")["datasets"]
        full, _ = item.level(level, label=True)
        self.factor, self.level = 1.0, level
        for coarser in range(level + 1, len(datasets)):
            array, axes = item.level(coarser, label=True)
            factor = full.shape[axes.index("x")] / array.shape[axes.index("x")]
            if size / factor < FOREGROUND_PIXELS:
                break
            self.factor, self.level = factor, coarser
        self.array, self.axes = item.level(self.level, label=True)
        self.full_shape = full.shape  # of the level the patches are cut from
        self.size = size
        self._planes: dict[tuple[int, int], np.ndarray] = {}

    def fraction(self, t: int, z: int, y: int, x: int) -> float:
        plane = self._planes.get((t, z))
        if plane is None:
            height, width = _extent(self.array, self.axes, "y"), _extent(self.array, self.axes, "x")
            plane_z = level_plane(self.full_shape, self.array.shape, self.axes, z)
            plane = read_region(self.array, self.axes, [0], plane_z, t, (0, height), (0, width))[0] != 0
            self._planes = {(t, z): plane}  # planes are visited in order: keep one
        top, left = int(y / self.factor), int(x / self.factor)
        span = max(1, math.ceil(self.size / self.factor))
        window = plane[top : top + span, left : left + span]
        return float(window.sum()) / (span * span)  # what sticks out of the image counts as background


def _multiscale(group: zarr.Group, what: str) -> dict[str, Any]:
    attributes: dict[str, Any] = dict(group.attrs)
    ome = attributes.get("ome", attributes)
    try:
        multiscale: dict[str, Any] = ome["multiscales"][0]
        return multiscale
    except (KeyError, IndexError, TypeError):
        raise InvalidInputError(f"{what}: not an OME-Zarr image (no multiscales in its metadata)") from None


def _level(group: zarr.Group, level: int, what: str) -> tuple[zarr.Array, str]:
    multiscale = _multiscale(group, what)
    datasets = multiscale["datasets"]
    if not 0 <= level < len(datasets):
        raise InvalidInputError(f"level={level}: image {what} has levels 0 to {len(datasets) - 1}")
    axes = "".join(axis["name"] for axis in multiscale["axes"])
    array = group[datasets[level]["path"]]
    assert isinstance(array, zarr.Array)
    return array, axes


def _extent(array: zarr.Array, axes: str, name: str) -> int:
    return array.shape[axes.index(name)] if name in axes else 1


class _Source(Protocol):
    def dataset(self, name: str, version: int | None) -> dict[str, Any]: ...

    def image(self, image_id: str) -> Callable[[], zarr.Group]: ...

    def label(self, image_id: str, name: str) -> Callable[[], zarr.Group]: ...

    def close(self) -> None: ...


def _open_source(source: str | Path, token: str | None) -> _Source:
    text = str(source)
    if text.startswith(("http://", "https://")):
        return _Server(text.rstrip("/"), token)
    if token is not None:
        raise InvalidInputError(
            f"{source}: a token is for a server (http://...); a repository folder needs none"
        )
    return _Repository(Path(source))


class _Server:
    """A fairimage server: the dataset from its API, pixels from its /zarr/ with zarr-python."""

    def __init__(self, base: str, token: str | None) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(headers=self.headers, timeout=60)

    def dataset(self, name: str, version: int | None) -> dict[str, Any]:
        url = f"{self.base}/api/datasets/{name}" + (f"/{version}" if version is not None else "")
        try:
            response = self._client.get(url)
        except httpx.HTTPError as exc:
            raise StorageError(
                f"{url}: no answer ({type(exc).__name__}: {exc}); is the server running?"
            ) from exc
        if response.status_code == 401:
            raise InvalidInputError(
                f"{url}: the server does not know this token (401); create one with 'fairimage token create'"
            )
        if response.status_code == 404:
            raise InvalidInputError(
                f"{url}: no dataset {name!r}"
                + (f" version {version}" if version is not None else "")
                + " that this token may read (a dataset over studies you may not read is not shown)"
            )
        if response.status_code != 200:
            raise StorageError(f"{url}: the server answered {response.status_code} ({response.text[:200]})")
        described: dict[str, Any] = response.json()
        return described

    def image(self, image_id: str) -> Callable[[], zarr.Group]:
        return self._group(f"{self.base}/zarr/{image_id}.ome.zarr")

    def label(self, image_id: str, name: str) -> Callable[[], zarr.Group]:
        return self._group(f"{self.base}/zarr/{image_id}.ome.zarr/labels/{name}")

    def _group(self, url: str) -> Callable[[], zarr.Group]:
        options = {"headers": self.headers} if self.headers else {}
        return partial(zarr.open_group, url, mode="r", zarr_format=3, storage_options=options)

    def close(self) -> None:
        self._client.close()


class _Repository:
    """A repository on this machine, read as its operator (the same access check as the command line)."""

    def __init__(self, folder: Path) -> None:
        from fairimage.model.governance.policy import operator_here
        from fairimage.services.recovery import open_repository
        from fairimage.settings import load_settings

        self.repository = open_repository(load_settings(folder))
        self.principal = operator_here()

    def dataset(self, name: str, version: int | None) -> dict[str, Any]:
        from dataclasses import asdict

        from fairimage.services.datasets.datasets import get_dataset

        return asdict(get_dataset(self.repository, self.principal, name, version))

    def image(self, image_id: str) -> Callable[[], zarr.Group]:
        from fairimage.services.governance import access

        access.check_image(self.repository, self.principal, image_id)
        root = self.repository.image_root(image_id)
        return partial(zarr.open_group, store=root.zarr_store("", read_only=True), mode="r", zarr_format=3)

    def label(self, image_id: str, name: str) -> Callable[[], zarr.Group]:
        from fairimage.services.labels.labels import list_labels
        from fairimage.storage import layout

        found = {label.name: label for label in list_labels(self.repository, self.principal, image_id)}
        if name not in found:
            raise InvalidInputError(f"image {image_id} has no label {name!r}")
        store = self.repository.store.zarr_store(layout.label_prefix(found[name].id), read_only=True)
        return partial(zarr.open_group, store=store, mode="r", zarr_format=3)

    def close(self) -> None:
        self.repository.close()

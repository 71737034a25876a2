"""The code of the allow-listed analyses (fairimage.model.federation.analyses names them): plain functions
of the images they may read, returning aggregates. They run in the sandbox's process, never the server's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fairimage.catalog.tables import ImageRow
from fairimage.ngff.reader import open_level
from fairimage.services.repository import Repository

Item = tuple[str, str]  # (image id, split)
Code = Callable[[Repository, list[Item], dict[str, Any]], dict[str, Any]]


def intensity_statistics(
    repository: Repository, items: list[Item], parameters: dict[str, Any]
) -> dict[str, Any]:
    """Per channel, over the images: the mean and spread of their mean intensities, their extremes."""
    means: dict[str, list[float]] = {}
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}
    for image_id, _ in items:
        for channel, plane in _channels(repository, image_id):
            means.setdefault(channel, []).append(float(plane.mean()))
            lows[channel] = min(lows.get(channel, np.inf), float(plane.min()))
            highs[channel] = max(highs.get(channel, -np.inf), float(plane.max()))
    rows = [
        {
            "channel": channel,
            "n": len(values),
            "mean": float(np.mean(values)),
            "std": float(np.std(values)),
            "min": lows[channel],
            "max": highs[channel],
        }
        for channel, values in sorted(means.items())
    ]
    return {"table": rows}


def image_counts(repository: Repository, items: list[Item], parameters: dict[str, Any]) -> dict[str, Any]:
    """How many images have each value of one field."""
    by = str(parameters.get("by", "dtype"))
    if by not in ("dtype", "dimensionality", "channels", "split"):
        raise ValueError(f"by={by!r}: give dtype, dimensionality, channels or split")
    counts: dict[str, int] = {}
    splits = dict(items)
    with repository.reading() as session:
        for image_id in splits:
            row = session.get(ImageRow, image_id)
            assert row is not None
            value = {
                "dtype": row.dtype,
                "dimensionality": "3D" if any(axis["name"] == "z" for axis in row.axes) else "2D",
                "channels": str(len(row.channels)),
                "split": splits[image_id],
            }[by]
            counts[value] = counts.get(value, 0) + 1
    return {"table": [{by: value, "n": n} for value, n in sorted(counts.items())]}


def _channels(repository: Repository, image_id: str) -> list[tuple[str, np.ndarray]]:
    """Each channel of an image's smallest pyramid level, as (its label, its pixels)."""
    with repository.reading() as session:
        row = session.get(ImageRow, image_id)
        assert row is not None
        levels, axes, channels = row.levels, [axis["name"] for axis in row.axes], row.channels
    path = levels[-1]["path"]
    pixels = np.asarray(
        open_level(repository.image_root(image_id).zarr_store(path, read_only=True), image_id)[...]
    )
    if "c" not in axes:
        return [(str(channels[0].get("label", "0")) if channels else "0", pixels)]
    stacked = np.moveaxis(pixels, axes.index("c"), 0)
    return [
        (str(channels[i].get("label", i)) if i < len(channels) else str(i), stacked[i])
        for i in range(len(stacked))
    ]


CODE: dict[str, Code] = {"intensity_statistics": intensity_statistics, "image_counts": image_counts}

"""Reading stored OME-Zarr levels back: one plane's region of some channels, for tiles and thumbnails."""

from __future__ import annotations

from typing import Any

import numpy as np
import zarr

from fairimage.model.errors import CorruptFileError


def open_level(zarr_store: Any, label: str) -> zarr.Array:
    """The array of one pyramid level (``zarr_store`` is rooted at the level's folder)."""
    try:
        return zarr.open_array(store=zarr_store, mode="r")
    except Exception as exc:  # zarr raises several kinds for a missing or damaged array
        raise CorruptFileError(f"{label}: the stored pyramid level cannot be read ({exc})") from exc


def read_region(
    array: zarr.Array,
    axes: str,
    channels: list[int],
    z: int,
    t: int,
    rows: tuple[int, int],
    columns: tuple[int, int],
) -> list[np.ndarray]:
    """The 2D region ``rows`` x ``columns`` of plane (z, t) for each of ``channels``, in that order.

    Channels are read in one request spanning the lowest to the highest asked for, so a composite of
    three channels costs one zarr call, not three."""
    selection: list[int | slice] = []
    for name in axes:
        if name == "t":
            selection.append(t)
        elif name == "z":
            selection.append(z)
        elif name == "c":
            selection.append(slice(min(channels), max(channels) + 1) if channels else slice(0, 1))
        elif name == "y":
            selection.append(slice(*rows))
        else:
            selection.append(slice(*columns))
    block = np.asarray(array[tuple(selection)])
    if "c" not in axes:
        return [block for _ in channels]
    low = min(channels) if channels else 0
    return [block[index - low] for index in channels]

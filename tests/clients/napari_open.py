"""Run by tests/test_volumes.py in .venv-napari (napari's own pins): open an OME-Zarr URL in a headless
napari viewer (Qt offscreen) with the napari-ome-zarr plugin, as a user's File > Open does, and print
what each layer holds, level by level: shape, dtype, scale and the sha256 of its pixels."""

from __future__ import annotations

import hashlib
import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import napari  # noqa: E402
import numpy as np  # noqa: E402


def main(url: str) -> None:
    viewer = napari.Viewer(show=False)
    layers = viewer.open(url, plugin="napari-ome-zarr")
    described = []
    for layer in layers:
        levels = layer.data if layer.multiscale else [layer.data]
        described.append(
            {
                "name": layer.name,
                "kind": type(layer).__name__,
                "scale": [float(s) for s in layer.scale],
                "levels": [
                    {
                        "shape": list(level.shape),
                        "dtype": str(level.dtype),
                        "sha256": hashlib.sha256(
                            np.ascontiguousarray(np.asarray(level)).tobytes()
                        ).hexdigest(),
                    }
                    for level in levels
                ],
            }
        )
    viewer.close()
    print(json.dumps(described))


if __name__ == "__main__":
    main(sys.argv[1])

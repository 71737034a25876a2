"""Neuroglancer's starting state for an image: pure data, turned into the viewer's URL fragment by the page.

Neuroglancer reads OME-Zarr 0.5 itself (its ``zarr3://`` data source: the multiscale levels, their scale
transforms and units, 3D chunks), so the state only names the sources and what a user expects to see first:
the image with the contrast of its first channel's window, its labels as segmentation layers (each object
in its colour, half transparent, as Neuroglancer draws them), and the four panels (xy, xz, yz, 3D).
"""

from __future__ import annotations

from typing import Any

from fairimage.model.study import Image


def neuroglancer_state(image: Image, zarr_url: str, labels: list[tuple[str, str]]) -> dict[str, Any]:
    """The state for ``image`` served at ``zarr_url``, with ``labels`` as (name, OME-Zarr URL) pairs."""
    layer: dict[str, Any] = {
        "type": "image",
        "name": image.name,
        "source": f"zarr3://{zarr_url.rstrip('/')}/",
    }
    window = image.channels[0].window if image.channels else None
    if window is not None and window.end > window.start:
        layer["shaderControls"] = {"normalized": {"range": [window.start, window.end]}}
    layers = [layer] + [
        {"type": "segmentation", "name": name, "source": f"zarr3://{url.rstrip('/')}/"}
        for name, url in labels
    ]
    return {"layers": layers, "layout": "4panel", "selectedLayer": {"layer": image.name, "visible": False}}

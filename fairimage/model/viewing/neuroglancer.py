"""Neuroglancer's starting state for an image: pure data, turned into the viewer's URL fragment by the page.

Neuroglancer reads OME-Zarr 0.5 itself (its ``zarr3://`` data source: the multiscale levels, their scale
transforms and units, 3D chunks), so the state only names the sources and what a user expects to see first:
the image with each channel's window, in its colour (the same as the other viewers: DAPI blue, GFP green), its
labels as segmentation layers (each object in its colour, half transparent, as Neuroglancer draws them), and
the four panels (xy, xz, yz, 3D).
"""

from __future__ import annotations

from typing import Any

from fairimage.model.study import Image
from fairimage.model.units import convert_length


def neuroglancer_state(image: Image, zarr_url: str, labels: list[tuple[str, str]]) -> dict[str, Any]:
    """The state for ``image`` served at ``zarr_url``, with ``labels`` as (name, OME-Zarr URL) pairs."""
    layer: dict[str, Any] = {
        "type": "image",
        "name": image.name,
        "source": f"zarr3://{zarr_url.rstrip('/')}/",
    }
    if "c" in image.axis_names and len(image.channels) > 1:
        image_layers = channel_layers(image, layer)
    else:
        window = image.channels[0].window if image.channels else None
        if window is not None and window.end > window.start:
            layer["shaderControls"] = {"normalized": {"range": [window.start, window.end]}}
        image_layers = [layer]
    layers = image_layers + [
        {"type": "segmentation", "name": name, "source": f"zarr3://{url.rstrip('/')}/"}
        for name, url in labels
    ]
    return {
        "layers": layers,
        "layout": "4panel",
        # Its default is the first three dimensions in the source's order (z, y, x): its "xy" panel would
        # show z across and y down. Display dimensions are looked up among the state's own dimensions.
        "dimensions": _dimensions(image),
        "displayDimensions": [name for name in "xyz" if name in image.axis_names],
        "selectedLayer": {"layer": image_layers[0]["name"], "visible": False},
    }


# Channels shown as layers of their own; more stay reachable by moving a layer's c' position.
CHANNEL_LAYERS = 8


def channel_layers(image: Image, layer: dict[str, Any]) -> list[dict[str, Any]]:
    """One layer per channel (the first ``CHANNEL_LAYERS``), added together as the 2D viewer composes
    them: each at its position along Neuroglancer's c' (OME-Zarr's channel axis, which it reads as a
    position, and which fairimage chunks one channel at a time, so it cannot be a shader's channel
    dimension), scaled by its window and tinted its colour (DAPI blue, GFP green), each adjustable in the
    layer panel."""
    layers = []
    for index, channel in enumerate(image.channels[:CHANNEL_LAYERS]):
        window = channel.window
        bounds = f"(range=[{window.start:g}, {window.end:g}])" if window and window.end > window.start else ""
        shader = (
            f"#uicontrol invlerp normalized{bounds}\n"
            f'#uicontrol vec3 colour color(default="#{channel.color.lower()}")\n'
            "void main() { emitRGB(colour * normalized()); }\n"
        )
        name = f"{image.name} [{channel.label}]"
        layers.append(layer | {"name": name, "localPosition": [index], "shader": shader, "blend": "additive"})
    return layers


def _dimensions(image: Image) -> dict[str, list[float | str]]:
    """The image's spatial dimensions as Neuroglancer names them: level 0's pixel size in metres (as
    its zarr3 source reads them from the OME-Zarr), or in pixels where the unit is not a length."""
    dimensions: dict[str, list[float | str]] = {}
    for axis, size in zip(image.axes, image.scale, strict=True):
        if axis.type != "space":
            continue
        try:
            dimensions[axis.name] = [convert_length(size, axis.unit or "", "meter"), "m"]
        except KeyError:
            dimensions[axis.name] = [size, ""]
    return dimensions

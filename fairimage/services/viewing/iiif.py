"""IIIF Image API 3.0 for stored images: the image information document and image requests, rendered by
the same renderer as tiles and thumbnails (so Mirador, OpenSeadragon and other IIIF clients see what the
viewer shows). Query parameters z, t, c, colors and window select the plane, as for ``/render``."""

from __future__ import annotations

from typing import Any

from fairimage.model.governance.policy import Principal
from fairimage.model.viewing.iiif import parse_request
from fairimage.model.viewing.render import MAX_OUTPUT_PIXELS, image_size, parse_plane
from fairimage.services.viewing.tiles import Picture, Renderer, RenderRequest

CONTEXT = "http://iiif.io/api/image/3/context.json"
MEDIA_TYPE = f'application/ld+json;profile="{CONTEXT}"'
TILE = 512


def info(renderer: Renderer, principal: Principal, image_id: str, service_url: str) -> dict[str, Any]:
    """The image information (``info.json``) for ``service_url`` (``.../iiif/3/{id}``)."""
    image, _ = renderer.image(principal, image_id)
    width, height = image_size(image, "x"), image_size(image, "y")
    levels = [(level.shape[-1], level.shape[-2]) for level in image.levels]
    factors = [2**index for index in range(len(levels))]
    # Below the stored pyramid the renderer still downsamples the smallest level, cheaply.
    while max(width, height) / factors[-1] > TILE:
        factors.append(factors[-1] * 2)
    return {
        "@context": CONTEXT,
        "id": service_url,
        "type": "ImageService3",
        "protocol": "http://iiif.io/api/image",
        "profile": "level2",
        "width": width,
        "height": height,
        "maxArea": MAX_OUTPUT_PIXELS,
        "sizes": [{"width": w, "height": h} for w, h in reversed(levels) if w * h <= MAX_OUTPUT_PIXELS],
        "tiles": [{"width": TILE, "height": TILE, "scaleFactors": factors}],
        "preferredFormats": ["png", "jpg"],
        "extraFormats": ["webp"],
        "extraQualities": ["color", "gray", "bitonal"],
        "extraFeatures": ["mirroring", "sizeUpscaling", "regionSquare", "rotationBy90s", "baseUriRedirect"],
    }


def image(
    renderer: Renderer,
    principal: Principal,
    image_id: str,
    segments: tuple[str, str, str, str],
    plane_query: dict[str, Any],
    if_none_match: str | None = None,
) -> Picture:
    """``{region}/{size}/{rotation}/{quality}.{format}`` of one image."""
    stored, policy = renderer.image(principal, image_id)
    width, height = image_size(stored, "x"), image_size(stored, "y")
    request = parse_request(*segments, width, height)
    plane = parse_plane(stored, **plane_query)
    render = RenderRequest(
        plane,
        request.region,
        request.width,
        request.height,
        format=request.format,
        quality=request.quality,
        rotation=request.rotation,
        mirror=request.mirror,
    )
    return renderer.picture(policy, stored, render, if_none_match)

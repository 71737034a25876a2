"""IIIF Image API 3.0 requests, parsed and checked against an image's size (compliance level 2:
every region and size form, upscaling with ``^``, rotation by multiples of 90 with ``!`` mirroring, the
qualities default/color/gray/bitonal, jpg/png/webp). Pure: the service renders what this describes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from fairimage.model.errors import InvalidInputError
from fairimage.model.viewing.render import MAX_OUTPUT_PIXELS, Region

QUALITIES = ("default", "color", "gray", "bitonal")
FORMATS = {"jpg": "jpeg", "png": "png", "webp": "webp"}
ROTATIONS = (0, 90, 180, 270)
_NUMBER = r"\d+(?:\.\d+)?"


@dataclass(frozen=True)
class ImageRequest:
    """What to cut out (level-0 pixels), how large to make it, and how to turn and tone it."""

    region: Region
    width: int
    height: int
    rotation: int
    mirror: bool
    quality: str
    format: str  # a Pillow/``model.render`` format name: jpeg, png, webp


def parse_request(
    region: str, size: str, rotation: str, quality_format: str, width: int, height: int
) -> ImageRequest:
    """Check and resolve the four path segments of an image request for a ``width`` x ``height`` image."""
    box = parse_region(region, width, height)
    out_width, out_height = parse_size(size, box)
    degrees, mirror = parse_rotation(rotation)
    quality, _, extension = quality_format.rpartition(".")
    if quality not in QUALITIES:
        raise InvalidInputError(f"IIIF quality {quality!r}: use one of {', '.join(QUALITIES)}")
    if extension not in FORMATS:
        raise InvalidInputError(f"IIIF format {extension!r}: use one of {', '.join(FORMATS)}")
    return ImageRequest(box, out_width, out_height, degrees, mirror, quality, FORMATS[extension])


def parse_region(text: str, width: int, height: int) -> Region:
    if text == "full":
        return Region(0, 0, width, height)
    if text == "square":
        side = min(width, height)
        return Region((width - side) // 2, (height - side) // 2, side, side)
    percent = text.startswith("pct:")
    numbers = _numbers(text.removeprefix("pct:"), 4, "region", allow_float=percent)
    if percent:
        x, y = numbers[0] * width / 100, numbers[1] * height / 100
        w, h = numbers[2] * width / 100, numbers[3] * height / 100
        numbers = [round(x), round(y), round(w), round(h)]
    x, y, w, h = (int(n) for n in numbers)
    if w <= 0 or h <= 0 or x >= width or y >= height:
        raise InvalidInputError(
            f"IIIF region {text!r}: must have a positive size and start inside the {width}x{height} image"
        )
    return Region(x, y, min(w, width - x), min(h, height - y))


def parse_size(text: str, region: Region) -> tuple[int, int]:
    upscale = text.startswith("^")
    body = text.removeprefix("^")
    w, h = region.width, region.height
    if body == "max":
        factor = min(1.0, math.sqrt(MAX_OUTPUT_PIXELS / (w * h)))
        size = max(1, int(w * factor)), max(1, int(h * factor))
    elif body.startswith("pct:"):
        (percent,) = _numbers(body[4:], 1, "size", allow_float=True)
        size = max(1, round(w * percent / 100)), max(1, round(h * percent / 100))
    elif body.startswith("!"):
        box_w, box_h = (int(n) for n in _numbers(body[1:], 2, "size"))
        factor = min(box_w / w, box_h / h)
        size = max(1, round(w * factor)), max(1, round(h * factor))
    else:
        match = re.fullmatch(r"(\d*),(\d*)", body)
        if match is None or not (match[1] or match[2]):
            raise InvalidInputError(f"IIIF size {text!r}: use max, w,, ,h, w,h, !w,h or pct:n")
        if match[1] and match[2]:
            size = int(match[1]), int(match[2])
        elif match[1]:
            size = int(match[1]), max(1, round(h * int(match[1]) / w))
        else:
            size = max(1, round(w * int(match[2]) / h)), int(match[2])
    if size[0] <= 0 or size[1] <= 0:
        raise InvalidInputError(f"IIIF size {text!r}: width and height must be positive")
    if not upscale and (size[0] > w or size[1] > h):
        raise InvalidInputError(
            f"IIIF size {text!r}: larger than the {w}x{h} region; prefix it with ^ to ask for upscaling"
        )
    if size[0] * size[1] > MAX_OUTPUT_PIXELS:
        raise InvalidInputError(f"IIIF size {text!r}: more than the maxArea of {MAX_OUTPUT_PIXELS} pixels")
    return size


def parse_rotation(text: str) -> tuple[int, bool]:
    mirror = text.startswith("!")
    (degrees,) = _numbers(text.removeprefix("!"), 1, "rotation", allow_float=True)
    if degrees not in ROTATIONS:
        raise InvalidInputError(f"IIIF rotation {text!r}: this server rotates by 0, 90, 180 or 270 degrees")
    return int(degrees), mirror


def _numbers(text: str, count: int, what: str, allow_float: bool = False) -> list[float]:
    pattern = _NUMBER if allow_float else r"\d+"
    parts = text.split(",")
    if len(parts) != count or not all(re.fullmatch(pattern, part) for part in parts):
        raise InvalidInputError(f"IIIF {what} {text!r}: expected {count} non-negative number(s)")
    return [float(part) for part in parts]

"""Deep Zoom geometry: which full-resolution region a tile of a Deep Zoom level covers (levels run from
0, a single pixel, to ``top``, the full resolution, each half the size of the next)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fairimage.model.errors import InvalidInputError
from fairimage.model.viewing.render import Region

DEEPZOOM_TILE = 254
DEEPZOOM_OVERLAP = 1


@dataclass(frozen=True)
class DeepZoom:
    """The Deep Zoom pyramid of an image: levels 0 (1x1) to ``top`` (full resolution)."""

    width: int
    height: int
    tile: int = DEEPZOOM_TILE
    overlap: int = DEEPZOOM_OVERLAP

    @property
    def top(self) -> int:
        return math.ceil(math.log2(max(self.width, self.height))) if max(self.width, self.height) > 1 else 0

    def descriptor(self, format: str) -> str:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" TileSize="{self.tile}" '
            f'Overlap="{self.overlap}" Format="{format}"><Size Width="{self.width}" Height="{self.height}"/>'
            "</Image>\n"
        )

    def tile_region(self, level: int, column: int, row: int) -> tuple[Region, int, int]:
        """The level-0 region of a tile and the tile's size in pixels; InvalidInputError outside."""
        if not 0 <= level <= self.top:
            raise InvalidInputError(f"Deep Zoom level {level}: levels are 0 to {self.top}")
        scale = 2 ** (self.top - level)
        level_width, level_height = math.ceil(self.width / scale), math.ceil(self.height / scale)
        x0 = column * self.tile - (self.overlap if column else 0)
        y0 = row * self.tile - (self.overlap if row else 0)
        if column < 0 or row < 0 or x0 >= level_width or y0 >= level_height:
            raise InvalidInputError(f"Deep Zoom tile {column}_{row} is outside level {level}")
        x1 = min(level_width, (column + 1) * self.tile + self.overlap)
        y1 = min(level_height, (row + 1) * self.tile + self.overlap)
        region = Region(
            x0 * scale,
            y0 * scale,
            min(self.width - x0 * scale, (x1 - x0) * scale),
            min(self.height - y0 * scale, (y1 - y0) * scale),
        )
        return region, x1 - x0, y1 - y0

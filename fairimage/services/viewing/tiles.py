"""Rendered pictures of stored images: thumbnails, rendered regions, Deep Zoom tiles and (viewing/iiif)
IIIF images, all made by one renderer.

The renderer reads only the pyramid level whose resolution matches the requested size (a thumbnail never
decodes level 0), composes channels as the viewer does (``model.render.compose``), and keeps what it made
in a bounded in-memory cache. Stored pixels never change, so a picture's ETag is a hash of the image id and
the canonical request, and a repeated request is a cache hit or a 304. Every entry point asks the access
service first, exactly like the zarr keys do.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
from PIL import Image as PILImage

from fairimage.catalog import queries
from fairimage.catalog.tables import PlateRow
from fairimage.model.errors import InvalidInputError, NotFoundError
from fairimage.model.governance.policy import Principal, StudyPolicy
from fairimage.model.image import level_plane, voxel_depth
from fairimage.model.study import Image
from fairimage.model.viewing.deepzoom import DeepZoom
from fairimage.model.viewing.render import (
    Cut,
    Plane,
    Region,
    check_output_size,
    choose_level,
    compose,
    default_plane,
    fit_size,
    image_size,
    media_type,
    parse_cut,
    parse_plane,
    parse_region,
)
from fairimage.ngff.chunks import thread_count
from fairimage.ngff.reader import Lru, open_level, read_region
from fairimage.services.discovery import images
from fairimage.services.governance import access
from fairimage.services.repository import Repository
from fairimage.storage import layout

RENDER_VERSION = "1"  # part of every ETag: bump when the same request would render differently
THUMBNAIL_SIZES = range(16, 1025)


@dataclass(frozen=True)
class Picture:
    """Rendered bytes with what HTTP needs to send and cache them."""

    content: bytes
    media_type: str
    etag: str
    cache_control: str
    not_modified: bool = False


@dataclass(frozen=True)
class RenderRequest:
    """A plane's region at an output size, with the finishing touches IIIF can ask for."""

    plane: Plane
    region: Region
    width: int
    height: int
    format: str = "png"
    quality: str = "default"
    rotation: int = 0
    mirror: bool = False
    cut: Cut | None = None  # an xz or yz view (``region`` is then the whole cut plane); None: the xy plane

    def key(self) -> str:
        flip = "!" if self.mirror else ""
        view = f"{self.cut.key()}/" if self.cut is not None else ""
        return (
            f"{view}{self.plane.key()}/{self.region.key()}/{self.width}x{self.height}/"
            f"{flip}{self.rotation}/{self.quality}.{self.format}"
        )


# Decoded chunks each server process keeps (a 512 x 1024 uint16 chunk is 1 MiB): neighbouring tiles mostly
# lie in chunks a tile next to them has decoded.
CHUNK_CACHE_BYTES = 256 << 20


class Renderer:
    """Renders pictures of one repository's images; one per app (``app.state.renderer``)."""

    def __init__(self, repository: Repository, cache_bytes: int = 256 << 20) -> None:
        self.repository = repository
        self._pictures = Lru(cache_bytes)
        self._chunks = Lru(CHUNK_CACHE_BYTES, size=lambda chunk: chunk.nbytes)  # decoded, by level and cell
        self._arrays = Lru(256, size=lambda _: 1)
        self._images = Lru(1024, size=lambda _: 1)

    def image(self, principal: Principal, image_id: str) -> tuple[Image, StudyPolicy]:
        """The image and its study's policy after the access check; the image's (immutable) metadata is
        cached between requests, the access decision never is."""
        policy = access.check_image(self.repository, principal, image_id)
        image = self._images.get(image_id)
        if image is None:
            image = images.get_image(self.repository, principal, image_id)
            self._images.put(image_id, image)
        return image, policy

    def answers_from_memory(self, image_id: str) -> bool:
        """Whether a tile of the image can be made without waiting on anything but its own pixels: its
        metadata and access decision are in memory and its chunks in a local folder (an event loop may
        then render a small tile inline; a thread hop costs more than the tile)."""
        return self._images.get(image_id) is not None and access.answers_from_memory(
            self.repository, image_id, "zarr.json"
        )

    def picture(
        self, policy: StudyPolicy, image: Image, request: RenderRequest, if_none_match: str | None = None
    ) -> Picture:
        """The rendered picture, from the cache when the same request was rendered before; with
        ``not_modified`` and no content when ``if_none_match`` already names it."""
        key = f"{image.id}/{request.key()}"
        etag = '"' + hashlib.sha256(f"{RENDER_VERSION}/{key}".encode()).hexdigest()[:32] + '"'
        cache_control = access.cache_control(policy)
        kind = media_type(request.format)
        if if_none_match is not None and etag in (tag.strip() for tag in if_none_match.split(",")):
            return Picture(b"", kind, etag, cache_control, not_modified=True)
        content = self._pictures.get(key)
        if content is None:
            content = self._render(image, request)
            self._pictures.put(key, content)
        return Picture(content, kind, etag, cache_control)

    def _render(self, image: Image, request: RenderRequest) -> bytes:
        pixels = self._pixels(image, request)
        picture = PILImage.fromarray(pixels, "RGB")
        picture = _finish(picture, request)
        return _encode(picture, request.format)

    def pixels(self, image: Image, request: RenderRequest) -> np.ndarray:
        """The RGB pixels of ``request`` (no access check: the caller has made it)."""
        return self._pixels(image, request)

    def _pixels(self, image: Image, request: RenderRequest) -> np.ndarray:
        """The composed RGB region at the level nearest above the output size, resized to the output."""
        if request.cut is not None:
            return self._cut_pixels(image, request, request.cut)
        region, plane = request.region, request.plane
        widths = [level.shape[-1] for level in image.levels]
        heights = [level.shape[-2] for level in image.levels]
        index = min(
            choose_level(widths, region.width, request.width),
            choose_level(heights, region.height, request.height),
        )
        # A volume's level that halved z alone has the pixels of the one above it, and fewer planes.
        while index and (widths[index - 1], heights[index - 1]) == (widths[index], heights[index]):
            index -= 1
        fy, fx = heights[0] / heights[index], widths[0] / widths[index]
        rows = (int(region.y / fy), min(heights[index], max(1, math.ceil((region.y + region.height) / fy))))
        columns = (int(region.x / fx), min(widths[index], max(1, math.ceil((region.x + region.width) / fx))))
        if not plane.channels:
            composed = np.zeros((rows[1] - rows[0], columns[1] - columns[0], 3), np.uint8)
        else:
            array = self.level(image, index)
            planes = read_region(
                array,
                image.axis_names,
                [channel.index for channel in plane.channels],
                level_plane(image.levels[0].shape, image.levels[index].shape, image.axis_names, plane.z),
                plane.t,
                rows,
                columns,
                chunks=(self._chunks, (image.id, index)),
            )
            composed = compose(planes, plane.channels)
        return _resized(composed, request)

    def _cut_pixels(self, image: Image, request: RenderRequest, cut: Cut) -> np.ndarray:
        """An xz or yz plane through every z, from the coarsest level with enough pixels across and planes
        down (a volume's lower levels have fewer planes), z stretched to the voxels' depth."""
        axes, plane = image.axis_names, request.plane
        across = [level.shape[axes.index(cut.across)] for level in image.levels]
        depths = [level.shape[axes.index("z")] if "z" in axes else 1 for level in image.levels]
        planes_needed = math.ceil(request.height * depths[0] / request.region.height)
        index = min(
            choose_level(across, across[0], request.width), choose_level(depths, depths[0], planes_needed)
        )
        level = image.levels[index]
        at = level_plane(image.levels[0].shape, level.shape, axes, cut.at, axis=cut.axis)
        if not plane.channels:
            return np.zeros((request.height, request.width, 3), np.uint8)
        indices = [channel.index for channel in plane.channels]
        selection = tuple(
            plane.t if name == "t" else at if name == cut.axis else
            slice(min(indices), max(indices) + 1) if name == "c" else slice(None)
            for name in axes
        )  # fmt: skip
        block = np.asarray(self.level(image, index)[selection])  # (c,) z, across
        if "z" not in axes:
            block = np.expand_dims(block, -2)  # a 2D image's one row or column
        planes = [block[i - min(indices)] for i in indices] if "c" in axes else [block for _ in indices]
        return _resized(compose(planes, plane.channels), request)

    def kept(self, key: str, make: Callable[[], bytes]) -> bytes:
        """The picture kept under ``key``, made (and kept) when it is not."""
        content = self._pictures.get(key)
        if content is None:
            content = make()
            self._pictures.put(key, content)
        return content

    def mosaic(self, rows: int, columns: int, placed: list[tuple[int, int, Image]], size: int) -> bytes:
        """A PNG of ``rows`` x ``columns`` cells, each image of ``placed`` (row, column, image) fitted into
        its cell's ``size`` x ``size``, centred; images rendered on several threads."""
        cell = size + OVERVIEW_GAP
        canvas = np.full((rows * cell, columns * cell, 3), 12, np.uint8)  # the gaps between wells
        inside = np.zeros(cell, bool)
        inside[OVERVIEW_GAP // 2 : OVERVIEW_GAP // 2 + size] = True
        wells = np.tile(inside, rows)[:, None] & np.tile(inside, columns)[None, :]
        canvas[wells] = 40  # every well, imaged or not, a dark square

        def draw(item: tuple[int, int, Image]) -> None:
            row, column, image = item
            box = parse_region(None, image_size(image, "x"), image_size(image, "y"))
            width, height = fit_size(box, size)
            pixels = self._pixels(image, RenderRequest(default_plane(image), box, width, height, "png"))
            top = row * cell + OVERVIEW_GAP // 2 + (size - height) // 2
            left = column * cell + OVERVIEW_GAP // 2 + (size - width) // 2
            canvas[top : top + height, left : left + width] = pixels

        with ThreadPoolExecutor(max_workers=2 * thread_count(), thread_name_prefix="overview") as pool:
            list(pool.map(draw, placed))
        return _encode(PILImage.fromarray(canvas, "RGB"), "png")

    def level(self, image: Image, index: int) -> zarr.Array:
        """The image's pyramid level ``index``, opened once per process."""
        array = self._arrays.get((image.id, index))
        if array is None:
            path = image.levels[index].path
            zarr_store = self.repository.image_root(image.id).zarr_store(path, read_only=True)
            array = open_level(zarr_store, f"image {image.id} level {path}")
            self._arrays.put((image.id, index), array)
        return array


def render(
    renderer: Renderer,
    principal: Principal,
    image_id: str,
    plane_query: dict[str, Any],
    region: str | None = None,
    size: int | None = None,
    level: int | None = None,
    format: str = "png",
    if_none_match: str | None = None,
) -> Picture:
    """``GET /api/images/{id}/render``: a region (level-0 pixels, default the whole image) of one plane,
    either fitted into ``size`` x ``size`` or at pyramid ``level`` (default: fitted into 1024)."""
    image, policy = renderer.image(principal, image_id)
    plane = parse_plane(image, **plane_query)
    box = parse_region(region, image_size(image, "x"), image_size(image, "y"))
    if level is not None:
        if not 0 <= level < len(image.levels):
            raise InvalidInputError(f"level={level}: this image has levels 0 to {len(image.levels) - 1}")
        factor = 2**level
        width, height = max(1, math.ceil(box.width / factor)), max(1, math.ceil(box.height / factor))
    else:
        width, height = fit_size(box, size or 1024)
    check_output_size(width, height)
    media_type(format)
    request = RenderRequest(plane, box, width, height, format)
    return renderer.picture(policy, image, request, if_none_match)


def thumbnail(
    renderer: Renderer,
    principal: Principal,
    image_id: str,
    size: int = 256,
    format: str = "png",
    if_none_match: str | None = None,
) -> Picture:
    """The whole image, middle z, first t, default channels, fitted into ``size`` x ``size``."""
    if size not in THUMBNAIL_SIZES:
        raise InvalidInputError(f"size={size}: thumbnails are 16 to 1024 pixels")
    image, policy = renderer.image(principal, image_id)
    box = parse_region(None, image_size(image, "x"), image_size(image, "y"))
    width, height = fit_size(box, size)
    media_type(format)
    request = RenderRequest(default_plane(image), box, width, height, format)
    return renderer.picture(policy, image, request, if_none_match)


OVERVIEW_SIZES = range(8, 129)
OVERVIEW_GAP = 2  # pixels between two wells of a plate overview
DENSE_PLATE_WELLS = 384  # plates of more wells are shown as one overview picture, not a thumbnail a well
DENSE_WELL_SIZE = 22  # pixels a well of a dense plate's page: 1536 wells still fit a screen


def page_overview_size(rows: int, columns: int) -> int | None:
    """The well size of the overview a plate's page shows, or None where it shows thumbnails."""
    return DENSE_WELL_SIZE if rows * columns > DENSE_PLATE_WELLS else None


def plate_overview(
    renderer: Renderer, principal: Principal, plate_id: str, size: int = 24, if_none_match: str | None = None
) -> Picture:
    """Every well of a plate in one PNG: each well's first field fitted into ``size`` x ``size`` (from its
    lowest pyramid level that is large enough, like a thumbnail), in the plate's grid of cells of
    ``size + OVERVIEW_GAP`` pixels, dark where a well has no image. One request and one access check for
    the whole plate, where thumbnails would be one per well (1536 for a 1536-well plate)."""
    if size not in OVERVIEW_SIZES:
        raise InvalidInputError(f"size={size}: a plate overview has wells of 8 to 128 pixels")
    policy = access.check_plate(renderer.repository, principal, plate_id)
    tag = hashlib.sha256(f"{RENDER_VERSION}/{plate_id}/overview/{size}".encode()).hexdigest()[:32]
    etag = f'"{tag}"'
    cache_control = access.cache_control(policy)
    if if_none_match is not None and etag in (tag.strip() for tag in if_none_match.split(",")):
        return Picture(b"", "image/png", etag, cache_control, not_modified=True)
    return Picture(_overview(renderer, plate_id, size), "image/png", etag, cache_control)


def keep_page_overview(repository: Repository, plate_id: str) -> bool:
    """Draw and keep the overview a dense plate's page shows, so that its first visitor does not wait for
    it (a 1536-well plate reads 1536 fields); False where the page shows thumbnails instead. Called once a
    plate is published; no bytes leave the server here, so no access check."""
    with repository.reading() as session:
        plate = session.get(PlateRow, plate_id)
        size = page_overview_size(len(plate.rows), len(plate.columns)) if plate is not None else None
    if size is None:
        return False
    _overview(Renderer(repository, cache_bytes=0), plate_id, size)
    return True


def _overview(renderer: Renderer, plate_id: str, size: int) -> bytes:
    """The overview from memory, else from the store (drawn once, kept for every process and restart),
    else drawn on several threads and kept in both."""
    store = renderer.repository.store
    key = layout.rendering_key(plate_id, f"overview-{size}.r{RENDER_VERSION}.png")

    def draw() -> bytes:
        try:
            return store.read(key)
        except NotFoundError:
            pass
        with renderer.repository.reading() as session:
            rows, columns, fields = queries.plate_first_fields(session, plate_id)
            placed = [
                (rows.index(str(f.well_row)), columns.index(str(f.well_column)), images.to_image(f))
                for f in fields
            ]
        content = renderer.mosaic(len(rows), len(columns), placed, size)
        store.write(key, content)
        return content

    return renderer.kept(f"{plate_id}/overview/{size}", draw)


def deepzoom(renderer: Renderer, principal: Principal, image_id: str, format: str = "png") -> str:
    """The ``.dzi`` descriptor; tiles come from ``deepzoom_tile`` with the same plane settings."""
    image, _policy = renderer.image(principal, image_id)
    media_type(format)
    return DeepZoom(image_size(image, "x"), image_size(image, "y")).descriptor(format)


def deepzoom_tile(
    renderer: Renderer,
    principal: Principal,
    image_id: str,
    level: int,
    column: int,
    row: int,
    format: str,
    plane_query: dict[str, Any],
    if_none_match: str | None = None,
) -> Picture:
    image, policy = renderer.image(principal, image_id)
    pyramid = DeepZoom(image_size(image, "x"), image_size(image, "y"))
    region, width, height = pyramid.tile_region(level, column, row)
    media_type(format)
    plane = parse_plane(image, **plane_query)
    request = RenderRequest(plane, region, width, height, format)
    return renderer.picture(policy, image, request, if_none_match)


def _resized(composed: np.ndarray, request: RenderRequest) -> np.ndarray:
    """RGB pixels at the output size: bilinear when shrinking, nearest when enlarging (pixels stay
    pixels, as viewers show them)."""
    if composed.shape[:2] == (request.height, request.width):
        return composed
    enlarging = request.width > composed.shape[1]
    resample = PILImage.Resampling.NEAREST if enlarging else PILImage.Resampling.BILINEAR
    resized = PILImage.fromarray(composed, "RGB").resize((request.width, request.height), resample)
    return np.asarray(resized)


def orthogonal(
    renderer: Renderer,
    principal: Principal,
    image_id: str,
    view: str,
    at: int | None,
    plane_query: dict[str, Any],
    size: int = 1024,
    format: str = "png",
    if_none_match: str | None = None,
) -> Picture:
    """``GET /api/images/{id}/orthogonal``: the xz plane at a row (or yz at a column) of a 3D image through
    every z, z downwards and stretched to the voxels' depth (30 nm sections of 4 nm pixels: 7.5 rows a
    plane), fitted into ``size`` x ``size``; channels as ``render`` composes them (``z`` is not used)."""
    image, policy = renderer.image(principal, image_id)
    cut = parse_cut(image, view, at)
    plane = parse_plane(image, **plane_query)
    depth = image_size(image, "z") * voxel_depth(image.scale, image.axes)
    box = Region(0, 0, image_size(image, cut.across), max(1, round(depth)))
    width, height = fit_size(box, size)
    media_type(format)
    request = RenderRequest(plane, box, width, height, format, cut=cut)
    return renderer.picture(policy, image, request, if_none_match)


def _finish(picture: PILImage.Image, request: RenderRequest) -> PILImage.Image:
    """IIIF's order: mirror, rotate clockwise, then quality."""
    if request.mirror:
        picture = picture.transpose(PILImage.Transpose.FLIP_LEFT_RIGHT)
    turns = {
        90: PILImage.Transpose.ROTATE_270,
        180: PILImage.Transpose.ROTATE_180,
        270: PILImage.Transpose.ROTATE_90,
    }
    if request.rotation in turns:
        picture = picture.transpose(turns[request.rotation])
    if request.quality == "gray":
        picture = picture.convert("L")
    elif request.quality == "bitonal":
        picture = picture.convert("L").point(lambda value: 255 if value >= 128 else 0).convert("1")
    return picture


def _encode(picture: PILImage.Image, format: str) -> bytes:
    buffer = io.BytesIO()
    if format == "png":
        picture.save(buffer, "PNG", compress_level=2)
    elif format in ("jpeg", "jpg"):
        picture.save(buffer, "JPEG", quality=90)
    else:
        picture.save(buffer, "WEBP", quality=90)
    return buffer.getvalue()

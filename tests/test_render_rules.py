"""The pure rules behind rendered pictures: channel composition, query parsing, level choice, IIIF request
parsing and Deep Zoom geometry."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from fairimage.model.errors import InvalidInputError
from fairimage.model.image import Axis, Channel, Window
from fairimage.model.study import Image, Level, OriginalFile
from fairimage.model.viewing.deepzoom import DeepZoom
from fairimage.model.viewing.iiif import parse_request
from fairimage.model.viewing.render import (
    ChannelRendering,
    Region,
    choose_level,
    compose,
    default_plane,
    parse_plane,
)
from fairimage.ngff.reader import read_region


def _image(axes: str = "czyx", shape: tuple[int, ...] = (3, 5, 64, 96), dtype: str = "uint16") -> Image:
    channels = tuple(
        Channel(label=f"ch{i}", color=color, window=Window(start=10.0 * i, end=1000.0, min=0.0, max=2000.0))
        for i, color in enumerate(
            ["FF0000", "00FF00", "0000FF"][: shape[axes.index("c")] if "c" in axes else 1]
        )
    )
    return Image(
        id="img-1",
        name="x",
        study_id="s",
        study_name="s",
        original_file=OriginalFile(id="f", name="x.tif", format="tiff", size=1, sha256="0" * 64),
        series_index=0,
        axes=tuple(Axis(name=n, type="channel" if n == "c" else "space") for n in axes),
        shape=shape,
        dtype=dtype,
        source_dtype=dtype,
        scale=(1.0,) * len(axes),
        channels=channels,
        levels=(Level(path="0", shape=shape, chunks=shape, scale=(1.0,) * len(axes)),),
        stored_bytes=1,
        object_count=1,
        created_at=datetime.now(UTC),
    )


def test_compose_adds_coloured_channels_scaled_to_their_windows() -> None:
    red = np.array([[0, 50, 100, 200]], np.uint16)
    green = np.array([[100, 100, 0, 0]], np.uint16)
    channels = (ChannelRendering(0, "FF0000", 0, 100), ChannelRendering(1, "00FF80", 0, 200))
    rgb = compose([red, green], channels)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 4, 3)
    assert rgb[0, :, 0].tolist() == [0, 128, 255, 255]  # clipped above the window's end
    assert rgb[0, :, 1].tolist() == [128, 128, 0, 0]
    assert rgb[0, :, 2].tolist() == [64, 64, 0, 0]  # 0x80 of green's half intensity


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_one_channel_looked_up_gives_the_bytes_of_the_computation(dtype: type) -> None:
    """One 8 or 16-bit channel is drawn from a table of every value; two channels are computed. A plane
    composed with a zero plane in black is the same plane computed, so the two paths must agree."""
    rng = np.random.default_rng(7)
    top = np.iinfo(dtype).max
    for start, end, color in ((3.0, top / 3, "FFFFFF"), (-20.0, 900.0, "FF8000"), (50.0, 50.0, "00FF7F")):
        plane = rng.integers(0, top + 1, (33, 47)).astype(dtype)
        channel = ChannelRendering(0, color, start, end)
        black = ChannelRendering(1, "000000", 0.0, 1.0)
        looked_up = compose([plane], (channel,))
        computed = compose([plane, np.zeros_like(plane)], (channel, black))
        assert looked_up.dtype == np.uint8 and looked_up.shape == (33, 47, 3)
        assert np.array_equal(looked_up, computed), (start, end, color)


def test_compose_of_overlapping_colours_saturates_instead_of_wrapping() -> None:
    plane = np.full((2, 2), 1000, np.uint16)
    rgb = compose(
        [plane, plane], (ChannelRendering(0, "FFFFFF", 0, 1000), ChannelRendering(1, "FFFFFF", 0, 1000))
    )
    assert (rgb == 255).all()


def test_default_plane_is_middle_z_first_t_every_channel_in_its_window() -> None:
    plane = default_plane(_image())
    assert (plane.z, plane.t) == (2, 0)
    assert [(c.index, c.color, c.start, c.end) for c in plane.channels] == [
        (0, "FF0000", 0.0, 1000.0),
        (1, "00FF00", 10.0, 1000.0),
        (2, "0000FF", 20.0, 1000.0),
    ]


def test_parse_plane_reads_channels_colours_and_windows_in_the_order_of_c() -> None:
    plane = parse_plane(_image(), z=4, channels="2,0", colors="ffffff,#00ff00", windows="5:50,1:2")
    assert plane.z == 4
    assert [(c.index, c.color, c.start, c.end) for c in plane.channels] == [
        (2, "FFFFFF", 5.0, 50.0),
        (0, "00FF00", 1.0, 2.0),
    ]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"z": 5}, "z=5: this image has z from 0 to 4"),
        ({"channels": "0,3"}, "c=3: this image has c from 0 to 2"),
        ({"channels": "0,x"}, "c: 'x' is not a whole number"),
        ({"channels": "0,1", "colors": "FF0000"}, "give 2 value(s), one per channel in c"),
        ({"channels": "0", "colors": "red"}, "'red' is not a colour; write RRGGBB"),
        ({"channels": "0", "windows": "9:3"}, "needs a finite start below its end"),
        ({"channels": "0", "windows": "a-b"}, "is not start:end"),
    ],
)
def test_parse_plane_errors_name_the_parameter_and_the_fix(query: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_plane(_image(), **query)  # type: ignore[arg-type]


def test_choose_level_takes_the_coarsest_level_that_still_has_enough_pixels() -> None:
    widths = [4096, 2048, 1024, 512]
    assert choose_level(widths, 4096, 256) == 3  # a thumbnail never reads level 0
    assert choose_level(widths, 4096, 600) == 2
    assert choose_level(widths, 512, 512) == 0  # a full-resolution tile reads level 0
    assert choose_level(widths, 512, 256) == 1
    assert choose_level(widths, 4096, 4096) == 0


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        (("full", "max", "0", "default.png"), (Region(0, 0, 400, 300), 400, 300, 0, False, "default", "png")),
        (
            ("square", "100,", "90", "gray.jpg"),
            (Region(50, 0, 300, 300), 100, 100, 90, False, "gray", "jpeg"),
        ),
        (
            ("10,20,100,50", ",25", "!180", "color.webp"),
            (Region(10, 20, 100, 50), 50, 25, 180, True, "color", "webp"),
        ),
        (
            ("pct:50,50,50,50", "pct:50", "0", "bitonal.png"),
            (Region(200, 150, 200, 150), 100, 75, 0, False, "bitonal", "png"),
        ),
        (
            ("350,250,100,100", "!20,40", "270", "default.png"),
            (Region(350, 250, 50, 50), 20, 20, 270, False, "default", "png"),
        ),
        (
            ("full", "^800,", "0", "default.png"),
            (Region(0, 0, 400, 300), 800, 600, 0, False, "default", "png"),
        ),
        (("full", "40,40", "0", "default.png"), (Region(0, 0, 400, 300), 40, 40, 0, False, "default", "png")),
    ],
)
def test_iiif_requests_resolve_to_a_region_size_and_finish(
    segments: tuple[str, str, str, str], expected: tuple
) -> None:
    request = parse_request(*segments, 400, 300)
    got = (
        request.region,
        request.width,
        request.height,
        request.rotation,
        request.mirror,
        request.quality,
        request.format,
    )
    assert got == expected


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        (("400,0,10,10", "max", "0", "default.png"), "must have a positive size and start inside"),
        (("0,0,0,10", "max", "0", "default.png"), "must have a positive size"),
        (("full", "800,", "0", "default.png"), "prefix it with \\^ to ask for upscaling"),
        (("full", "max", "45", "default.png"), "rotates by 0, 90, 180 or 270"),
        (("full", "max", "0", "sepia.png"), "quality 'sepia'"),
        (("full", "max", "0", "default.gif"), "format 'gif'"),
        (("full", "big", "0", "default.png"), "use max, w,, ,h"),
        (("1,2,3", "max", "0", "default.png"), "expected 4 non-negative number"),
    ],
)
def test_iiif_errors_say_what_is_wrong(segments: tuple[str, str, str, str], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_request(*segments, 400, 300)


def test_deepzoom_levels_tile_the_image_exactly_with_overlap() -> None:
    pyramid = DeepZoom(1000, 600, tile=254, overlap=1)
    assert pyramid.top == 10
    region, width, height = pyramid.tile_region(10, 0, 0)
    assert (region, width, height) == (Region(0, 0, 255, 255), 255, 255)
    region, width, height = pyramid.tile_region(10, 1, 1)
    assert (region, width, height) == (Region(253, 253, 256, 256), 256, 256)
    region, width, height = pyramid.tile_region(10, 3, 2)  # the last column and row are cut by the edge
    assert (region, width, height) == (Region(761, 507, 239, 93), 239, 93)
    region, width, height = pyramid.tile_region(9, 0, 0)  # half resolution: 500x300 at level 9
    assert (width, height) == (255, 255) and region == Region(0, 0, 510, 510)
    region, width, height = pyramid.tile_region(0, 0, 0)
    assert (width, height) == (1, 1) and region == Region(0, 0, 1000, 600)
    # every column of the top level together covers the width once, overlaps aside
    columns = [pyramid.tile_region(10, c, 0)[0] for c in range(4)]
    assert columns[-1].x + columns[-1].width == 1000
    with pytest.raises(InvalidInputError, match="outside level 10"):
        pyramid.tile_region(10, 4, 0)
    with pytest.raises(InvalidInputError, match="levels are 0 to 10"):
        pyramid.tile_region(11, 0, 0)


class _Kept(dict[Any, Any]):
    """A cache that keeps everything (the renderer's is an LRU bounded in bytes)."""

    def put(self, key: Any, value: Any) -> None:
        self[key] = value


@pytest.mark.parametrize(
    "axes, shape, chunks, channels, rows, columns",
    [
        ("cyx", (3, 300, 500), (1, 128, 256), [0, 2], (0, 300), (0, 500)),
        ("cyx", (3, 300, 500), (2, 100, 96), [1], (37, 251), (95, 97)),
        ("tczyx", (2, 2, 5, 70, 90), (1, 1, 2, 32, 32), [0, 1], (10, 70), (31, 33)),
        ("yx", (129, 257), (64, 64), [0], (128, 129), (0, 257)),
    ],
)
def test_a_region_put_together_from_cached_chunks_is_the_region(
    tmp_path: Path,
    axes: str,
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    channels: list[int],
    rows: tuple[int, int],
    columns: tuple[int, int],
) -> None:
    """Tiles are assembled from whole decoded chunks the renderer keeps; at any offset, across chunk and
    array edges, the pixels are those zarr reads for the same selection."""
    data = np.random.default_rng(4).integers(0, 65535, shape, dtype=np.uint16)
    array = zarr.create_array(str(tmp_path / "level"), shape=shape, chunks=chunks, dtype="uint16")
    array[...] = data
    cache = _Kept()
    z, t = (3, 1) if "z" in axes else (0, 0)
    plain = read_region(array, axes, channels, z, t, rows, columns)
    for _ in range(2):  # decoding the chunks, then from the cache
        assembled = read_region(array, axes, channels, z, t, rows, columns, chunks=(cache, "level"))
        assert [a.shape for a in assembled] == [p.shape for p in plain]
        assert all(np.array_equal(a, p) for a, p in zip(assembled, plain, strict=True))


def test_channels_a_file_leaves_uncoloured_take_their_fluorophores_colour() -> None:
    from fairimage.model.image import default_channels, fluorophore_colour

    expected = {
        "DAPI": "0000FF", "Hoechst 33342": "0000FF", "EGFP": "00FF00", "WGA-488": "00FF00", "AF488": "00FF00",
        "FITC": "00FF00", "mCherry-spots": "FF0000", "Cy3": "FF0000", "561 nm": "FF0000", "TRITC": "FF0000",
        "Alexa Fluor 647": "FF00FF", "Cy5": "FF00FF", "far red": "FF00FF", "YFP": "FFFF00", "CFP": "00FFFF",
        "Channel 0": None, "w1": None, "brightfield": None, "reduced": None, "Channel 4880": None,
        "488nm": "00FF00",
    }  # fmt: skip
    assert {name: fluorophore_colour(name) for name in expected} == expected
    # named ones take their colour; the others the palette's colours left, in order
    colours = [c.color for c in default_channels(4, ["mCherry", "w2", "DAPI", "w4"])]
    assert colours == ["FF0000", "00FF00", "0000FF", "FF00FF"]
    assert [c.color for c in default_channels(3)] == ["FF0000", "00FF00", "0000FF"]  # unnamed: RGB
    assert [c.color for c in default_channels(1, ["DAPI"])] == ["FFFFFF"]  # one channel alone: grey


def test_files_that_name_their_channels_without_colours_get_the_fluorophores(tmp_path: Path) -> None:
    """An OME-TIFF whose OME-XML names DAPI, GFP and mCherry without a Color, and an OME-Zarr whose omero
    channels have labels only: blue, green, red, as the names say (not red, green, blue by index)."""
    from fairimage.formats import open_file
    from tests import samples

    stack = np.zeros((3, 8, 8), dtype=np.uint16)
    samples.ome_tiff(
        tmp_path / "cells.ome.tif", stack, axes="CYX", Channel={"Name": ["DAPI", "GFP", "mCherry"]}
    )
    zarr_path = samples.ome_zarr_v05(tmp_path / "cells.ome.zarr", stack, axes="cyx")
    group = zarr.open_group(zarr_path, mode="r+")
    attrs = group.attrs.asdict()
    attrs["ome"]["omero"] = {"channels": [{"label": name} for name in ("mCherry", "Hoechst", "EGFP")]}
    group.attrs.put(attrs)
    with open_file(tmp_path / "cells.ome.tif") as opened:
        assert [c.color for c in opened.images[0].metadata.channels] == ["0000FF", "00FF00", "FF0000"]
    with open_file(zarr_path) as opened:
        assert [c.color for c in opened.images[0].metadata.channels] == ["FF0000", "0000FF", "00FF00"]

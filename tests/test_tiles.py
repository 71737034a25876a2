"""Rendered pictures over real HTTP: thumbnails, /render, Deep Zoom and IIIF, checked pixel by pixel
against the source arrays, with their caching headers and errors."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.repository import init_repository
from fairimage.settings import Settings
from tests import samples
from tests.conftest import LiveServer, storage_settings

STACK_SHAPE = (2, 3, 600, 1100)  # c, z, y, x: two pyramid levels with 512x1024 chunks


@dataclass
class Served:
    url: str
    repo: Path
    stack: np.ndarray
    rgb: np.ndarray
    ids: dict[str, str]

    def api(self, name: str, path: str) -> str:
        return f"{self.url}/api/images/{self.ids[name]}/{path}"


def _serve(request: pytest.FixtureRequest, root: Path) -> Iterator[Served]:
    stack = samples.ramp(STACK_SHAPE, seed=3)
    rgb = np.random.default_rng(5).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    paths = {
        "stack": samples.ome_tiff(root / "stack.ome.tif", stack, axes="CZYX", PhysicalSizeX=0.25),
        "rgb": samples.png(root / "colour.png", rgb, mode="RGB"),
        "spare": samples.ome_tiff(root / "spare.ome.tif", samples.ramp((1300, 1500), seed=9), axes="YX"),
    }
    settings: Settings = storage_settings(request, root / "repo")
    repository = init_repository(settings)
    ids = {}
    for name, path in paths.items():
        (outcome,) = ingest_paths(repository, [path], study="tiles")
        ids[name] = outcome.images[0]
    repository.close()
    with LiveServer(settings) as server:
        yield Served(server.url, root / "repo", stack, rgb, ids)


@pytest.fixture(scope="module", params=["local"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(request, tmp_path_factory.mktemp("tiles"))


def _picture(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)))


def _grey(values: np.ndarray, start: float, end: float) -> np.ndarray:
    scaled = np.clip((values.astype(np.float32) - start) * np.float32(1 / (end - start)), 0, 1)
    return (scaled * 255 + 0.5).astype(np.uint8)


def test_render_at_level_0_is_the_source_pixels_through_the_window(served: Served) -> None:
    query = "c=1&z=2&colors=FFFFFF&window=0:65535&region=100,50,300,200&level=0"
    picture = _picture(httpx.get(served.api("stack", f"render?{query}")))
    assert picture.shape == (200, 300, 3)
    expected = _grey(served.stack[1, 2, 50:250, 100:400], 0, 65535)
    assert np.abs(picture[..., 0].astype(int) - expected).max() <= 1
    assert (picture[..., 0] == picture[..., 1]).all() and (picture[..., 1] == picture[..., 2]).all()


def test_render_composes_two_channels_in_their_colours(served: Served) -> None:
    query = "c=0,1&z=1&colors=FF0000,00FF00&window=0:65535,0:65535&region=0,0,64,32&level=0"
    picture = _picture(httpx.get(served.api("stack", f"render?{query}")))
    assert np.abs(picture[..., 0].astype(int) - _grey(served.stack[0, 1, :32, :64], 0, 65535)).max() <= 1
    assert np.abs(picture[..., 1].astype(int) - _grey(served.stack[1, 1, :32, :64], 0, 65535)).max() <= 1
    assert (picture[..., 2] == 0).all()


def test_z_and_channel_choices_change_the_picture(served: Served) -> None:
    first = _picture(httpx.get(served.api("stack", "render?z=0&size=256")))
    other_z = _picture(httpx.get(served.api("stack", "render?z=2&size=256")))
    one_channel = _picture(httpx.get(served.api("stack", "render?z=0&c=0&size=256")))
    assert first.shape == other_z.shape == (140, 256, 3)
    assert not np.array_equal(first, other_z)
    assert not np.array_equal(first, one_channel)


def test_colour_pictures_render_with_their_own_colours(served: Served) -> None:
    picture = _picture(httpx.get(served.api("rgb", "render?level=0")))
    assert picture.shape == (120, 160, 3)
    assert np.array_equal(picture, served.rgb)


def test_colour_pictures_keep_their_colours_for_every_viewer(served: Served) -> None:
    """omero windows of a photograph span 0-255, so napari or vizarr show it unstretched too."""
    attrs = httpx.get(f"{served.url}/zarr/{served.ids['rgb']}.ome.zarr/zarr.json").json()["attributes"]
    windows = [(c["window"]["start"], c["window"]["end"]) for c in attrs["ome"]["omero"]["channels"]]
    assert windows == [(0.0, 255.0)] * 3


def test_thumbnail_fits_the_box_and_is_a_png(served: Served) -> None:
    response = httpx.get(served.api("stack", "thumbnail?size=128"))
    assert response.headers["content-type"] == "image/png"
    picture = _picture(response)
    assert picture.shape == (70, 128, 3)
    assert picture.std() > 5  # the ramp, not a blank square


def test_thumbnail_does_not_read_level_0(served: Served) -> None:
    """The spare image's level 0 is removed from the store: a thumbnail must come from level 1."""
    level0 = served.repo / "objects" / "images" / f"{served.ids['spare']}.ome.zarr" / "0" / "c"
    assert level0.is_dir(), "the test relies on the local store layout"
    shutil.rmtree(level0)
    picture = _picture(httpx.get(served.api("spare", "thumbnail?size=256")))
    assert picture.shape == (222, 256, 3) and picture.std() > 5


def test_pictures_carry_an_etag_and_cache_control_and_answer_304(served: Served) -> None:
    url = served.api("stack", "render?z=1&size=200&format=jpeg")
    first = httpx.get(url)
    assert first.headers["content-type"] == "image/jpeg"
    assert first.headers["etag"] and "max-age" in first.headers["cache-control"]
    again = httpx.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    other = httpx.get(served.api("stack", "render?z=2&size=200&format=jpeg"))
    assert other.headers["etag"] != first.headers["etag"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("render?z=9", "z=9: this image has z from 0 to 2"),
        ("render?c=0&colors=nope", "is not a colour"),
        ("render?region=5000,0,10,10", "must start inside the 1100x600 image"),
        ("render?level=7", "level=7: this image has levels 0 to 1"),
    ],
)
def test_bad_parameters_get_a_one_line_400(served: Served, query: str, message: str) -> None:
    response = httpx.get(served.api("stack", query))
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error["message"] and "\n" not in error["message"]


@pytest.mark.parametrize("query", ["render?format=gif", "thumbnail?size=4", "render?size=0"])
def test_parameters_outside_their_documented_range_are_422(served: Served, query: str) -> None:
    response = httpx.get(served.api("stack", query))
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][0] == "query"


def test_unknown_image_is_404_for_every_picture(served: Served) -> None:
    for path in (
        "/api/images/img-nope/thumbnail",
        "/api/images/img-nope/render",
        "/api/images/img-nope/deepzoom.dzi",
        "/api/images/img-nope/deepzoom_files/0/0_0.png",
        "/iiif/3/img-nope/info.json",
        "/iiif/3/img-nope/full/max/0/default.png",
    ):
        assert httpx.get(served.url + path).status_code == 404, path


def test_deepzoom_descriptor_and_tiles_match_the_render_of_the_same_region(served: Served) -> None:
    dzi = httpx.get(served.api("stack", "deepzoom.dzi"))
    assert dzi.headers["content-type"].startswith("application/xml")
    assert 'TileSize="254"' in dzi.text and '<Size Width="1100" Height="600"/>' in dzi.text
    # level 11 is full resolution (2^11 >= 1100); tile 1_0 covers x 253..509, y 0..254
    tile = _picture(
        httpx.get(served.api("stack", "deepzoom_files/11/1_0.png?z=1&c=0&window=0:65535&colors=FFFFFF"))
    )
    assert tile.shape == (255, 256, 3)
    expected = _grey(served.stack[0, 1, 0:255, 253:509], 0, 65535)
    assert np.abs(tile[..., 0].astype(int) - expected).max() <= 1
    smallest = _picture(httpx.get(served.api("stack", "deepzoom_files/0/0_0.png")))
    assert smallest.shape == (1, 1, 3)
    assert httpx.get(served.api("stack", "deepzoom_files/11/9_0.png")).status_code == 400


def test_iiif_info_describes_a_level_2_service(served: Served) -> None:
    base = f"{served.url}/iiif/3/{served.ids['stack']}"
    redirect = httpx.get(base)
    assert redirect.status_code == 303 and redirect.headers["location"].endswith("/info.json")
    response = httpx.get(base + "/info.json")
    assert response.headers["content-type"].startswith("application/ld+json")
    info = response.json()
    assert info["@context"] == "http://iiif.io/api/image/3/context.json"
    assert info["id"] == base and info["type"] == "ImageService3" and info["profile"] == "level2"
    assert (info["width"], info["height"]) == (1100, 600)
    assert info["tiles"][0]["scaleFactors"][:2] == [1, 2]
    assert {"width": 550, "height": 300} in info["sizes"]


def test_iiif_image_requests_cut_scale_turn_and_tone(served: Served) -> None:
    base = f"{served.url}/iiif/3/{served.ids['rgb']}"
    full = _picture(httpx.get(f"{base}/full/max/0/default.png"))
    assert np.array_equal(full, served.rgb)
    region = _picture(httpx.get(f"{base}/10,20,30,40/max/0/color.png"))
    assert np.array_equal(region, served.rgb[20:60, 10:40])
    turned = _picture(httpx.get(f"{base}/10,20,30,40/max/90/default.png"))
    assert np.array_equal(turned, np.rot90(served.rgb[20:60, 10:40], k=-1))
    mirrored = _picture(httpx.get(f"{base}/10,20,30,40/max/!0/default.png"))
    assert np.array_equal(mirrored, served.rgb[20:60, 10:40][:, ::-1])
    grey = _picture(httpx.get(f"{base}/full/80,/0/gray.png"))
    assert grey.shape == (60, 80)
    jpeg = httpx.get(f"{base}/square/50,50/0/default.jpg")
    assert jpeg.headers["content-type"] == "image/jpeg" and _picture(jpeg).shape == (50, 50, 3)
    bad = httpx.get(f"{base}/full/max/45/default.png")
    assert bad.status_code == 400 and "rotation" in bad.json()["error"]["message"]


@pytest.fixture(scope="module", params=["s3"])
def served_s3(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(request, tmp_path_factory.mktemp("tiles-s3"))


def test_pictures_render_from_object_storage(served_s3: Served) -> None:
    query = "c=0&z=0&colors=FFFFFF&window=0:65535&region=0,0,40,30&level=0"
    picture = _picture(httpx.get(served_s3.api("stack", f"render?{query}")))
    assert np.abs(picture[..., 0].astype(int) - _grey(served_s3.stack[0, 0, :30, :40], 0, 65535)).max() <= 1
    iiif = httpx.get(f"{served_s3.url}/iiif/3/{served_s3.ids['rgb']}/full/max/0/default.png")
    assert np.array_equal(_picture(iiif), served_s3.rgb)

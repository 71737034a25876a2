"""The viewers in a real browser: Debian's Chromium driven by Playwright, headless, against a real server.

viv must draw the z-stack (not a blank canvas), redraw when a channel is switched off and when the z
slider moves (by keyboard), draw a label over the image where its objects are when it is switched on,
OpenSeadragon must load rendered tiles, a browser without WebGL2 must fall back to OpenSeadragon, and no
request may leave 127.0.0.1. Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tifffile
from PIL import Image

from fairimage.model.governance.policy import operator
from fairimage.model.labels import MadeBy
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.labels.labels import add_label
from fairimage.services.plates.ingest import PlateRequest, ingest_plate
from fairimage.services.qc.plates import run_plate_qc
from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from tests import plate_samples, samples
from tests.conftest import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# Headless Chromium without a GPU draws WebGL2 with SwiftShader; background networking is off so the
# browser itself contacts nobody (the test checks every request the page makes).
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it as root)"
)


@dataclass
class Site:
    url: str
    stack: str
    plane: str
    plate: str = ""
    dense_plate: str = ""  # a 1536-well plate with rows A and C imaged
    labelled: str = ""  # a dark image with the label "nuclei": object 1 over LABELLED_SQUARE
    volume: str = ""  # VOLUME_SHAPE, isotropic: its levels 1 and 2 have half and a quarter of its planes
    requests: list[str] = field(default_factory=list)


LABELLED_SHAPE = (200, 320)
VOLUME_SHAPE = (128, 384, 384)


def _volume(path: Path) -> Path:
    """A volume whose planes differ: a bright square that moves with z, over noise."""
    rng = np.random.default_rng(7)
    volume = rng.integers(0, 300, VOLUME_SHAPE, dtype=np.uint16)
    for z in range(VOLUME_SHAPE[0]):
        volume[z, 30 + 2 * z : 110 + 2 * z, 60:300] = 4000
    return samples.ome_tiff(path, volume, axes="ZYX", PhysicalSizeX=0.1, PhysicalSizeY=0.1, PhysicalSizeZ=0.1)


LABELLED_SQUARE = (slice(50, 130), slice(80, 180))  # rows, columns of object 1 of the label "nuclei"


def _labelled_image(root: Path) -> tuple[Path, Path, Path]:
    """A black two-channel image (one bright corner, so the contrast window is not empty), a label with
    object 1 on a dark square and object 2 beside it, and a model's foreground mask."""
    image = np.zeros((2, *LABELLED_SHAPE), np.uint16)
    image[:, -10:, -10:] = 4000
    nuclei = np.zeros(LABELLED_SHAPE, np.uint16)
    nuclei[LABELLED_SQUARE] = 1
    nuclei[140:180, 220:300] = 2
    samples.ome_tiff(root / "dark.ome.tif", image, axes="CYX", Channel={"Name": ["DNA", "Actin"]})
    tifffile.imwrite(root / "nuclei.tif", nuclei)
    samples.png(root / "foreground.png", (nuclei > 0).astype(np.uint8))
    return root / "dark.ome.tif", root / "nuclei.tif", root / "foreground.png"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("browser")
    rng = np.random.default_rng(1)
    z, height, width = 5, 600, 900
    stack = np.zeros((3, z, height, width), np.uint16)
    for channel in range(3):
        for plane in range(z):  # each z has its own blobs, so moving the slider changes the picture
            for _ in range(40):
                y, x = rng.integers(0, height - 40), rng.integers(0, width - 40)
                stack[channel, plane, y : y + 40, x : x + 40] = 3000 + 1000 * channel
    stack += rng.integers(0, 200, stack.shape, dtype=np.uint16)
    paths = [
        samples.ome_tiff(
            root / "stack.ome.tif",
            stack,
            axes="CZYX",
            PhysicalSizeX=0.2,
            PhysicalSizeY=0.2,
            Channel={"Name": ["DAPI", "GFP", "mCherry"]},
        ),
        samples.ome_tiff(root / "plane.ome.tif", samples.ramp((3000, 4400), seed=4), axes="YX"),
    ]
    settings = load_settings(root / "repo")
    repository = init_repository(settings)
    ids = [outcome.images[0] for outcome in ingest_paths(repository, paths, study="browser")]
    platemap = root / "platemap.csv"
    platemap.write_text("well,compound,control\nA1,DMSO,negative\nA2,taxol,positive\nB3,cmpd-9,\n")
    folder = plate_samples.imagexpress(root / "Screen01", [(0, 0), (0, 1), (1, 2)], fields=2, channels=2)
    plate = ingest_plate(repository, PlateRequest(folder, "browser", platemap=platemap))
    run_plate_qc(repository, operator("browser-test"), plate.plate_id or "", readout_channel=1)
    dense_wells = [(0, column) for column in range(48)] + [(2, column) for column in range(0, 48, 4)]
    dense_map = root / "dense-platemap.csv"
    dense_map.write_text("well,compound,control\nA01,DMSO,negative\nA02,taxol,positive\n")
    dense_folder = plate_samples.imagexpress(root / "Screen1536", dense_wells, fields=1, channels=1)
    dense = ingest_plate(repository, PlateRequest(dense_folder, "browser", platemap=dense_map, wells=1536))
    assert dense.status == "ingested", dense.error
    dark, nuclei, foreground = _labelled_image(root)
    (labelled,) = ingest_paths(repository, [dark], study="browser")
    (volume,) = ingest_paths(repository, [_volume(root / "volume.ome.tif")], study="browser")
    cells = np.zeros(VOLUME_SHAPE, np.uint16)
    cells[20:100, 250:350, 40:140] = 1  # an object beside the bright square, through 80 planes
    tifffile.imwrite(root / "cells.tif", cells)
    add_label(
        repository,
        operator("browser-test"),
        volume.images[0],
        root / "cells.tif",
        "cells",
        MadeBy("person", "Ada"),
    )
    curator = operator("browser-test")
    add_label(repository, curator, labelled.images[0], nuclei, "nuclei", MadeBy("person", "Ada Lovelace"))
    add_label(repository, curator, labelled.images[0], foreground, "cells", MadeBy("model", "cellpose@3"))
    repository.close()
    with LiveServer(settings) as server:
        yield Site(
            server.url, ids[0], ids[1], plate.plate_id or "", dense.plate_id or "", labelled.images[0],
            volume.images[0],
        )  # fmt: skip


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    with playwright_api.sync_playwright() as instance:
        yield instance


def _launch(playwright: Any, extra: list[str] | None = None) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS + (extra or []))


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    browser = _launch(playwright)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    site.requests.clear()
    page.on("request", lambda request: site.requests.append(request.url))
    yield page
    context.close()
    outside = [url for url in site.requests if not url.startswith((site.url, "data:", "blob:"))]
    assert outside == [], f"requests left 127.0.0.1: {outside[:5]}"


def _viewer_pixels(page: Any, name: str) -> np.ndarray:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = page.locator(".viewer-frame").screenshot(path=str(ARTIFACTS / f"{name}.png"))
    return np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(np.int16)


def _wait_for_change(page: Any, before: np.ndarray, name: str, timeout: float = 20.0) -> np.ndarray:
    """Screenshots until the viewer's pixels differ from ``before`` (rendering is asynchronous)."""
    waited = 0.0
    while waited < timeout:
        page.wait_for_timeout(250)
        waited += 0.25
        after = _viewer_pixels(page, name)
        if np.abs(after - before).mean() > 1.0:
            return after
    return after


def test_viv_draws_the_stack_and_redraws_for_channels_and_z(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/images/{site.stack}")
    page.wait_for_selector('#viewer[data-viewer="viv"][data-tiles-loaded]', timeout=30_000)
    page.wait_for_timeout(500)
    first = _viewer_pixels(page, "viv-all-channels")
    assert first.std() > 10, "the viewer canvas is blank"

    page.get_by_label("DAPI", exact=True).uncheck()
    without_dapi = _wait_for_change(page, first, "viv-without-dapi")
    assert np.abs(without_dapi - first).mean() > 1.0, "switching a channel off did not change the picture"

    slider = page.locator("#z-slider")
    slider.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert slider.input_value() == "4"
    other_z = _wait_for_change(page, without_dapi, "viv-z4")
    assert np.abs(other_z - without_dapi).mean() > 1.0, "moving the z slider did not change the picture"
    label = page.locator("#scale-bar .scale-bar-label")
    before_zoom = label.inner_text()
    assert before_zoom.endswith("µm")
    page.get_by_role("button", name="Zoom in").click()
    zoomed = _wait_for_change(page, other_z, "viv-zoomed")
    assert np.abs(zoomed - other_z).mean() > 1.0 and label.inner_text() != before_zoom


def test_viv_shows_a_volumes_planes_from_levels_with_fewer_planes(page: Any, site: Site) -> None:
    """Zoomed out, viv reads levels with half the planes or fewer (the last plane of level 0 is plane 63 of
    level 1): each level is asked for the plane that holds level 0's."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{site.url}/images/{site.volume}?viewer=viv")
    page.wait_for_selector('#viewer[data-viewer="viv"][data-tiles-loaded]', timeout=30_000)
    for _ in range(2):
        page.get_by_role("button", name="Zoom out").click()
        page.wait_for_timeout(700)
    site.requests.clear()
    first = _viewer_pixels(page, "viv-volume-z0")
    slider = page.locator("#z-slider")
    slider.focus()
    page.keyboard.press("End")
    assert slider.input_value() == str(VOLUME_SHAPE[0] - 1)
    last = _wait_for_change(page, first, "viv-volume-last-plane")
    assert np.abs(last - first).mean() > 1.0, "moving to the last plane did not change the picture"
    page.wait_for_timeout(500)
    read = _chunk_levels(site.requests)
    assert read and "0" not in read, f"expected chunks of the lower levels only: {read}"
    assert page.locator("#viewer").get_attribute("data-viewer") == "viv"  # no fall back to rendered tiles
    assert errors == [], errors


def test_a_volume_is_shown_through_z_in_xz_and_yz(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/images/{site.volume}")
    page.wait_for_selector('#viewer[data-viewer="viv"][data-tiles-loaded]', timeout=30_000)
    page.get_by_label("xz (through z at a row)").check()
    page.wait_for_selector("#viewer[data-orthogonal-loaded]", timeout=20_000)
    xz = _viewer_pixels(page, "volume-xz")
    assert page.locator(".orthogonal-picture").is_visible() and page.locator("#at-slider").is_visible()
    # The square moves down 2 rows a plane: through z at the middle row (192) it is planes 42 to 81.
    slider = page.locator("#at-slider")
    slider.focus()
    page.keyboard.press("Home")
    other_row = _wait_for_change(page, xz, "volume-xz-row-0")
    assert np.abs(other_row - xz).mean() > 1.0, "moving the row did not change the xz picture"
    page.get_by_label("yz (through z at a column)").check()
    yz = _wait_for_change(page, other_row, "volume-yz")
    assert np.abs(yz - other_row).mean() > 1.0 and page.locator("#at-label").inner_text() == "x"
    assert slider.input_value() == str(VOLUME_SHAPE[2] // 2)
    assert re.search(r"view=yz&at=192", page.url), page.url  # a reload or a shared link opens the same view
    page.get_by_label("xy (a plane)").check()
    page.wait_for_timeout(300)
    assert not page.locator(".orthogonal-picture").is_visible()
    assert any("/orthogonal?view=yz&at=192" in url for url in site.requests)


def test_neuroglancer_shows_a_volume_and_its_label_from_this_server(page: Any, site: Site) -> None:
    """The offline Neuroglancer reads the served OME-Zarr (zarr3 data source) and the label as a
    segmentation layer; moving through z (the '.' key) changes the xy panel."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{site.url}/images/{site.volume}")
    page.locator("#open-neuroglancer").click()
    page.wait_for_url(re.compile(r"/neuroglancer#!"), timeout=20_000)  # the state went into the address
    page.wait_for_timeout(4000)
    image_chunks = [url for url in site.requests if re.search(r"\.ome\.zarr/\d+/c/", url)]
    label_chunks = [url for url in site.requests if re.search(r"/labels/cells/\d+/c/", url)]
    assert image_chunks and label_chunks, "Neuroglancer read no chunks of the image or of its label"
    ARTIFACTS.mkdir(exist_ok=True)
    panel = page.locator(".neuroglancer-panel").first
    before = np.asarray(Image.open(io.BytesIO(panel.screenshot(path=str(ARTIFACTS / "neuroglancer-xy.png")))))
    assert before.astype(float).std() > 20, "Neuroglancer's xy panel is blank"
    panel.hover()
    for _ in range(30):
        page.keyboard.press(".")
    page.wait_for_timeout(2000)
    after = np.asarray(
        Image.open(io.BytesIO(panel.screenshot(path=str(ARTIFACTS / "neuroglancer-xy-z30.png"))))
    )
    assert np.abs(after.astype(int) - before.astype(int)).mean() > 1.0, (
        "moving through z did not change the panel"
    )
    loaded = page.evaluate(
        "() => window.fairimageViewer.layerManager.managedLayers.map(l => [l.name, l.layer.dataSources.map("
        "d => d.loadState && d.loadState.dataSource ? 'loaded' : String(d.loadState?.error ?? 'loading'))])"
    )
    assert [state for _, state in loaded] == [["loaded"], ["loaded"]], loaded
    assert errors == [], errors


def test_neuroglancer_shows_each_channel_in_its_colour(page: Any, site: Site) -> None:
    """The 3-channel stack (DAPI, GFP, mCherry) in Neuroglancer: its shader tints each channel as the 2D
    viewer does, so the xy panel has blue, green and red squares, not one grey channel."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{site.url}/images/{site.stack}/neuroglancer")
    page.wait_for_url(re.compile(r"/neuroglancer#!"), timeout=20_000)
    page.wait_for_timeout(4000)
    ARTIFACTS.mkdir(exist_ok=True)
    panel = page.locator(".neuroglancer-panel").first
    shot = np.asarray(
        Image.open(io.BytesIO(panel.screenshot(path=str(ARTIFACTS / "neuroglancer-channels.png"))))
    )
    red, green, blue = (shot[..., i].astype(int) for i in range(3))
    for name, own, others in (
        ("blue", blue, (red, green)),
        ("green", green, (red, blue)),
        ("red", red, (green, blue)),
    ):
        pure = (own > 120) & (others[0] < 60) & (others[1] < 60)
        assert pure.sum() > 200, f"no {name} square in Neuroglancer's panel"
    assert errors == [], errors


def _chunk_levels(requests: list[str]) -> dict[str, int]:
    """How many chunks of each pyramid level were fetched: zarr v3 keys look like {level}/c/..."""
    levels: dict[str, int] = {}
    for url in requests:
        match = re.search(r"\.ome\.zarr/(\d+)/c/", url)
        if match:
            levels[match.group(1)] = levels.get(match.group(1), 0) + 1
    return levels


def test_viv_reads_only_visible_chunks_of_the_level_that_matches_the_zoom(page: Any, site: Site) -> None:
    """The 3000x4400 plane has four levels; level 0 has 6x5 chunks of 512x1024."""
    page.goto(f"{site.url}/images/{site.plane}?viewer=viv")
    page.wait_for_selector('#viewer[data-viewer="viv"][data-tiles-loaded]', timeout=30_000)
    page.wait_for_timeout(1000)
    at_fit = _chunk_levels(site.requests)
    assert at_fit and "0" not in at_fit, f"the whole-image view fetched full-resolution chunks: {at_fit}"
    site.requests.clear()
    for _ in range(3):
        page.get_by_role("button", name="Zoom in").click()
        page.wait_for_timeout(700)
    page.wait_for_timeout(1500)
    zoomed = _chunk_levels(site.requests)
    assert 0 < zoomed.get("0", 0) <= 15, f"zoomed in, expected the visible level-0 chunks only: {zoomed}"
    _viewer_pixels(page, "viv-zoomed-plane")


def _on_screen(pixels: np.ndarray, region: tuple[slice, slice], inset: int = 4) -> tuple[slice, slice]:
    """Where an image region of the labelled image is in a screenshot of the viewer as it opens: fitted to the
    frame and centred (a few pixels inside, away from edges the sampling may blur)."""
    frame = pixels.shape[:2]
    scale = min(frame[0] / LABELLED_SHAPE[0], frame[1] / LABELLED_SHAPE[1])

    def span(part: slice, size: int, screen: int) -> slice:
        start, stop = (screen / 2 + (edge - size / 2) * scale for edge in (part.start, part.stop))
        return slice(round(start) + inset, round(stop) - inset)

    rows, columns = region
    return span(rows, LABELLED_SHAPE[0], frame[0]), span(columns, LABELLED_SHAPE[1], frame[1])


def test_a_label_switched_on_is_drawn_over_its_objects_in_its_colours(page: Any, site: Site) -> None:
    """Off by default (nothing of it read); on, object 1's place takes its image-label colour at the chosen
    opacity while the background stays as it was; off again, the image is as before."""
    served = httpx.get(f"{site.url}/zarr/{site.labelled}.ome.zarr/labels/nuclei/zarr.json").json()
    colours = served["attributes"]["ome"]["image-label"]["colors"]
    first = np.array(next(c["rgba"] for c in colours if c["label-value"] == 1)[:3])
    page.goto(f"{site.url}/images/{site.labelled}")
    page.wait_for_selector('#viewer[data-viewer="viv"][data-tiles-loaded]', timeout=30_000)
    toggle = page.get_by_label("nuclei", exact=True)
    assert not toggle.is_checked() and not [url for url in site.requests if "/labels/" in url]
    page.wait_for_timeout(300)
    off = _viewer_pixels(page, "label-off")
    square, background = _on_screen(off, LABELLED_SQUARE), _on_screen(off, (slice(5, 40), slice(10, 60)))
    assert off[square].max() < 40, "the image under the label should be dark"

    toggle.check()
    page.wait_for_selector("#viewer[data-label-tiles-loaded]", timeout=10_000)
    on = _wait_for_change(page, off, "label-on")
    alpha = 0.5 ** (1 / 2.2)  # 50 % by default; deck.gl applies a layer's opacity gamma-corrected
    half = alpha * first + (1 - alpha) * off[square].mean(axis=(0, 1))
    drawn = on[square].mean(axis=(0, 1))
    assert np.abs(drawn - half).max() < 25, (drawn, half)
    assert np.abs(on[background] - off[background]).mean() < 2, "id 0 must stay transparent"
    assert "labels=nuclei" in page.url and "label_opacity=50" in page.url

    page.locator("#label-opacity").fill("100")
    opaque = _wait_for_change(page, on, "label-opaque")
    drawn = opaque[square].mean(axis=(0, 1))
    assert np.abs(drawn - first).max() < 25, (drawn, first)

    toggle.uncheck()
    again = _wait_for_change(page, opaque, "label-off-again")
    assert np.abs(again[square] - off[square]).mean() < 2, "switched off, the label is still drawn"
    read = [url for url in site.requests if "/labels/" in url]
    assert read and all("/labels/nuclei/" in url for url in read), read  # only the label switched on


def test_openseadragon_loads_rendered_tiles(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/images/{site.plane}")
    page.wait_for_selector('#viewer[data-viewer="deepzoom"][data-tiles-loaded]', timeout=30_000)
    page.wait_for_timeout(1000)
    pixels = _viewer_pixels(page, "openseadragon")
    assert pixels.std() > 10
    tiles = [url for url in site.requests if "/deepzoom_files/" in url]
    assert tiles, "OpenSeadragon requested no Deep Zoom tiles"


def test_without_webgl2_the_viewer_falls_back_to_rendered_tiles(playwright: Any, site: Site) -> None:
    browser = _launch(playwright, ["--disable-3d-apis"])
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(f"{site.url}/images/{site.stack}")
        page.wait_for_selector('#viewer[data-viewer="deepzoom"][data-tiles-loaded]', timeout=30_000)
        assert "no WebGL2, so the multichannel viewer is off" in page.locator("#viewer-status").inner_text()
        assert any("/deepzoom_files/" in url for url in requests)
        assert _viewer_pixels(page, "fallback-no-webgl2").std() > 10
        assert all(url.startswith((site.url, "data:", "blob:")) for url in requests)
    finally:
        browser.close()


def test_a_webgl_context_that_fails_falls_back_to_rendered_tiles_and_says_so(
    browser: Any, site: Site
) -> None:
    """A browser whose WebGL stops working (no hardware acceleration, a GPU reset) gets rendered tiles and
    a sentence, not a black canvas."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"{site.url}/images/{site.stack}")
        page.wait_for_selector('#viewer[data-viewer="viv"][data-tiles-loaded]', timeout=30_000)
        page.evaluate(
            "document.querySelector('#viewer canvas').getContext('webgl2')"
            ".getExtension('WEBGL_lose_context').loseContext()"
        )
        page.wait_for_selector('#viewer[data-viewer="deepzoom"][data-tiles-loaded]', timeout=30_000)
        assert "lost its WebGL context" in page.locator("#viewer-status").inner_text()
        assert _viewer_pixels(page, "fallback-context-lost").std() > 10
    finally:
        page.close()


def test_a_channel_colour_is_a_bar_not_a_second_checkbox(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/images/{site.plane}")
    form = page.locator("#view-settings")
    assert form.locator("input[type=checkbox]").count() == 1  # one channel, one toggle
    swatch = form.locator(".channel .swatch")
    assert swatch.count() == 1 and swatch.evaluate("node => node.tagName.toLowerCase()") == "svg"
    assert swatch.get_attribute("data-colour") == "#FFFFFF" and swatch.get_attribute("aria-hidden") == "true"
    box = swatch.bounding_box()
    assert box is not None and box["width"] > 2 * box["height"]  # a bar, not a box or a radio button
    assert form.get_by_role("checkbox").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    form.screenshot(path=str(ARTIFACTS / "single-channel-controls.png"))


def test_a_plate_is_a_grid_of_wells_framed_by_their_controls(page: Any, site: Site) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{site.url}/plates/{site.plate}")
    grid = page.locator("table.plate-grid:not(.heatmap)")
    assert grid.get_attribute("data-wells") == "96" and grid.locator("tbody tr").count() == 8
    imaged = grid.locator("td.imaged img")
    assert imaged.count() == 3
    loaded = (
        "() => [...document.querySelectorAll('td.imaged img')].every((i) => i.complete && i.naturalWidth > 0)"
    )
    for _ in range(120):  # polled from here: the page's CSP forbids the string eval wait_for_function uses
        if page.evaluate(loaded):
            break
        page.wait_for_timeout(250)
    assert page.evaluate(loaded), "the wells' thumbnails did not load"
    assert "control-negative" in (grid.locator("td.imaged").nth(0).get_attribute("class") or "")
    assert "control-positive" in (grid.locator("td.imaged").nth(1).get_attribute("class") or "")
    assert "treated" in (grid.locator("td.imaged").nth(2).get_attribute("class") or "")
    assert "A2 · taxol · positive control · 2 fields" in (
        grid.locator("td.imaged a").nth(1).get_attribute("title") or ""
    )
    ARTIFACTS.mkdir(exist_ok=True)
    shot = grid.screenshot(path=str(ARTIFACTS / "plate-grid.png"))
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(np.int16)
    assert pixels.std() > 10  # thumbnails drawn, not empty cells
    assert all(url.startswith(site.url) for url in requests)
    heatmap = page.locator("table.plate-grid.heatmap")  # the QC readout per well, coloured by decile
    measured = heatmap.locator("td[class*='heat-']")
    assert measured.count() == 3
    classes = {measured.nth(i).get_attribute("class") or "" for i in range(3)}
    assert len({c.split("heat-")[1].split()[0] for c in classes}) == 3  # three readouts, three deciles
    assert "A1: " in (measured.nth(0).get_attribute("title") or "")
    shot = heatmap.screenshot(path=str(ARTIFACTS / "plate-qc-heatmap.png"))
    colours = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).reshape(-1, 3)
    assert len({tuple(c) for c in colours[::7]}) > 4  # viridis cells, not one flat colour
    grid.locator("td.imaged a").nth(2).click()
    page.wait_for_url(re.compile(r"/images/img-"))
    assert "B3 field 1" in page.locator("h1").inner_text()


def test_a_1536_well_plate_is_one_picture_under_a_map_of_its_wells(page: Any, site: Site) -> None:
    """A dense plate's page asks for one overview picture, not a thumbnail per well; each imaged well is a
    link framed by its control type, and the picture shows the wells where the map says they are."""
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{site.url}/plates/{site.dense_plate}")
    plate_map = page.locator("svg.plate-map")
    assert plate_map.get_attribute("data-wells") == "1536"
    links = plate_map.locator("a")
    assert links.count() == 60
    loaded = (
        "() => { const i = document.querySelector('svg.plate-map image'); return i && i.getBBox().width > 0 }"
    )
    picture = page.request.get(f"{site.url}/api/plates/{site.dense_plate}/overview?size=22")
    assert picture.status == 200 and picture.headers["content-type"] == "image/png"
    overview = np.asarray(Image.open(io.BytesIO(picture.body())).convert("L")).astype(np.int16)
    cell = 22 + 2
    assert overview.shape == (32 * cell, 48 * cell)
    assert overview[:cell].std() > 10 and overview[2 * cell : 3 * cell].std() > 10  # rows A and C imaged
    band = overview[5 * cell : 6 * cell]  # row F: no well imaged, only the dark squares of its wells
    assert set(np.unique(band)) == {12, 40}
    assert page.evaluate(loaded)
    thumbnails = [url for url in requests if "/thumbnail" in url]
    overviews = [url for url in requests if "/overview" in url]
    assert thumbnails == [] and len(overviews) == 1, requests
    assert "control-positive" in (links.nth(1).locator("rect").get_attribute("class") or "")
    assert "A2 · taxol · positive control · 1 field" in (links.nth(1).locator("title").text_content() or "")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = plate_map.screenshot(path=str(ARTIFACTS / "plate-1536-map.png"))
    drawn = np.asarray(Image.open(io.BytesIO(shot)).convert("L")).astype(np.int16)
    assert drawn.std() > 10
    links.nth(47).click()
    page.wait_for_url(re.compile(r"/images/img-"))
    assert "A48" in page.locator("h1").inner_text()


def test_pages_have_no_console_errors(page: Any, site: Site) -> None:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    labelled = f"/images/{site.labelled}?labels=nuclei"
    for path in ("/", f"/images/{site.stack}", f"/images/{site.stack}?viewer=deepzoom", labelled, "/login"):
        response = page.goto(site.url + path)
        page.wait_for_load_state("networkidle")
        policy = response.headers["content-security-policy"]
        assert "style-src 'self' 'sha256-" in policy and "unsafe-inline" not in policy
    assert errors == [], errors  # a Content-Security-Policy violation is a console error too

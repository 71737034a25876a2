"""The web pages as a browser receives them: home, study, image (with its labels), 404 and the empty
repository; every address they load is on this server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from fairimage.model.governance.policy import operator
from fairimage.model.labels import MadeBy
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.labels.labels import add_label
from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer

HTML = {"Accept": "text/html,application/xhtml+xml"}


@dataclass
class Site:
    url: str
    stack: str
    rgb: str
    study: str

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, headers=HTML)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("web")
    stack = samples.ome_tiff(
        root / "cells.ome.tif",
        samples.ramp((2, 3, 64, 80)),
        axes="CZYX",
        PhysicalSizeX=0.325,
        PhysicalSizeY=0.325,
        Channel={"Name": ["DAPI", "GFP"]},
    )
    rgb = samples.png(root / "photo.png", samples.ramp((40, 50, 3), dtype="uint8"), mode="RGB")
    settings = load_settings(root / "repo")
    repository = init_repository(settings)
    (first,) = ingest_paths(repository, [stack], study="Mitosis screen")
    (second,) = ingest_paths(repository, [rgb], study="Mitosis screen")
    nuclei = np.zeros((3, 64, 80), np.uint16)
    nuclei[:, 10:30, 20:40] = 1
    mask = samples.ome_tiff(root / "nuclei.ome.tif", nuclei, axes="ZYX")
    curator = operator("web-test")
    add_label(repository, curator, first.images[0], mask, "nuclei", MadeBy("person", "Ada Lovelace"))
    add_label(repository, curator, first.images[0], mask, "cells", MadeBy("model", "cellpose@3"))
    repository.close()
    with LiveServer(settings) as server:
        study = httpx.get(f"{server.url}/api/studies").json()[0]["id"]
        yield Site(server.url, first.images[0], second.images[0], study)


def _local_addresses(page: str) -> list[str]:
    """Every src/href of the page; each must stay on this server (relative or 127.0.0.1)."""
    return re.findall(r'(?:src|href)="([^"]+)"', page)


def test_home_lists_studies_with_counts_and_recent_images_with_thumbnails(site: Site) -> None:
    page = site.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'<a href="/studies/{site.study}">Mitosis screen</a>' in page.text
    assert "2 images" in page.text
    assert f'src="/api/images/{site.stack}/thumbnail?size=256"' in page.text
    assert 'alt="Thumbnail of cells.ome.tif"' in page.text


def test_study_page_shows_its_images_and_download_links(site: Site) -> None:
    page = site.get(f"/studies/{site.study}").text
    assert "<h1>Mitosis screen</h1>" in page
    assert f'href="/images/{site.stack}"' in page and f'href="/images/{site.rgb}"' in page
    assert f'href="/api/images?study={site.study}&amp;limit=1000"' in page


def test_image_page_has_viewer_metadata_url_and_snippets(site: Site) -> None:
    page = site.get(f"/images/{site.stack}").text
    zarr_url = f"{site.url}/zarr/{site.stack}.ome.zarr"
    assert 'data-viewer="viv"' in page and "build/viewer.js" in page
    assert f'<pre id="zarr-url" aria-labelledby="url-label">{zarr_url}</pre>' in page
    assert f"napari --plugin napari-ome-zarr {zarr_url}" in page
    assert "zarr.open_group(" in page and "ome_zarr.reader.Reader(" in page
    assert "0.325 micrometer" in page and "DAPI" in page and "GFP" in page
    assert 'name="z" min="0" max="2" value="1"' in page  # the z slider starts in the middle
    sha = httpx.get(f"{site.url}/api/images/{site.stack}").json()["original_file"]["sha256"]
    assert sha in page
    # the channel controls have labels a screen reader can announce
    assert 'aria-label="Colour of DAPI"' in page and 'aria-label="Contrast maximum of GFP"' in page


def test_colour_pictures_open_in_deep_zoom_and_the_viewer_can_be_switched(site: Site) -> None:
    page = site.get(f"/images/{site.rgb}").text
    assert 'data-viewer="deepzoom"' in page and "build/deepzoom.js" in page
    assert 'href="?viewer=viv"' in page
    assert 'data-viewer="viv"' in site.get(f"/images/{site.rgb}?viewer=viv").text


def test_submitted_display_form_is_kept_and_rendered_without_javascript(site: Site) -> None:
    page = site.get(f"/images/{site.stack}?viewer=viv&c=1&color1=%23ff00ff&start1=5&end1=900&z=2").text
    assert 'name="c" value="0" checked' not in page  # the unticked channel stays unticked
    assert 'name="c" value="1" checked' in page
    assert 'value="#ff00ff"' in page
    noscript = re.search(r'<noscript><img class="noscript-picture" src="([^"]+)"', page)
    assert noscript is not None
    picture = httpx.get(site.url + noscript.group(1).replace("&amp;", "&"))
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert "c=1" in noscript.group(1) and "FF00FF" in noscript.group(1) and "z=2" in noscript.group(1)


def test_the_image_page_lists_its_labels_and_keeps_the_ones_shown_without_javascript(site: Site) -> None:
    """Each label with who made it (a model's marked AI-generated); none shown unless the address names it."""
    page = site.get(f"/images/{site.stack}").text
    assert "<legend>Labels</legend>" in page and "annotated by Ada Lovelace" in page
    assert re.search(r'<span class="ai-mark"[^>]*>AI-generated</span> by the model cellpose@3', page)
    assert not re.search(r'name="labels" value="\w+"\s*checked', page)
    assert 'name="label_opacity" min="0" max="100" step="5" value="50"' in page
    chosen = site.get(f"/images/{site.stack}?labels=cells&labels=nope&label_opacity=70").text
    assert re.search(r'name="labels" value="cells"\s*checked', chosen)
    assert not re.search(r'name="labels" value="nuclei"\s*checked', chosen)
    assert 'step="5" value="70"' in chosen
    tiles = site.get(f"/images/{site.stack}?viewer=deepzoom&labels=nuclei").text
    assert 'href="?viewer=viv&amp;labels=nuclei">multichannel viewer</a> draws the labels' in tiles
    assert "<legend>Labels</legend>" not in site.get(f"/images/{site.rgb}").text  # an image without any


def test_pages_load_nothing_from_other_hosts(site: Site) -> None:
    for path in ("/", f"/studies/{site.study}", f"/images/{site.stack}", f"/images/{site.rgb}"):
        for address in _local_addresses(site.get(path).text):
            assert address.startswith(("/", "?", "#", "data:", site.url)), f"{path} loads {address}"
            if address.startswith("/static/"):
                assert httpx.get(site.url + address).status_code == 200, address


def test_missing_pages_get_the_html_404_page(site: Site) -> None:
    for path in ("/images/img-nope", "/studies/nope", "/no/such/page"):
        response = site.get(path)
        assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
        assert "<h1>Not found</h1>" in response.text and 'href="/"' in response.text
    api = httpx.get(f"{site.url}/api/images/img-nope", headers=HTML)
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"


def test_an_empty_repository_says_how_to_add_images(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "repo")
    init_repository(settings).close()
    with LiveServer(settings) as server:
        page = httpx.get(server.url + "/", headers=HTML).text
    assert "No images yet" in page and "fairimage ingest" in page

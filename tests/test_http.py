"""HTTP semantics zarr clients depend on, against a real server: 404s, ranges, HEAD, ETag, CORS, traversal."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.repository import init_repository
from tests import samples
from tests.conftest import LiveServer, storage_settings


@dataclass
class Served:
    url: str
    image_ids: list[str]

    def key(self, key: str, index: int = 0) -> str:
        return f"{self.url}/zarr/{self.image_ids[index]}.ome.zarr/{key}"


@pytest.fixture(scope="module", params=["local", "s3"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Three ingested images, served; every test runs with the objects in a local folder and in S3."""
    root = tmp_path_factory.mktemp("http")
    paths = [
        samples.ome_tiff(root / f"cells-{i}.ome.tif", samples.ramp((2, 300, 200), seed=i), axes="CYX")
        for i in range(3)
    ]
    settings = storage_settings(request, root / "repo")
    repository = init_repository(settings)
    outcomes = ingest_paths(repository, paths, study="http")
    repository.close()
    with LiveServer(settings) as server:
        yield Served(server.url, [image for outcome in outcomes for image in outcome.images])


def _raw_get(served: Served, path: str) -> int:
    """Send the path exactly as written (httpx would normalise '..' away before sending)."""
    host, port = served.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("GET", path, skip_host=False, skip_accept_encoding=True)
    connection.endheaders()
    status = connection.getresponse().status
    connection.close()
    return status


def test_zarr_json_is_served_with_length_etag_and_json_type(served: Served) -> None:
    response = httpx.get(served.key("zarr.json"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.json()["attributes"]["ome"]["version"] == "0.5"
    assert response.headers["etag"]


def test_head_gives_length_without_body(served: Served) -> None:
    body = httpx.get(served.key("0/c/0/0/0")).content
    head = httpx.head(served.key("0/c/0/0/0"))
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == len(body) > 0
    assert head.content == b""


@pytest.mark.parametrize("key", ["nope", "0/c/9/9/9", "0/zarr.jsonx", "0", "0/c", "zarr.json/x"])
def test_missing_keys_and_folders_are_plain_404(served: Served, key: str) -> None:
    response = httpx.get(served.key(key))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert "error" in response.json()


def test_unknown_image_is_404(served: Served) -> None:
    assert httpx.get(f"{served.url}/zarr/img-doesnotexist.ome.zarr/zarr.json").status_code == 404
    response = httpx.get(f"{served.url}/api/images/img-doesnotexist")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_byte_ranges(served: Served) -> None:
    whole = httpx.get(served.key("zarr.json")).content
    size = len(whole)
    cases = {
        "bytes=0-9": (0, 10),
        "bytes=10-": (10, size),
        "bytes=-16": (size - 16, size),
        f"bytes=5-{size + 100}": (5, size),
    }
    for header, (start, stop) in cases.items():
        response = httpx.get(served.key("zarr.json"), headers={"Range": header})
        assert response.status_code == 206, header
        assert response.content == whole[start:stop], header
        assert response.headers["content-range"] == f"bytes {start}-{stop - 1}/{size}", header
    unsatisfiable = httpx.get(served.key("zarr.json"), headers={"Range": f"bytes={size}-"})
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{size}"


def test_etag_revalidation_gives_304(served: Served) -> None:
    etag = httpx.get(served.key("0/c/0/0/0")).headers["etag"]
    response = httpx.get(served.key("0/c/0/0/0"), headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert httpx.get(served.key("0/c/0/0/0"), headers={"If-None-Match": '"other"'}).status_code == 200


def _through_the_route(headers: dict[str, str]) -> dict[str, str]:
    """A session cookie (here one that names no session, so the caller is anonymous) makes the server
    look the caller up: such a request never takes the hot path that answers chunks from memory."""
    return {**headers, "Cookie": "fairimage_session=no-such-session"}


@pytest.mark.parametrize(
    "method, headers",
    [
        ("GET", {}),
        ("HEAD", {}),
        ("GET", {"Origin": "https://viewer.example"}),
        ("GET", {"Range": "bytes=3-40"}),
        ("GET", {"Range": "bytes=999999999-"}),
        ("GET", {"Origin": "https://viewer.example", "If-None-Match": "ETAG"}),
    ],
)
def test_the_hot_path_answers_chunks_as_the_route_does(
    served: Served, method: str, headers: dict[str, str]
) -> None:
    """Chunks of an image being read are answered before the framework (zarr.ZarrKeys); what a client gets
    must not depend on which path answered: the same status, body and headers."""
    url = served.key("0/c/0/0/0")
    etag = httpx.get(url).headers["etag"]  # now the image's access decision is in memory
    headers = {name: value.replace("ETAG", etag) for name, value in headers.items()}
    hot = httpx.request(method, url, headers=headers)
    routed = httpx.request(method, url, headers=_through_the_route(headers))
    assert hot.status_code == routed.status_code
    assert hot.content == routed.content
    unstable = {"date", "server"}
    assert {k: v for k, v in hot.headers.items() if k not in unstable} == {
        k: v for k, v in routed.headers.items() if k not in unstable
    }


@pytest.mark.parametrize(
    "path, headers",
    [
        ("/iiif/3/ID/0,0,128,128/128,/0/default.jpg", {}),
        ("/iiif/3/ID/64,32,200,200/100,/0/default.png", {"Origin": "https://viewer.example"}),
        ("/iiif/3/ID/0,0,128,128/128,/0/default.jpg?c=1&colors=00FF00", {"If-None-Match": "ETAG"}),
        ("/api/images/ID/deepzoom_files/9/0_1.png?c=0", {}),
        ("/iiif/3/ID/full/max/0/default.jpg", {}),  # a larger picture: always the route
    ],
)
def test_the_hot_path_answers_tiles_as_the_route_does(
    served: Served, path: str, headers: dict[str, str]
) -> None:
    """Small tiles of an image being viewed are rendered before the framework (tiles.TileRequests): the
    same status, picture and headers as the route's."""
    url = served.url + path.replace("ID", served.image_ids[1])
    etag = httpx.get(url).headers["etag"]  # now the image and its access decision are in memory
    headers = {name: value.replace("ETAG", etag) for name, value in headers.items()}
    hot = httpx.get(url, headers=headers)
    routed = httpx.get(url, headers=_through_the_route(headers))
    assert hot.status_code == routed.status_code == (304 if "If-None-Match" in headers else 200)
    assert hot.content == routed.content
    unstable = {"date", "server"}
    assert {k: v for k, v in hot.headers.items() if k not in unstable} == {
        k: v for k, v in routed.headers.items() if k not in unstable
    }


def test_cors_preflight_and_exposed_headers(served: Served) -> None:
    preflight = httpx.options(
        served.key("0/c/0/0/0"),
        headers={
            "Origin": "https://viewer.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "range",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] in ("*", "https://viewer.example")
    assert "range" in preflight.headers["access-control-allow-headers"].lower()
    response = httpx.get(
        served.key("zarr.json"), headers={"Origin": "https://viewer.example", "Range": "bytes=0-1"}
    )
    exposed = response.headers["access-control-expose-headers"].lower()
    assert response.headers["access-control-allow-origin"] == "*"
    for header in ("content-range", "content-length", "etag"):
        assert header in exposed


@pytest.mark.parametrize(
    "path",
    [
        "/zarr/{id}.ome.zarr/../../catalog.sqlite",
        "/zarr/{id}.ome.zarr/0/../../{other}.ome.zarr/zarr.json",
        "/zarr/{id}.ome.zarr/..%2F..%2Fcatalog.sqlite",
        "/zarr/{id}.ome.zarr/%2Fetc%2Fpasswd",
        "/zarr/{id}.ome.zarr//etc/passwd",
        "/zarr/{id}.ome.zarr/0/%2e%2e/zarr.json",
        "/zarr/..%2Fmanifests%2F{id}.json.ome.zarr/x",
    ],
)
def test_keys_cannot_leave_the_image(served: Served, path: str) -> None:
    status = _raw_get(served, path.format(id=served.image_ids[0], other=served.image_ids[1]))
    assert status == 404


def test_image_listing_pages_with_a_cursor(served: Served) -> None:
    first = httpx.get(f"{served.url}/api/images", params={"limit": 2}).json()
    assert first["total"] == 3 and len(first["items"]) == 2 and first["next"]
    second = httpx.get(f"{served.url}/api/images", params={"limit": 2, "cursor": first["next"]}).json()
    assert len(second["items"]) == 1 and second["next"] is None
    ids = [item["id"] for item in first["items"] + second["items"]]
    assert sorted(ids) == sorted(served.image_ids)
    assert httpx.get(f"{served.url}/api/images", params={"limit": 0}).status_code == 422


def test_studies_and_filtering_by_study(served: Served) -> None:
    studies = httpx.get(f"{served.url}/api/studies").json()
    assert [(s["name"], s["image_count"]) for s in studies] == [("http", 3)]
    study = httpx.get(f"{served.url}/api/studies/{studies[0]['id']}").json()
    assert study["name"] == "http"
    by_name = httpx.get(f"{served.url}/api/images", params={"study": "http"}).json()
    assert by_name["total"] == 3
    assert httpx.get(f"{served.url}/api/images", params={"study": "nope"}).status_code == 404
    assert httpx.get(f"{served.url}/api/studies/nope").status_code == 404


def test_image_description_links_to_its_ome_zarr(served: Served) -> None:
    image = httpx.get(f"{served.url}/api/images/{served.image_ids[0]}").json()
    assert image["ome_zarr_url"] == f"{served.url}/zarr/{served.image_ids[0]}.ome.zarr"
    assert image["original_file"]["sha256"] and image["original_file"]["size"] > 0
    assert image["pyramid_levels"] == len(image["levels"]) >= 1
    assert image["dtype"] == "uint16" and image["axes"][0]["type"] == "channel"


def test_home_page_lists_studies_and_images(served: Served) -> None:
    page = httpx.get(served.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "cells-0.ome.tif" in page.text and f'href="/images/{served.image_ids[0]}"' in page.text


def test_openapi_describes_the_api(served: Served) -> None:
    spec = httpx.get(f"{served.url}/openapi.json").json()
    for path in (
        "/api/studies",
        "/api/studies/{study_id}",
        "/api/images",
        "/api/images/{image_id}",
        "/zarr/{image_id}.ome.zarr/{key}",
    ):
        assert path in spec["paths"]

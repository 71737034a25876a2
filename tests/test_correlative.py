"""Correlative sets through the real CLI and server: an "EM" reference and an "LM" member of the same sample
(the member drawn from the same scene, rotated, shifted and at 4x the pixel size), registered by landmarks
(the affine recovered, the residual reported) or by a matrix; the member resampled into the reference's
space matches the reference; the overlay, the set's record, its study version and the exports describe it;
bad transforms and landmarks are one line and nothing is stored."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import tifffile
import yaml
from PIL import Image

from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer, run_cli
from tests.test_curation import hela
from tests.test_exports import validate

EM_SHAPE, EM_PIXEL = (240, 320), 0.01  # y, x; micrometres
LM_SHAPE, LM_PIXEL = (90, 110), 0.04
ANGLE = math.radians(12)
# Member (LM) physical (y, x) -> reference (EM) physical: a rotation and a shift, in micrometres.
LINEAR = np.array([[math.cos(ANGLE), -math.sin(ANGLE)], [math.sin(ANGLE), math.cos(ANGLE)]])
SHIFT = np.array([0.35, 0.6])
MATRIX = np.vstack([np.hstack([LINEAR, SHIFT[:, None]]), [0, 0, 1]])


def _scene(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A smooth sample (physical micrometres in the reference's space): blobs of different sizes."""
    blobs = [(0.8, 1.2, 0.25, 3000), (1.6, 2.2, 0.35, 2000), (0.5, 2.6, 0.15, 4000), (1.9, 0.9, 0.3, 2500)]
    value = np.full(y.shape, 200.0)
    for cy, cx, radius, height in blobs:
        value += height * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * radius**2))
    return value


def _pixels(shape: tuple[int, int], pixel: float, matrix: np.ndarray | None = None) -> np.ndarray:
    rows, columns = np.meshgrid(
        (np.arange(shape[0]) + 0.5) * pixel, (np.arange(shape[1]) + 0.5) * pixel, indexing="ij"
    )
    if matrix is not None:  # the member's pixel centres, where they are in the reference's space
        mapped = matrix[:2, :2] @ np.array([rows.ravel(), columns.ravel()]) + matrix[:2, 2:]
        rows, columns = mapped[0].reshape(shape), mapped[1].reshape(shape)
    return np.rint(_scene(rows, columns)).astype(np.uint16)


def _landmarks(path: Path, count: int = 6, noise: float = 0.0) -> Path:
    """Pairs (x, y pixels): points of the member and where the true transform puts them in the reference."""
    rng = np.random.default_rng(4)
    rows = ["name,image_x,image_y,reference_x,reference_y"]
    for index in range(count):
        x, y = rng.uniform(10, LM_SHAPE[1] - 10), rng.uniform(10, LM_SHAPE[0] - 10)
        ref_y, ref_x = (MATRIX[:2, :2] @ np.array([y, x]) * LM_PIXEL + SHIFT) / EM_PIXEL
        ref_x, ref_y = ref_x + rng.normal(0, noise), ref_y + rng.normal(0, noise)
        rows.append(f"p{index},{x:.4f},{y:.4f},{ref_x:.4f},{ref_y:.4f}")
    path.write_text("\n".join(rows) + "\n")
    return path


@dataclass
class Sample:
    root: Path
    repo: Path
    em: str
    lm: str
    em_pixels: np.ndarray


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    root = tmp_path_factory.mktemp("correlative")
    em_pixels = _pixels(EM_SHAPE, EM_PIXEL)
    em = samples.ome_tiff(
        root / "em.ome.tif", em_pixels, axes="YX", PhysicalSizeX=EM_PIXEL, PhysicalSizeY=EM_PIXEL
    )
    lm = samples.ome_tiff(root / "lm.ome.tif", _pixels(LM_SHAPE, LM_PIXEL, MATRIX), axes="YX",
                          PhysicalSizeX=LM_PIXEL, PhysicalSizeY=LM_PIXEL)  # fmt: skip
    repo = root / "repo"
    run_cli("init", repo, check=True)
    (root / "clem.yaml").write_text(yaml.safe_dump(hela()))  # a licence and authors: the crate validates
    ingest = ("ingest", em, lm, "--study", "CLEM", "--metadata", root / "clem.yaml", "--repo", repo, "--json")
    ingested = json.loads(run_cli(*ingest, check=True).stdout)
    ids = {Path(outcome["path"]).name: outcome["images"][0] for outcome in ingested}
    return Sample(root, repo, ids["em.ome.tif"], ids["lm.ome.tif"], em_pixels)


def _spec(sample: Sample, name: str, **member: object) -> Path:
    path = sample.root / f"{name}.yaml"
    spec = {
        "name": name,
        "reference": sample.em,
        "reference_modality": "EM",
        "members": [{"image": sample.lm, "modality": "LM", "colour": "00FF00", **member}],
    }
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def registered(sample: Sample) -> dict[str, object]:
    _landmarks(sample.root / "pairs.csv")
    spec = _spec(sample, "cortex", landmarks="pairs.csv")
    created = run_cli(
        "correlate", "create", spec, "--study", "CLEM", "--repo", sample.repo, "--json", check=True
    )
    return json.loads(created.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def server(sample: Sample, registered: dict[str, object]) -> Iterator[str]:
    with LiveServer(load_settings(sample.repo)) as live:
        yield live.url


def test_landmarks_recover_the_affine_and_report_its_residual(registered: dict[str, object]) -> None:
    (member,) = registered["members"]  # type: ignore[misc]
    assert member["method"] == "landmarks" and member["landmarks"] == 6
    np.testing.assert_allclose(np.array(member["matrix"]), MATRIX, atol=1e-4)  # pairs written to 4 decimals
    assert member["residual"] < 0.01  # exact landmarks (to 4 decimals): no misfit
    (transform,) = member["coordinateTransformations"]
    assert transform["type"] == "affine" and transform["output"] == registered["reference_image_id"]
    assert len(transform["affine"]) == 2 and len(transform["affine"][0]) == 3  # OME-NGFF: d x (d+1)


def test_the_member_resampled_into_the_reference_matches_it(
    sample: Sample, server: str, registered: dict
) -> None:
    url = f"{server}/api/correlative-sets/{registered['id']}/images/{sample.lm}/resampled"
    response = httpx.get(url, params={"region": "100,80,150,120"}, timeout=30)
    assert response.status_code == 200 and response.headers["content-type"] == "image/tiff"
    resampled = tifffile.imread(io.BytesIO(response.content))
    assert resampled.shape == (120, 150) and resampled.dtype == np.float32
    assert resampled.min() > 0  # the region lies inside the member: no pixel left out
    expected = sample.em_pixels[80:200, 100:250].astype(float)
    # LM pixels are 4x coarser: bilinear from them follows the smooth sample within 2% of its range.
    assert np.abs(resampled - expected).mean() < 0.02 * (expected.max() - expected.min())
    shifted = sample.em_pixels[85:205, 100:250].astype(float)  # 5 pixels off: clearly worse
    assert np.abs(resampled - shifted).mean() > 2 * np.abs(resampled - expected).mean()


def test_the_overlay_draws_the_member_in_its_colour_at_its_opacity(
    sample: Sample, server: str, registered: dict
) -> None:
    url = f"{server}/api/correlative-sets/{registered['id']}/overlay"
    pictures = {}
    for opacity in (0.0, 1.0):
        response = httpx.get(url, params={"size": 320, "opacity": f"{sample.lm}:{opacity}"}, timeout=30)
        assert response.status_code == 200
        pictures[opacity] = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(int)
    alone, covered = pictures[0.0], pictures[1.0]
    assert alone.shape == (240, 320, 3)
    assert np.array_equal(alone[..., 0], alone[..., 1]) and np.array_equal(
        alone[..., 1], alone[..., 2]
    )  # grey
    # Where the member lies (the centre), fully opaque: green only; the corners it does not reach stay grey.
    assert covered[120, 160, 1] > 0 and covered[120, 160, 0] == covered[120, 160, 2] == 0
    assert np.array_equal(covered[2, 2], alone[2, 2])
    bad = httpx.get(url, params={"opacity": f"{sample.lm}:2"}, timeout=30)
    assert bad.status_code == 400 and "from 0 to 1" in bad.json()["error"]["message"]


def test_the_set_is_in_the_study_version_and_its_exports(
    sample: Sample, server: str, registered: dict
) -> None:
    listed = json.loads(
        run_cli("correlate", "list", "CLEM", "--repo", sample.repo, "--json", check=True).stdout
    )
    assert [item["id"] for item in listed] == [registered["id"]]
    shown = run_cli("correlate", "show", registered["id"], "--repo", sample.repo, check=True).stdout
    assert "cortex" in shown and "6 landmarks" in shown and "LM" in shown
    versions = json.loads(run_cli("versions", "CLEM", "--repo", sample.repo, "--json", check=True).stdout)
    latest = httpx.get(
        f"{server}/api/studies/{registered['study_id']}/versions/{versions[-1]['number']}"
    ).json()
    (recorded,) = latest["content"]["metadata"]["correlative_sets"]
    assert recorded["id"] == registered["id"] and recorded["members"][0][0] == sample.lm
    jsonld = httpx.get(f"{server}/api/studies/{registered['study_id']}/jsonld").json()
    (collection,) = [part for part in jsonld["hasPart"] if part["@type"] == "Collection"]
    assert collection["identifier"] == registered["id"] and len(collection["hasPart"]) == 2
    (transform,) = json.loads(collection["additionalProperty"][0]["value"])
    np.testing.assert_allclose(transform["affine"], registered["members"][0]["matrix"][:2])
    crate = sample.root / "crate"
    run_cli("export", "CLEM", "--as", "ro-crate", "--to", crate, "--repo", sample.repo, check=True)
    graph = json.loads((crate / "ro-crate-metadata.json").read_text())["@graph"]
    (entity,) = [item for item in graph if item.get("identifier") == registered["id"]]
    root = next(item for item in graph if item["@id"] == "./")
    assert {"@id": entity["@id"]} in root["mentions"]
    nodes = {item["@id"]: item for item in graph}
    assert all(part["@id"] in nodes for part in entity["hasPart"])  # the set's images are the crate's
    (transform,) = [nodes[ref["@id"]] for ref in entity["additionalProperty"]]
    assert transform["propertyID"] == "coordinateTransformations" and "affine" in transform["value"]
    passed, issues = validate(crate)  # roc-validator, RO-Crate 1.3 profile
    assert passed, issues


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ({"matrix": [[1, 0, 0], [2, 0, 0], [0, 0, 1]]}, "the transform is singular"),
        ({"matrix": [[1, 0, 50], [0, 1, 50], [0, 0, 1]]}, "puts the image outside the reference"),
        ({"matrix": [[1, 0], [0, 1]]}, "a 2D affine is 3 x 3"),
        ({"landmarks": "two.csv"}, "2 landmarks; a 2D affine needs at least 3"),
        ({"landmarks": "noisy.csv"}, "residual of"),
        ({"landmarks": "line.csv"}, "lie on one line"),
        ({}, "give either a matrix or landmarks"),
    ],
)
def test_bad_transforms_are_one_line_and_nothing_is_stored(
    sample: Sample, registered: dict, member: dict[str, object], message: str
) -> None:
    _landmarks(sample.root / "two.csv", count=2)
    _landmarks(sample.root / "noisy.csv", noise=40.0)
    (sample.root / "line.csv").write_text(
        "image_x,image_y,reference_x,reference_y\n1,1,5,5\n2,2,6,6\n3,3,7,7\n4,4,8,8\n"
    )
    result = run_cli(
        "correlate", "create", _spec(sample, "bad", **member), "--study", "CLEM", "--repo", sample.repo
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    listed = json.loads(
        run_cli("correlate", "list", "CLEM", "--repo", sample.repo, "--json", check=True).stdout
    )
    assert [item["name"] for item in listed] == ["cortex"]


def test_a_matrix_given_registers_as_the_landmarks_do(sample: Sample, registered: dict) -> None:
    physical = [[float(v) for v in row] for row in MATRIX[:2]]  # d x (d+1) as OME-NGFF writes it
    created = run_cli("correlate", "create", _spec(sample, "by-matrix", matrix=physical), "--study", "CLEM",
                      "--repo", sample.repo, "--json", check=True)  # fmt: skip
    (member,) = json.loads(created.stdout)["members"]
    assert member["method"] == "matrix" and member["residual"] is None
    np.testing.assert_allclose(member["matrix"], registered["members"][0]["matrix"], atol=1e-4)
    again = run_cli("correlate", "create", _spec(sample, "by-matrix", matrix=physical), "--study", "CLEM",
                    "--repo", sample.repo)  # fmt: skip
    assert again.returncode != 0 and "has a correlative set 'by-matrix' already" in again.stderr


def test_the_set_page_overlays_the_member_and_follows_its_opacity(
    sample: Sample, server: str, registered: dict
) -> None:
    """In Chromium: the study page links the set; its page shows the overlay, and moving the member's
    opacity slider redraws it (the server composes) and keeps the setting in the address."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    from tests.test_browser import ARGS, ARTIFACTS, CHROMIUM

    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(f"{server}/studies/{registered['study_id']}")
        page.get_by_role("link", name="cortex").click()
        overlay = page.locator("#overlay")
        page.wait_for_function("() => document.getElementById('overlay').naturalWidth > 0")
        ARTIFACTS.mkdir(exist_ok=True)
        half = np.asarray(
            Image.open(io.BytesIO(overlay.screenshot(path=str(ARTIFACTS / "correlative-50.png"))))
        )
        slider = page.get_by_label("LM")
        slider.focus()
        page.keyboard.press("End")  # fully opaque
        page.wait_for_function("() => document.getElementById('overlay').src.includes('%3A1')")
        page.wait_for_function("() => document.getElementById('overlay').complete")
        page.wait_for_timeout(300)
        opaque = np.asarray(
            Image.open(io.BytesIO(overlay.screenshot(path=str(ARTIFACTS / "correlative-100.png"))))
        )
        assert np.abs(opaque.astype(int) - half.astype(int)).mean() > 1.0, "the overlay did not change"
        assert f"opacity_{sample.lm}=100" in page.url
        assert page.get_by_text("fitted to 6 landmarks").is_visible()
        # A click in the middle zooms in 2x there; "Whole" goes back.
        overlay.click()
        page.wait_for_function(
            "() => document.getElementById('overlay').src.includes('region=80%2C60%2C160%2C120')"
        )
        page.wait_for_function("() => document.getElementById('overlay').complete")
        page.wait_for_timeout(300)
        zoomed = np.asarray(
            Image.open(io.BytesIO(overlay.screenshot(path=str(ARTIFACTS / "correlative-zoom.png"))))
        )
        assert np.abs(zoomed.astype(int) - opaque.astype(int)).mean() > 1.0, (
            "zooming in did not change the overlay"
        )
        assert "region=80%2C60%2C160%2C120" in page.url
        page.get_by_role("button", name="Whole").click()
        page.wait_for_function(
            "() => document.getElementById('overlay').src.includes('region=0%2C0%2C320%2C240')"
        )
        browser.close()
    assert all(url.startswith((server, "data:")) for url in requests)


def test_an_overlay_of_a_region_is_that_part_of_the_whole(
    sample: Sample, server: str, registered: dict
) -> None:
    """Zoomed in at 1:1, the overlay of a region is the whole overlay's pixels there (within a grey level)."""
    url = f"{server}/api/correlative-sets/{registered['id']}/overlay"
    opacity = f"{sample.lm}:0.8"
    whole = httpx.get(url, params={"size": 320, "opacity": opacity}, timeout=30)
    part = httpx.get(url, params={"size": 160, "opacity": opacity, "region": "80,60,160,120"}, timeout=30)
    assert whole.status_code == part.status_code == 200
    whole_pixels = np.asarray(Image.open(io.BytesIO(whole.content))).astype(int)
    part_pixels = np.asarray(Image.open(io.BytesIO(part.content))).astype(int)
    assert whole_pixels.shape[:2] == (240, 320) and part_pixels.shape[:2] == (120, 160)
    assert np.abs(part_pixels - whole_pixels[60:180, 80:240]).max() <= 1
    assert part.headers["etag"] != whole.headers["etag"]
    bad = httpx.get(url, params={"region": "400,0,10,10"}, timeout=30)
    assert bad.status_code == 400 and "region" in bad.json()["error"]["message"]


def _linear_scene(z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A field linear in the reference's physical (z, y, x): sampled linearly, it is reproduced exactly."""
    return 1000 + 900 * z + 400 * y + 150 * x


def test_a_volume_under_an_oblique_transform_is_resampled_through_its_planes(tmp_path: Path) -> None:
    """A 3D member tilted 25 degrees about x against the reference: each reference plane cuts through
    several of the member's planes, and the resampled values are the scene at every point (to rounding),
    which a member's nearest single plane could not give."""
    angle = math.radians(25)
    rotation = np.array(
        [[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]]
    )
    shift = np.array([0.6, 0.2, 0.3])
    matrix = np.vstack([np.hstack([rotation, shift[:, None]]), [0, 0, 0, 1]])
    member_shape, member_pixel = (20, 24, 24), 0.1
    grid = np.meshgrid(*((np.arange(n) + 0.5) * member_pixel for n in member_shape), indexing="ij")
    mapped = rotation @ np.array([axis.ravel() for axis in grid]) + shift[:, None]
    member = _linear_scene(*(axis.reshape(member_shape) for axis in mapped))
    raw = tmp_path / "raw"
    raw.mkdir()
    samples.ome_tiff(raw / "ref.ome.tif", np.zeros((16, 40, 40), np.uint16), axes="ZYX",
                     PhysicalSizeX=0.1, PhysicalSizeY=0.1, PhysicalSizeZ=0.1)  # fmt: skip
    samples.ome_tiff(raw / "tilted.ome.tif", member.astype(np.float32), axes="ZYX",
                     PhysicalSizeX=0.1, PhysicalSizeY=0.1, PhysicalSizeZ=0.1)  # fmt: skip
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    ingested = json.loads(
        run_cli("ingest", raw, "--study", "3D", "--repo", repo, "--json", check=True).stdout
    )
    ids = {Path(outcome["path"]).name: outcome["images"][0] for outcome in ingested}
    spec = {
        "name": "tilted",
        "reference": ids["ref.ome.tif"],
        "members": [{"image": ids["tilted.ome.tif"], "modality": "LM", "matrix": matrix.tolist()}],
    }
    (tmp_path / "set.yaml").write_text(yaml.safe_dump(spec))
    created = json.loads(
        run_cli(
            "correlate",
            "create",
            tmp_path / "set.yaml",
            "--study",
            "3D",
            "--repo",
            repo,
            "--json",
            check=True,
        ).stdout
    )
    z = 9
    with LiveServer(load_settings(repo)) as live:
        url = f"{live.url}/api/correlative-sets/{created['id']}/images/{ids['tilted.ome.tif']}/resampled"
        response = httpx.get(url, params={"z": z, "region": "0,0,40,40"}, timeout=30)
    assert response.status_code == 200, response.text
    resampled = tifffile.imread(io.BytesIO(response.content))
    # Where each reference pixel lies in the member, and whether linear sampling there is free of the edge.
    rows, columns = np.meshgrid((np.arange(40) + 0.5) * 0.1, (np.arange(40) + 0.5) * 0.1, indexing="ij")
    points = np.array([np.full(rows.size, (z + 0.5) * 0.1), rows.ravel(), columns.ravel()])
    inside_member = np.linalg.inv(rotation) @ (points - shift[:, None]) / member_pixel - 0.5
    interior = np.all((inside_member >= 0) & (inside_member <= np.array(member_shape)[:, None] - 1), axis=0)
    assert interior.sum() > 300  # the plane cuts the member over a good part of the reference
    planes = np.floor(inside_member[0][interior])
    assert planes.max() - planes.min() >= 5  # and through many of its planes
    expected = _linear_scene(*points)
    np.testing.assert_allclose(resampled.ravel()[interior], expected[interior], rtol=1e-5)
    outside = np.any((inside_member < -0.5) | (inside_member > np.array(member_shape)[:, None] - 0.5), axis=0)
    assert np.all(resampled.ravel()[outside] == 0)


def test_resampling_reads_each_plane_once_and_only_the_box_it_needs() -> None:
    """A 64 x 64 window of a 2000 x 2000 member plane, shifted: one read, of the window and its edge."""
    from fairimage.model.viewing.correlative import resample

    plane = np.arange(2000 * 2000, dtype=np.float64).reshape(2000, 2000)
    reads: list[tuple[int, tuple[int, int], tuple[int, int]]] = []

    def read(z: int, rows: tuple[int, int], columns: tuple[int, int]) -> np.ndarray:
        reads.append((z, rows, columns))
        return plane[rows[0] : rows[1], columns[0] : columns[1]]

    matrix = np.array([[1, 0, -500.25], [0, 1, -700.5], [0, 0, 1]])  # member -> reference, 1 unit pixels
    values, inside = resample(read, plane.shape, (1.0, 1.0), matrix, (64, 64), (0.0, 0.0), (1.0, 1.0))
    assert inside.all()
    assert reads == [(0, (500, 565), (700, 765))]  # rows 500.25-563.25, columns 700.5-763.5
    # Linear sampling of a linear ramp is the ramp at the mapped point.
    rows, columns = np.meshgrid(np.arange(64) + 500.25, np.arange(64) + 700.5, indexing="ij")
    np.testing.assert_allclose(values, rows * 2000 + columns)

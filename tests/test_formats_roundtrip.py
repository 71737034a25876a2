"""Every supported input, ingested with the real CLI, read back pixel-exact over HTTP by zarr-python,
with its axes, physical sizes and channels reported by the API."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest
import tifffile
import zarr
from ome_zarr_models.v05.image import Image as NgffImage
from PIL import Image

from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer, run_cli


@dataclass
class Expected:
    pixels: np.ndarray
    axes: str
    sizes: dict[str, tuple[float, str]] = field(default_factory=dict)
    channels: list[str] | None = None


def _inputs(folder: Path) -> dict[str, list[Expected]]:
    """Write one file per case; return what each image of it must look like once stored."""
    cases: dict[str, list[Expected]] = {}
    czyx = samples.ramp((3, 4, 67, 91))
    samples.ome_tiff(
        folder / "confocal.ome.tif",
        czyx,
        PhysicalSizeX=0.2,
        PhysicalSizeY=0.2,
        PhysicalSizeZ=1.5,
        Channel={"Name": ["DAPI", "GFP", "RFP"]},
    )
    cases["confocal.ome.tif"] = [
        Expected(czyx, "czyx", {"x": (0.2, "micrometer"), "z": (1.5, "micrometer")}, ["DAPI", "GFP", "RFP"])
    ]
    overview, detail = samples.ramp((100, 120), "uint8"), samples.ramp((3, 50, 60), seed=2)
    samples.multi_series_ome_tiff(folder / "two-series.ome.tif", overview, detail)
    cases["two-series.ome.tif"] = [
        Expected(overview, "yx"),
        Expected(detail, "zyx", {"x": (0.5, "micrometer"), "z": (2.0, "micrometer")}),
    ]
    plane = samples.ramp((1300, 1500), seed=3)  # several ~1 MiB chunks, so the stored image has a pyramid
    samples.pyramidal_ome_tiff(folder / "pyramid.ome.tif", plane)
    cases["pyramid.ome.tif"] = [Expected(plane, "yx", {"y": (0.25, "micrometer")})]
    tzcyx = samples.ramp((2, 3, 2, 40, 50), seed=4)
    samples.imagej_hyperstack(folder / "hyperstack.tif", tzcyx)
    cases["hyperstack.tif"] = [
        Expected(
            tzcyx.transpose(0, 2, 1, 3, 4),
            "tczyx",
            {"x": (0.3, "micrometer"), "z": (2.5, "micrometer"), "t": (0.5, "second")},
        )
    ]
    pages = samples.ramp((5, 64, 80), "int16", seed=5)
    tifffile.imwrite(folder / "pages.tif", pages, photometric="minisblack")
    cases["pages.tif"] = [Expected(pages, "zyx")]
    odd = samples.ramp((517, 1031), "float32", seed=6)
    tifffile.imwrite(folder / "odd-float.tif", odd, bigtiff=True)
    cases["odd-float.tif"] = [Expected(odd, "yx")]
    mask = samples.ramp((33, 1025), "uint8", seed=7) > 128
    tifffile.imwrite(folder / "mask.tif", mask)
    cases["mask.tif"] = [Expected(mask.astype(np.uint8), "yx")]
    pixel = np.array([[42]], dtype=np.uint16)
    tifffile.imwrite(folder / "one-pixel.tif", pixel)
    cases["one-pixel.tif"] = [Expected(pixel, "yx")]
    gray = samples.ramp((70, 90), "uint8", seed=8)
    samples.png(folder / "gray.png", gray)
    cases["gray.png"] = [Expected(gray, "yx")]
    gray16 = samples.ramp((70, 90), "uint16", seed=9)
    Image.fromarray(gray16).save(folder / "gray16.png")
    cases["gray16.png"] = [Expected(gray16, "yx")]
    rgb = samples.ramp((60, 80, 3), "uint8", seed=10)
    samples.png(folder / "colour.png", rgb)
    cases["colour.png"] = [Expected(rgb.transpose(2, 0, 1), "cyx", channels=["Red", "Green", "Blue"])]
    rgba = samples.ramp((60, 80, 4), "uint8", seed=11)
    samples.png(folder / "alpha.png", rgba)
    cases["alpha.png"] = [Expected(rgba.transpose(2, 0, 1), "cyx")]
    Image.fromarray(rgb).save(folder / "photo.jpg", quality=90)
    decoded = np.asarray(Image.open(folder / "photo.jpg"))
    cases["photo.jpg"] = [Expected(decoded.transpose(2, 0, 1), "cyx")]
    zyx = samples.ramp((3, 70, 90), seed=12)
    samples.ome_zarr_v04(folder / "old.ome.zarr", zyx)
    cases["old.ome.zarr"] = [Expected(zyx, "zyx", {"z": (2.0, "micrometer"), "x": (0.5, "micrometer")})]
    cyx = samples.ramp((2, 80, 60), seed=15)
    samples.ome_zarr_v05(folder / "new.ome.zarr", cyx)
    cases["new.ome.zarr"] = [Expected(cyx, "cyx", {"x": (0.65, "micrometer")})]
    series = [samples.ramp((40, 30), seed=13), samples.ramp((20, 50), seed=14)]
    samples.bioformats2raw(folder / "converted.zarr", series)
    cases["converted.zarr"] = [Expected(series[0], "yx"), Expected(series[1], "yx")]
    return cases


@dataclass
class Corpus:
    url: str
    cases: dict[str, list[Expected]]
    outcomes: dict[str, dict[str, object]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    root = tmp_path_factory.mktemp("roundtrip")
    inputs = root / "inputs"
    inputs.mkdir()
    cases = _inputs(inputs)
    (inputs / "notes.txt").write_text("not an image")
    run_cli("init", root / "repo", check=True)
    result = run_cli("ingest", "--repo", root / "repo", inputs, "--study", "formats", "--json")
    assert result.returncode == 0, result.stderr
    outcomes = {Path(o["path"]).name: o for o in json.loads(result.stdout)}
    with LiveServer(load_settings(root / "repo")) as server:
        yield Corpus(server.url, cases, outcomes)


def test_every_input_was_ingested_and_unknown_files_skipped(corpus: Corpus) -> None:
    for name, expected in corpus.cases.items():
        outcome = corpus.outcomes[name]
        assert outcome["status"] == "ingested", outcome
        assert len(outcome["images"]) == len(expected)
    assert corpus.outcomes["notes.txt"]["status"] == "skipped"
    assert "not an image fairimage reads" in corpus.outcomes["notes.txt"]["error"]


@pytest.mark.parametrize(
    "name",
    [
        "confocal.ome.tif",
        "two-series.ome.tif",
        "pyramid.ome.tif",
        "hyperstack.tif",
        "pages.tif",
        "odd-float.tif",
        "mask.tif",
        "one-pixel.tif",
        "gray.png",
        "gray16.png",
        "colour.png",
        "alpha.png",
        "photo.jpg",
        "old.ome.zarr",
        "new.ome.zarr",
        "converted.zarr",
    ],
)
def test_pixels_and_metadata_survive_the_round_trip(corpus: Corpus, name: str) -> None:
    for image_id, expected in zip(corpus.outcomes[name]["images"], corpus.cases[name], strict=True):
        described = httpx.get(f"{corpus.url}/api/images/{image_id}").json()
        assert "".join(axis["name"] for axis in described["axes"]) == expected.axes
        assert described["shape"] == list(expected.pixels.shape)
        for axis, (size, unit) in expected.sizes.items():
            assert described["physical_sizes"][axis]["size"] == pytest.approx(size)
            assert described["physical_sizes"][axis]["unit"] == unit
        if expected.channels:
            assert [c["label"] for c in described["channels"]] == expected.channels
        assert described["original_file"]["name"] == name
        group = zarr.open_group(described["ome_zarr_url"], mode="r")
        stored = group["0"][...]
        assert stored.dtype == expected.pixels.dtype
        np.testing.assert_array_equal(stored, expected.pixels)


def test_stored_images_are_valid_ome_zarr_05_pyramids(corpus: Corpus) -> None:
    image_id = corpus.outcomes["odd-float.tif"]["images"][0]
    url = f"{corpus.url}/zarr/{image_id}.ome.zarr"
    group = zarr.open_group(url, mode="r")
    model = NgffImage.from_zarr(group)  # validates the whole group against the OME-NGFF 0.5 schema
    assert model.ome_attributes.version == "0.5"
    levels = [group[d.path] for d in model.ome_attributes.multiscales[0].datasets]
    assert [level.shape for level in levels] == [(517, 1031), (259, 516), (130, 258)]
    assert levels[0].metadata.dimension_names == ("y", "x")
    assert levels[0].metadata.codecs[-1].to_dict()["configuration"]["cname"] == "zstd"
    for upper, lower in itertools.pairwise(levels):  # each level is the 2x2 mean of the one above
        big = upper[...].astype(np.float64)
        assert lower[0, 0] == pytest.approx(big[:2, :2].mean(), rel=1e-5)


def test_channel_windows_come_from_the_data(corpus: Corpus) -> None:
    image_id = corpus.outcomes["confocal.ome.tif"]["images"][0]
    attrs = httpx.get(f"{corpus.url}/zarr/{image_id}.ome.zarr/zarr.json").json()["attributes"]["ome"]
    pixels = corpus.cases["confocal.ome.tif"][0].pixels
    for index, channel in enumerate(attrs["omero"]["channels"]):
        window = channel["window"]
        assert window["min"] == pixels[index].min() and window["max"] == pixels[index].max()
        assert window["min"] <= window["start"] < window["end"] <= window["max"]


def test_ome_zarr_py_reads_the_served_pyramid(corpus: Corpus) -> None:
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    image_id = corpus.outcomes["pyramid.ome.tif"]["images"][0]
    nodes = list(Reader(parse_url(f"{corpus.url}/zarr/{image_id}.ome.zarr"))())
    pyramid = nodes[0].data
    described = httpx.get(f"{corpus.url}/api/images/{image_id}").json()
    assert len(pyramid) == len(described["levels"]) == 3  # 1300 x 1500, 650 x 750, 325 x 375
    np.testing.assert_array_equal(np.asarray(pyramid[0]), corpus.cases["pyramid.ome.tif"][0].pixels)


def test_bioio_reads_the_served_image_with_physical_sizes(corpus: Corpus) -> None:
    from bioio import BioImage
    from bioio_ome_zarr import Reader as OmeZarrReader

    image_id = corpus.outcomes["confocal.ome.tif"]["images"][0]
    image = BioImage(f"{corpus.url}/zarr/{image_id}.ome.zarr", reader=OmeZarrReader)
    assert pytest.approx(0.2) == image.physical_pixel_sizes.X
    assert pytest.approx(1.5) == image.physical_pixel_sizes.Z
    np.testing.assert_array_equal(image.get_image_data("CZYX"), corpus.cases["confocal.ome.tif"][0].pixels)

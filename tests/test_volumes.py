"""Volumes (128 planes or more, e.g. volume EM from sections): stored in 64^3 cubes, with a pyramid that
halves only y and x while a voxel is much deeper than wide and z too once it is about isotropic, as each
level's scale says; label volumes halve by mode. Checked through the real CLI and server: the levels' pixels
are what the arithmetic says, rendered planes of the lower levels are the planes that hold level 0's, and
zarr-python reads the served levels."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import tifffile
import zarr
from ome_zarr_models.v05.image import Image as NgffImage
from ome_zarr_models.v05.image_label import ImageLabel
from PIL import Image

from fairimage.model.image import choose_chunks, level_plane, pyramid_steps
from fairimage.model.viewing.render import ChannelRendering, compose
from fairimage.ngff.pyramid import downsample_blocks, mode_blocks
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer, run_cli

PLANES, SIDE = 130, 256
NM_PER_CM = 1e7


def _mean(block: np.ndarray, step: tuple[int, ...]) -> np.ndarray:
    """The mean of each block of ``step`` voxels rounded half up, written out plainly (even sides only)."""
    shape = [part for n, f in zip(block.shape, step, strict=True) for part in (n // f, f)]
    total = block.astype(np.int64).reshape(shape).sum(axis=(1, 3, 5))
    count = int(np.prod(step))
    return ((total + count // 2) // count).astype(block.dtype)


@pytest.mark.parametrize(
    ("shape", "depth", "expected"),
    [
        # 4 nm pixels, 30 nm sections: y and x halved three times (8, 16, 32 nm), then z too.
        ((500, 2048, 2048), 7.5, ["yx", "yx", "yx", "zyx", "zyx", "z"]),
        ((200, 256, 256), 1.0, ["zyx", "zyx"]),  # isotropic (FIB-SEM): z, y and x from the first level on
        ((5000, 128, 128), 10.0, ["yx"] + ["z"] * 7),  # a deep, narrow volume: z alone once y and x fit
        ((30, 1024, 1024), 5.0, []),  # 30 planes: a stack, not a volume; its planes fit one chunk each
        ((30, 4096, 4096), 5.0, ["yx", "yx"]),  # a stack's pyramid keeps every plane
    ],
)
def test_pyramid_halves_z_only_once_voxels_are_about_isotropic(
    shape: tuple[int, ...], depth: float, expected: list[str]
) -> None:
    chunks = choose_chunks(shape, "zyx", 1)
    steps = pyramid_steps(shape, "zyx", chunks, depth)
    assert [
        "".join(axis for axis, factor in zip("zyx", step, strict=True) if factor == 2) for step in steps
    ] == expected


def test_volumes_are_stored_in_cubes_and_stacks_in_planes() -> None:
    assert choose_chunks((200, 512, 512), "zyx", 1) == (64, 64, 64)
    assert choose_chunks((2, 128, 512, 512), "czyx", 2) == (1, 64, 64, 64)
    assert choose_chunks((127, 512, 512), "zyx", 1) == (4, 512, 512)  # planes of a stack, several per chunk
    assert choose_chunks((64, 2048, 2048), "zyx", 2) == (1, 512, 1024)


def test_a_lower_levels_plane_is_the_one_holding_level_0s() -> None:
    assert [level_plane((70, 256, 256), (35, 64, 64), "zyx", z) for z in (0, 1, 2, 41, 69)] == [
        0,
        0,
        1,
        20,
        34,
    ]
    assert level_plane((9, 64, 64), (5, 32, 32), "zyx", 8) == 4  # the odd last plane, paired with itself
    assert level_plane((70, 256, 256), (70, 128, 128), "zyx", 41) == 41


def test_label_volumes_halve_by_mode_and_never_invent_an_id() -> None:
    labels = np.zeros((4, 4, 4), np.uint16)
    labels[:2, :2, :2] = [[[7, 7], [7, 3]], [[3, 3], [5, 5]]]  # 7 three times, 3 three times: first wins
    labels[2:, 2:, 2:] = 9
    labels[2:, :2, :2] = [[[1, 2], [3, 4]], [[5, 6], [8, 10]]]  # all different: the first in reading order
    halved = mode_blocks(labels, (2, 2, 2))
    assert halved[0, 0, 0] == 7 and halved[1, 1, 1] == 9 and halved[1, 0, 0] == 1
    assert set(np.unique(halved)) <= set(np.unique(labels))
    mean = downsample_blocks(labels, (2, 2, 2))
    assert mean[0, 0, 0] == 5  # (7*3 + 3*3 + 5*2 = 40) / 8: a mean invents an id a mode does not
    assert np.array_equal(downsample_blocks(labels, (2, 2, 2)), _mean(labels, (2, 2, 2)))


def _sections(folder: Path) -> np.ndarray:
    """PLANES uint16 sections of SIDE x SIDE with 4 nm pixels (TIFF resolution tags), stacked in z order."""
    folder.mkdir()
    volume = samples.ramp((PLANES, SIDE, SIDE), seed=11)
    for z, plane in enumerate(volume):
        tifffile.imwrite(
            folder / f"section_{z + 1:03d}.tif",
            plane,
            resolution=(NM_PER_CM / 4, NM_PER_CM / 4),
            resolutionunit="CENTIMETER",
        )
    return volume


def test_sections_become_a_volume_whose_pyramid_halves_z_once_voxels_are_isotropic(tmp_path: Path) -> None:
    volume = _sections(tmp_path / "sections")
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    run_cli("ingest", tmp_path / "sections", "--sections", "--z-spacing", "10nm", "--repo", repo, check=True)
    [image] = json.loads(run_cli("images", "--repo", repo, "--json", check=True).stdout)
    group = zarr.open_group(repo / "objects" / "images" / f"{image['id']}.ome.zarr", mode="r")
    multiscale = NgffImage.from_zarr(group).ome_attributes.multiscales[0]  # valid OME-NGFF 0.5
    scales = [dataset.coordinateTransformations[0].scale for dataset in multiscale.datasets]
    # 10 nm sections of 4 nm pixels: y and x halved once (8 nm, 1.25x as deep as wide), then all three;
    # then z alone, as 64 x 64 planes fit one chunk.
    assert scales == [[10.0, 4.0, 4.0], [10.0, 8.0, 8.0], [20.0, 16.0, 16.0], [40.0, 16.0, 16.0]]
    levels = [group[dataset.path] for dataset in multiscale.datasets]
    assert [level.shape for level in levels] == [(130, 256, 256), (130, 128, 128), (65, 64, 64), (33, 64, 64)]
    assert levels[0].chunks == (64, 64, 64)
    np.testing.assert_array_equal(levels[0][...], volume)
    level_1 = _mean(volume, (1, 2, 2))
    np.testing.assert_array_equal(levels[1][...], level_1)
    level_2 = _mean(level_1, (2, 2, 2))
    np.testing.assert_array_equal(levels[2][...], level_2)
    odd_paired = np.concatenate([level_2, level_2[-1:]])  # 65 planes: the last one paired with itself
    np.testing.assert_array_equal(levels[3][...], _mean(odd_paired, (2, 1, 1)))
    assert "2x2x2" in group.attrs["ome"]["multiscales"][0]["metadata"]["description"]

    mask = np.zeros(volume.shape, np.uint16)  # two objects, one ending at plane 41
    mask[10:42, 20:120, 30:200] = 1
    mask[30:128, 150:240, 100:180] = 2
    tifffile.imwrite(tmp_path / "cells.tif", mask)
    run_cli("label", "add", image["id"], tmp_path / "cells.tif", "--name", "cells", "--annotator", "Ada",
            "--repo", repo, check=True)  # fmt: skip

    with LiveServer(load_settings(repo)) as server:
        url = f"{server.url}/zarr/{image['id']}.ome.zarr"
        served = zarr.open_group(url, mode="r")
        np.testing.assert_array_equal(served["2"][...], levels[2][...])
        label = zarr.open_group(f"{url}/labels/cells", mode="r")
        ImageLabel.from_zarr(label)
        label_levels = [d["path"] for d in label.attrs["ome"]["multiscales"][0]["datasets"]]
        expected = mask
        for path in label_levels[1:]:
            factors = tuple(-(-n // m) for n, m in zip(expected.shape, label[path].shape, strict=True))
            expected = mode_blocks(expected, factors)
            np.testing.assert_array_equal(label[path][...], expected)
        assert label[label_levels[-1]].shape[0] < PLANES  # the label volume's pyramid halves z too

        render = f"{server.url}/api/images/{image['id']}/render"
        with httpx.Client(timeout=30) as client:
            pictures = {
                (level, z): client.get(render, params={"level": level, "z": z})
                for level in (0, 2)
                for z in (40, 41, 42)
            }
        assert all(response.status_code == 200 for response in pictures.values())
        # Level 2 has half the planes: planes 40 and 41 of level 0 are its plane 20, 42 is its plane 21.
        assert pictures[(2, 40)].content == pictures[(2, 41)].content != pictures[(2, 42)].content
        assert pictures[(0, 40)].content != pictures[(0, 41)].content
        assert re.match(r"image/png", pictures[(2, 41)].headers["content-type"])

        orthogonal = f"{server.url}/api/images/{image['id']}/orthogonal"
        with httpx.Client(timeout=30) as client:
            xz = client.get(orthogonal, params={"view": "xz", "at": 100, "window": "0:65535"})
            yz_small = client.get(orthogonal, params={"view": "yz", "size": 100})
            beyond = client.get(orthogonal, params={"view": "xz", "at": SIDE})
    # Row 100 through all 130 planes, each plane 2.5 rows deep (10 nm sections, 4 nm pixels).
    grey = compose([volume[:, 100, :]], (ChannelRendering(0, "FFFFFF", 0, 65535),))
    expected = np.asarray(Image.fromarray(grey, "RGB").resize((SIDE, 325), Image.Resampling.BILINEAR))
    picture = np.asarray(Image.open(io.BytesIO(xz.content)).convert("RGB")).astype(int)
    assert picture.shape == (325, SIDE, 3) and np.abs(picture - expected).max() <= 1
    assert Image.open(io.BytesIO(yz_small.content)).size == (79, 100)  # 256 x 325 fitted into 100
    assert beyond.status_code == 400
    assert (
        beyond.json()["error"]["message"]
        == f"at={SIDE}: the xz view cuts at y, which is 0 to {SIDE - 1} here"
    )


@dataclass
class ServedVolume:
    url: str  # the image's OME-Zarr URL
    levels: list[np.ndarray]  # as stored
    label_levels: list[np.ndarray]


@pytest.fixture(scope="module")
def served_volume(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedVolume]:
    """A 130-plane OME-TIFF volume (30 nm sections, 4 nm pixels) with a label "cells", served."""
    root = tmp_path_factory.mktemp("volume")
    volume = samples.ramp((PLANES, SIDE, SIDE), seed=3)
    path = samples.ome_tiff(root / "volume.ome.tif", volume, axes="ZYX", PhysicalSizeX=0.004,
                            PhysicalSizeY=0.004, PhysicalSizeZ=0.03)  # fmt: skip
    mask = np.zeros(volume.shape, np.uint16)
    mask[20:110, 40:200, 60:220] = 1
    mask[60:130, 100:140, 10:250] = 2
    tifffile.imwrite(root / "cells.tif", mask)
    repo = root / "repo"
    run_cli("init", repo, check=True)
    (outcome,) = json.loads(run_cli("ingest", path, "--repo", repo, "--json", check=True).stdout)
    image_id = outcome["images"][0]
    run_cli("label", "add", image_id, root / "cells.tif", "--name", "cells", "--annotator", "Ada",
            "--repo", repo, check=True)  # fmt: skip
    stored = zarr.open_group(repo / "objects" / "images" / f"{image_id}.ome.zarr", mode="r")
    levels = [stored[d["path"]][...] for d in stored.attrs["ome"]["multiscales"][0]["datasets"]]
    with LiveServer(load_settings(repo)) as server:
        url = f"{server.url}/zarr/{image_id}.ome.zarr"
        label = zarr.open_group(f"{url}/labels/cells", mode="r")  # labels are stored apart, served inside
        label_levels = [label[d["path"]][...] for d in label.attrs["ome"]["multiscales"][0]["datasets"]]
        assert levels[-1].shape[0] < PLANES and label_levels[-1].shape[0] < PLANES  # z is in the pyramids
        assert np.array_equal(label_levels[0], mask)
        yield ServedVolume(url, levels, label_levels)


def test_tensorstore_bioio_and_ome_zarr_py_read_every_level_of_a_served_volume(
    served_volume: ServedVolume,
) -> None:
    """The 3D clients people use on volumes, over HTTP, pixel for pixel at every level, with the scales."""
    import tensorstore as ts
    from bioio import BioImage
    from bioio_ome_zarr import Reader as OmeZarrReader
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    url, levels = served_volume.url, served_volume.levels
    for path, expected in enumerate(levels):
        spec = {"driver": "zarr3", "kvstore": {"driver": "http", "base_url": f"{url}/{path}/"}}
        np.testing.assert_array_equal(ts.open(spec, read=True).result().read().result(), expected)

    image = BioImage(url, reader=OmeZarrReader)
    assert len(image.resolution_levels) == len(levels)
    assert pytest.approx((0.03, 0.004)) == (image.physical_pixel_sizes.Z, image.physical_pixel_sizes.X)
    for level, expected in enumerate(levels):
        image.set_resolution_level(level)
        np.testing.assert_array_equal(image.get_image_data("ZYX"), expected)

    nodes = list(Reader(parse_url(url))())
    assert len(nodes[0].data) == len(levels)
    for served, expected in zip(nodes[0].data, levels, strict=True):
        np.testing.assert_array_equal(np.asarray(served), expected)


NAPARI = Path(__file__).resolve().parent.parent / ".venv-napari" / "bin" / "python"
XVFB = Path("/usr/bin/xvfb-run")


@pytest.mark.slow
@pytest.mark.skipif(
    not NAPARI.exists(), reason="napari's environment is missing: make test-all builds .venv-napari"
)
@pytest.mark.skipif(
    not XVFB.exists(), reason="napari draws with OpenGL: make test-all installs Debian's xvfb"
)
def test_napari_opens_a_served_volume_and_its_label_level_by_level(served_volume: ServedVolume) -> None:
    """napari with napari-ome-zarr, headless (Qt offscreen on a virtual X server for OpenGL), opens the URL
    as a user would: an image layer and a labels layer, each multiscale, every level's pixels equal to the
    stored ones, z scaled as stored."""
    script = Path(__file__).resolve().parent / "clients" / "napari_open.py"
    command = [XVFB, "-a", "env", "QT_QPA_PLATFORM=offscreen", NAPARI, script, served_volume.url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    layers = {layer["kind"]: layer for layer in json.loads(result.stdout.strip().splitlines()[-1])}
    assert set(layers) == {"Image", "Labels"}
    for kind, stored in (("Image", served_volume.levels), ("Labels", served_volume.label_levels)):
        opened = layers[kind]["levels"]
        assert [level["shape"] for level in opened] == [list(level.shape) for level in stored]
        assert [level["sha256"] for level in opened] == [
            hashlib.sha256(level.tobytes()).hexdigest() for level in stored
        ]
    assert layers["Image"]["scale"] == pytest.approx([0.03, 0.004, 0.004])

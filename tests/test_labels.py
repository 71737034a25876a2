"""Label images as users add and read them: a mask added with the CLI becomes the image's OME-NGFF label,
read over HTTP by zarr-python and ome-zarr-py, with a pyramid that never invents an object id; who or what
made it is recorded (a model's label is AI-generated); a mask that does not fit is one line."""

from __future__ import annotations

import itertools
import json
import shutil
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest
import tifffile
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Label as LabelSpec
from ome_zarr.reader import Reader
from ome_zarr_models.v05.image_label import ImageLabel

from fairimage.ngff.pyramid import mode_2x
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer, run_cli


def nuclei(height: int, width: int) -> np.ndarray:
    """Instance labels: discs with ids 1..n on a background of 0, some touching."""
    yy, xx = np.mgrid[0:height, 0:width]
    mask = np.zeros((height, width), np.uint16)
    for index, (cy, cx) in enumerate(itertools.product(range(20, height, 45), range(25, width, 50)), start=1):
        mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= 22**2] = index
    return mask


@pytest.fixture
def labelled(tmp_path: Path) -> tuple[Path, str, np.ndarray]:
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    image = samples.ome_tiff(tmp_path / "cells.ome.tif", samples.ramp((2, 301, 203)), axes="CYX")
    (outcome,) = json.loads(
        run_cli("ingest", image, "--study", "Cells", "--repo", repo, "--json", check=True).stdout
    )
    mask = nuclei(301, 203)
    tifffile.imwrite(tmp_path / "nuclei.tif", mask)
    return repo, outcome["images"][0], mask


def test_a_mask_becomes_the_images_label_that_zarr_clients_read(tmp_path: Path, labelled) -> None:
    repo, image_id, mask = labelled
    added = run_cli(
        "label",
        "add",
        image_id,
        tmp_path / "nuclei.tif",
        "--name",
        "nuclei",
        "--annotator",
        "Ada Lovelace",
        "--repo",
        repo,
        "--json",
        check=True,
    )
    label = json.loads(added.stdout)
    assert (label["name"], label["values"], label["ai_generated"]) == ("nuclei", int(mask.max()), False)
    predicted = (mask > 0).astype(np.uint8)
    samples.png(tmp_path / "cells.png", predicted)
    run_cli(
        "label",
        "add",
        image_id,
        tmp_path / "cells.png",
        "--name",
        "foreground",
        "--model",
        "cellpose@3.1",
        "--repo",
        repo,
        check=True,
    )
    listed = json.loads(run_cli("label", "list", image_id, "--repo", repo, "--json", check=True).stdout)
    assert [(x["name"], x["made_by"]["kind"], x["ai_generated"]) for x in listed] == [
        ("foreground", "model", True),
        ("nuclei", "person", False),
    ]

    with LiveServer(load_settings(repo)) as server:
        url = f"{server.url}/zarr/{image_id}.ome.zarr"
        labels = zarr.open_group(f"{url}/labels", mode="r")
        assert labels.attrs["ome"]["labels"] == ["foreground", "nuclei"]
        group = zarr.open_group(f"{url}/labels/nuclei", mode="r")
        ImageLabel.from_zarr(group)  # multiscales and image-label as OME-NGFF 0.5 says
        attributes = group.attrs["ome"]
        assert attributes["image-label"]["source"] == {"image": "../../"}
        assert {c["label-value"] for c in attributes["image-label"]["colors"]} == set(
            range(1, mask.max() + 1)
        )
        levels = [dataset["path"] for dataset in attributes["multiscales"][0]["datasets"]]
        assert np.array_equal(group[levels[0]][...], mask)
        expected = mask
        for level in levels[1:]:  # each level is the mode of the one above: no id that was not there
            expected = mode_2x(expected)
            assert np.array_equal(group[level][...], expected)
        assert set(np.unique(group[levels[-1]][...])) <= set(np.unique(mask))
        scale = attributes["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]
        image_scale = zarr.open_group(url, mode="r").attrs["ome"]["multiscales"][0]["datasets"][0]
        assert scale == image_scale["coordinateTransformations"][0]["scale"][1:]  # the image's y, x
        nodes = list(Reader(parse_url(url))())
        assert any(isinstance(spec, LabelSpec) for node in nodes for spec in node.specs)
        api = httpx.get(f"{server.url}/api/images/{image_id}/labels").json()
        assert {item["name"]: item["ai_generated"] for item in api} == {"foreground": True, "nuclei": False}
        assert httpx.get(f"{url}/labels/unknown/zarr.json").status_code == 404

        run_cli("study", "policy", "Cells", "restricted", "--repo", repo, check=True)
        for key in ("labels/zarr.json", "labels/nuclei/zarr.json", "labels/nuclei/0/c/0/0"):
            assert httpx.get(f"{url}/{key}").status_code == 404, key
        assert httpx.get(f"{server.url}/api/images/{image_id}/labels").status_code == 404
    assert run_cli("fixity", "--repo", repo).returncode == 0
    label_root = next((repo / "objects" / "labels").iterdir())
    chunk = next(p for p in sorted(label_root.rglob("*")) if p.is_file() and "/c/" in p.as_posix())
    chunk.write_bytes(chunk.read_bytes()[:-1] + b"\0")
    damaged = run_cli("fixity", "--repo", repo)
    assert damaged.returncode != 0 and "corrupted" in damaged.stdout + damaged.stderr


def test_a_mask_that_does_not_fit_is_one_line_and_nothing_is_stored(tmp_path: Path, labelled) -> None:
    repo, image_id, mask = labelled
    tifffile.imwrite(tmp_path / "small.tif", mask[:300])
    tifffile.imwrite(tmp_path / "float.tif", mask.astype(np.float32))
    tifffile.imwrite(tmp_path / "nuclei.tif", mask)
    cases = {
        (
            "small.tif",
            "nuclei",
            "--annotator",
            "Ada",
        ): f"{tmp_path / 'small.tif'}: a 300x203 (yx) mask for the "
        f"301x203 (yx) pixel grid of image {image_id}; a label must match its image pixel for pixel",
        (
            "float.tif",
            "nuclei",
            "--annotator",
            "Ada",
        ): f"{tmp_path / 'float.tif'}: pixels of type float32; a label "
        "holds integer object ids (or a 0/1 mask): save it as an integer image",
        (
            "nuclei.tif",
            "../up",
            "--annotator",
            "Ada",
        ): "label name '../up': use letters, digits, '.', '_' or '-' "
        "(at most 64), starting with a letter or digit",
        ("nuclei.tif", "nuclei", "--annotator", " "): "label 'nuclei': say who made it (--annotator NAME or "
        "--model MODEL)",
    }
    for (file, name, flag, who), message in cases.items():
        result = run_cli("label", "add", image_id, tmp_path / file, "--name", name, flag, who, "--repo", repo)
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        assert message in " ".join(result.stderr.split()), result.stderr
    assert not (repo / "objects" / "labels").exists() or not list((repo / "objects" / "labels").iterdir())
    run_cli(
        "label",
        "add",
        image_id,
        tmp_path / "nuclei.tif",
        "--name",
        "nuclei",
        "--annotator",
        "Ada",
        "--repo",
        repo,
        check=True,
    )
    again = run_cli(
        "label",
        "add",
        image_id,
        tmp_path / "nuclei.tif",
        "--name",
        "nuclei",
        "--annotator",
        "Bo",
        "--repo",
        repo,
    )
    assert again.returncode != 0 and "labels are never replaced" in again.stderr
    assert len(list((repo / "objects" / "labels").iterdir())) == 1


def test_the_mode_of_four_is_the_most_frequent_value_ties_to_the_first() -> None:
    for values in itertools.product(range(4), repeat=4):
        counts = Counter(values)
        expected = next(v for v in values if counts[v] == max(counts.values()))
        assert mode_2x(np.array(values, np.uint16).reshape(2, 2))[0, 0] == expected, values
    odd = np.array([[1, 2, 3], [1, 2, 3], [4, 4, 5]], np.uint8)
    assert mode_2x(odd).tolist() == [[1, 3], [4, 5]]


def test_the_labels_of_an_ome_zarr_input_are_copied_with_it(tmp_path: Path) -> None:
    """An OME-Zarr with a labels group keeps them: each stored as the new image's label, served where
    OME-NGFF puts it, pixel for pixel; who made it is unknown unless --labels-by says so."""
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import write_labels

    data = samples.ramp((2, 64, 48))
    source = samples.ome_zarr_v05(tmp_path / "cells.ome.zarr", data)
    nuclei = np.zeros((64, 48), np.uint16)
    nuclei[10:30, 5:25], nuclei[40:60, 20:40] = 1, 700
    root = zarr.open_group(str(source), mode="a", zarr_format=3)
    write_labels(nuclei, root, name="nuclei", axes="yx", fmt=FormatV05(), scale_factors=(2,))
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    bad = run_cli("ingest", source, "--labels-by", "robot", "--repo", repo)
    assert (
        bad.returncode != 0
        and "--labels-by robot: say person:NAME (an annotator) or model:NAME" in bad.stderr
    )
    assert json.loads(run_cli("images", "--repo", repo, "--json").stdout) == []  # refused before any ingest

    done = run_cli("ingest", source, "--repo", repo, check=True)
    assert (
        "with its label nuclei (lbl-" in done.stdout
        and "made by unknown: copied from cells.ome.zarr" in done.stdout
    )
    (image,) = json.loads(run_cli("images", "--repo", repo, "--json").stdout)
    (label,) = json.loads(run_cli("label", "list", image["id"], "--repo", repo, "--json").stdout)
    assert (label["name"], label["made_by"]) == (
        "nuclei",
        {"kind": "unknown", "name": "copied from cells.ome.zarr"},
    )
    with LiveServer(load_settings(repo)) as server:
        served = zarr.open_group(f"{server.url}/zarr/{image['id']}.ome.zarr/labels/nuclei", mode="r")
        assert np.array_equal(np.asarray(served["0"]), nuclei)

    again = tmp_path / "again.ome.zarr"
    shutil.copytree(source, again)
    group = zarr.open_group(str(again), mode="a")
    group[group.attrs["ome"]["multiscales"][0]["datasets"][0]["path"]][0, 0, 0] = 1  # other pixels: new image
    made = json.loads(run_cli("ingest", again, "--labels-by", "model:cellpose@3", "--repo", repo, "--json",
                              check=True).stdout)  # fmt: skip
    assert made[0]["labels"][0].endswith("made by model: cellpose@3)")

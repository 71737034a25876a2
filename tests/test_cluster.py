"""Ingest on a real dask LocalCluster (2 worker processes) writing to a real S3 API server (moto)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import s3fs

from tests import samples
from tests.conftest import run_cli


def _folder_of_inputs(folder: Path) -> dict[str, np.ndarray]:
    folder.mkdir()
    images = {f"cells-{i}.ome.tif": samples.ramp((2, 1100, 1300), seed=i) for i in range(3)}
    for name, pixels in images.items():
        samples.ome_tiff(folder / name, pixels, axes="CYX")
    samples.png(folder / "photo.png", samples.ramp((300, 200, 3), seed=9).astype(np.uint8))
    (folder / "broken.tif").write_bytes(b"II*\x00" + b"\x00" * 60)  # a header and nothing else
    return images


def _manifests(outcomes: list[dict], read: object) -> dict[str, dict]:
    """Each ingested file's manifest (every stored key with its sha256), by input file name."""
    found = {}
    for outcome in outcomes:
        if outcome["status"] == "ingested":
            found[Path(outcome["path"]).name] = json.loads(read(outcome["images"][0]))["objects"]  # type: ignore[operator]
    return found


@pytest.mark.slow  # 30 s; cluster workers writing to the local store, and S3 writes, are tested by default
def test_a_local_cluster_converts_a_folder_into_s3_exactly_as_a_local_run(
    tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> None:
    _folder_of_inputs(tmp_path / "raw")
    run_cli("init", tmp_path / "local", check=True)
    plain = run_cli("ingest", "--repo", tmp_path / "local", tmp_path / "raw", "--json")
    storage = f"s3://{s3_bucket}/lab"
    run_cli("init", tmp_path / "cloud", "--storage", storage, "--s3-endpoint", s3_endpoint, check=True)
    clustered = run_cli("ingest", "--repo", tmp_path / "cloud", tmp_path / "raw", "--workers", "2", "--json")

    # The broken file fails on its own; everything else lands. Both runs report files in input order.
    assert clustered.returncode == plain.returncode == 1
    plain_outcomes, cluster_outcomes = json.loads(plain.stdout), json.loads(clustered.stdout)
    assert [(Path(o["path"]).name, o["status"]) for o in cluster_outcomes] == [
        ("broken.tif", "failed"),
        ("cells-0.ome.tif", "ingested"),
        ("cells-1.ome.tif", "ingested"),
        ("cells-2.ome.tif", "ingested"),
        ("photo.png", "ingested"),
    ]
    assert [o["status"] for o in plain_outcomes] == [o["status"] for o in cluster_outcomes]
    assert "broken.tif" in cluster_outcomes[0]["error"]

    # Identical results: the same objects with the same sha256, chunk for chunk.
    fs = s3fs.S3FileSystem(endpoint_url=s3_endpoint)
    local = _manifests(
        plain_outcomes,
        lambda image: (tmp_path / "local" / "objects" / "manifests" / f"{image}.json").read_text(),
    )
    cloud = _manifests(cluster_outcomes, lambda image: fs.cat_file(f"{s3_bucket}/lab/manifests/{image}.json"))
    assert (
        local.keys() == cloud.keys() == {"cells-0.ome.tif", "cells-1.ome.tif", "cells-2.ome.tif", "photo.png"}
    )
    for name in local:
        assert local[name] == cloud[name], name
    assert fs.find(f"{s3_bucket}/lab/staging") == []

    # Running it again finds everything present, on the cluster too.
    again = run_cli("ingest", "--repo", tmp_path / "cloud", tmp_path / "raw", "--workers", "2", "--json")
    assert [o["status"] for o in json.loads(again.stdout)][1:] == ["already_present"] * 4


def test_large_images_are_written_by_several_workers_exactly_as_by_one(
    tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> None:
    """Region-parallel conversion: a stack's planes, or a single plane's rows, split between workers."""
    raw = tmp_path / "raw"
    raw.mkdir()
    samples.ome_tiff(
        raw / "stack.ome.tif", samples.ramp((2, 9, 1100, 1300), seed=2), axes="CZYX"
    )  # 18 planes
    samples.ome_tiff(raw / "plane.ome.tif", samples.ramp((5000, 2600), seed=3), axes="YX")  # one plane
    volume = samples.ramp((130, 256, 256), seed=4)  # a volume: 64^3 cubes, z-halving levels at the end
    samples.ome_tiff(raw / "volume.ome.tif", volume, axes="ZYX", PhysicalSizeX=0.004, PhysicalSizeY=0.004,
                     PhysicalSizeZ=0.01)  # fmt: skip
    run_cli("init", tmp_path / "local", check=True)
    plain = json.loads(run_cli("ingest", "--repo", tmp_path / "local", raw, "--json", check=True).stdout)
    run_cli(
        "init",
        tmp_path / "cloud",
        "--storage",
        f"s3://{s3_bucket}/lab",
        "--s3-endpoint",
        s3_endpoint,
        check=True,
    )
    with (tmp_path / "cloud" / "fairimage.toml").open("a") as config:
        config.write("cluster_split_bytes = 10000000\n")  # split anything above 10 MB
    clustered = run_cli("ingest", "--repo", tmp_path / "cloud", raw, "--workers", "2", "--json", check=True)
    outcomes = json.loads(clustered.stdout)
    # The stack: 4 runs of planes (2 workers x 2). The plane (5 levels): 2 bands of 4096 rows written down to
    # level 3; level 4 is then made from level 3.
    assert [(Path(o["path"]).name, o["status"], o["parts"]) for o in outcomes[:2]] == [
        ("plane.ome.tif", "ingested", 2),
        ("stack.ome.tif", "ingested", 4),
    ]
    # The volume: its 3 z-ranges of 64 planes, 2 bands of rows each, spread over the workers; then its levels
    # that halve z, by the workers too: level 2's 65 planes in 2 runs of one chunk deep, level 3's 33 in one.
    assert Path(outcomes[2]["path"]).name == "volume.ome.tif" and outcomes[2]["parts"] == 3 * 2 + 2 + 1

    fs = s3fs.S3FileSystem(endpoint_url=s3_endpoint)
    local = _manifests(
        plain, lambda i: (tmp_path / "local" / "objects" / "manifests" / f"{i}.json").read_text()
    )
    cloud = _manifests(outcomes, lambda i: fs.cat_file(f"{s3_bucket}/lab/manifests/{i}.json"))
    assert local == cloud  # every chunk of every level, and the metadata with its windows, identical
    assert any(key.startswith("2/c/") for key in cloud["stack.ome.tif"])
    assert any(key.startswith("4/c/") for key in cloud["plane.ome.tif"])
    assert any(key.startswith("3/c/") for key in cloud["volume.ome.tif"])  # 130 -> 65 -> 33 planes


@pytest.mark.slow  # 35 s; the cluster's z-ranges and z-halving levels are tested by default on a volume file
def test_a_folder_of_sections_is_converted_by_the_workers_as_here(tmp_path: Path) -> None:
    """A vEM folder of 130 sections over two cluster workers (z-ranges of 64 planes, then the levels that
    halve z): the stored volume is byte for byte the one converted in one process, sections recorded."""
    import tifffile

    folder = tmp_path / "em"
    folder.mkdir()
    volume = samples.ramp((130, 200, 240), "uint8", seed=8)
    for z, plane in enumerate(volume):
        tifffile.imwrite(
            folder / f"section_{z + 1:04d}.tif", plane, resolution=(2.5e6, 2.5e6), resolutionunit="CENTIMETER"
        )
    outcomes = {}
    for name, extra in (("here", []), ("cluster", ["--workers", "2"])):
        run_cli("init", tmp_path / name, check=True)
        ingest = ("ingest", folder, "--sections", "--z-spacing", "10nm", "--repo", tmp_path / name, "--json")
        outcomes[name] = json.loads(run_cli(*ingest, *extra, check=True).stdout)
    here, cluster = outcomes["here"][0], outcomes["cluster"][0]
    assert here["status"] == cluster["status"] == "ingested"
    # 3 z-ranges of 64 planes, 2 bands of rows each; then level 2's 65 planes in 2 runs, level 3's in one.
    assert (here["parts"], cluster["parts"]) == (1, 3 * 2 + 2 + 1)
    manifests = [
        json.loads((tmp_path / name / "objects" / "manifests" / f"{outcome['images'][0]}.json").read_text())[
            "objects"
        ]
        for name, outcome in (("here", here), ("cluster", cluster))
    ]
    assert manifests[0] == manifests[1]
    assert any(key.startswith("3/c/") for key in manifests[1])  # its levels that halve z are there
    run = json.loads(run_cli("images", "--repo", tmp_path / "cluster", "--json", check=True).stdout)[0]
    assert run["original_file"]["name"] == "em (130 sections)"


def test_an_unreachable_scheduler_is_one_clear_line(tmp_path: Path) -> None:
    run_cli("init", tmp_path / "repo", check=True)
    source = samples.png(tmp_path / "a.png", np.zeros((10, 10), dtype=np.uint8))
    result = run_cli("ingest", "--repo", tmp_path / "repo", source, "--scheduler", "tcp://127.0.0.1:9")
    assert result.returncode == 2
    assert "tcp://127.0.0.1:9" in result.stderr and "dask scheduler" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_a_plate_converted_by_cluster_workers_is_the_plate_converted_here(tmp_path: Path) -> None:
    from tests import plate_samples

    wells = [(0, 0), (0, 1), (1, 2)]
    folder = plate_samples.imagexpress(tmp_path / "Screen", wells, fields=2, channels=2)
    here, there = tmp_path / "here", tmp_path / "there"
    for repo in (here, there):
        run_cli("init", repo, check=True)
    plain = json.loads(run_cli("ingest", folder, "--plate", "--repo", here, "--json", check=True).stdout)
    clustered = run_cli("plate", "ingest", folder, "--workers", "2", "--repo", there, "--json", check=True)
    (on_cluster,) = json.loads(clustered.stdout)
    assert (on_cluster["status"], on_cluster["wells"], on_cluster["fields"]) == ("ingested", 3, 6)

    def chunks(repo: Path, image: str) -> dict[str, str]:
        manifest = json.loads((repo / "objects" / "manifests" / f"{image}.json").read_text())["objects"]
        return {key: entry["sha256"] for key, entry in manifest.items() if not key.endswith("zarr.json")}

    for image_here, image_there in zip(plain[0]["images"], on_cluster["images"], strict=True):
        assert chunks(here, image_here) == chunks(there, image_there)  # the same pixels, field for field
    assert not list((there / "objects").glob("staging/*/*"))

"""Register in place: OME-Zarr images and plates (0.4 and 0.5; a folder, a .ozx file, an HTTP URL) are
catalogued where they are, served from there through the same access check, never copied and never
written to; verified chunks make fixity see a changed pixel, and a changed document is named."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Plate as PlateSpec
from ome_zarr.reader import Reader
from PIL import Image

from fairimage.services.ingest.register import RegisterRequest, register, verify_registered
from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from tests import plate_samples, samples
from tests.conftest import LiveServer, run_cli

WELLS = [(0, 0), (1, 2)]  # A1, B3


def _level_0(image: zarr.Group) -> np.ndarray:
    """The full-resolution pixels of an OME-Zarr image group, whatever its version names the level."""
    attributes = image.attrs.asdict()
    multiscales = attributes.get("ome", attributes)["multiscales"]
    return np.asarray(image[multiscales[0]["datasets"][0]["path"]][...])


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_a_plate_registered_in_place_is_served_as_it_is_and_never_copied(
    tmp_path: Path, version: str
) -> None:
    source = plate_samples.ome_zarr_plate(tmp_path / "screen.ome.zarr", WELLS, fields=2, version=version)
    before = _tree(source)
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    result = run_cli("register", source, "--study", "Screen", "--repo", repo, "--json", check=True)
    (outcome,) = json.loads(result.stdout)
    assert (outcome["status"], outcome["kind"], outcome["wells"], outcome["fields"]) == (
        "registered",
        "plate",
        2,
        4,
    )
    assert not list((repo / "objects").glob("images/*")), "a registered plate's pixels were copied"
    again = run_cli("register", source, "--study", "Screen", "--repo", repo, check=True)
    assert f"already registered {source} as {outcome['plate_id']}" in again.stdout

    with LiveServer(load_settings(repo)) as server:
        url = f"{server.url}/zarr/{outcome['plate_id']}.ome.zarr"
        group = zarr.open_group(url, mode="r")
        for row, column in WELLS:
            for field in range(2):
                pixels = _level_0(group[f"{'AB'[row]}/{column + 1}/{field}"])
                for channel in range(2):
                    expected = plate_samples.field_pixels(row, column, field, channel)
                    assert np.array_equal(pixels[channel], expected)
        (node, *_) = list(Reader(parse_url(url))())
        assert any(isinstance(spec, PlateSpec) for spec in node.specs)
        assert httpx.get(f"{url}/A/2/0/zarr.json").status_code == 404  # a well never imaged
        image_id = outcome["images"][0]
        thumbnail = httpx.get(f"{server.url}/api/images/{image_id}/thumbnail?size=64")
        assert thumbnail.status_code == 200 and Image.open(io.BytesIO(thumbnail.content)).size[0] > 0
        plate_page = httpx.get(f"{server.url}/plates/{outcome['plate_id']}")
        assert plate_page.status_code == 200 and "Legacy plate" in plate_page.text

        run_cli("study", "policy", "Screen", "restricted", "--repo", repo, check=True)
        for address in (
            f"{url}/zarr.json",
            f"{url}/.zattrs",
            f"{url}/A/1/0/s0/.zarray",
            f"{url}/A/1/0/zarr.json",
        ):
            assert httpx.get(address).status_code == 404, address
        assert httpx.get(f"{server.url}/api/images/{image_id}/thumbnail").status_code == 404
    report = json.loads(run_cli("qc", outcome["plate_id"], "--json", "--repo", repo, check=True).stdout)
    assert len(report["fields"]) == 4 * 2  # every field and channel measured from where it lies
    assert _tree(source) == before, "registering, serving or QC changed the registered folder"


def test_verified_chunks_let_fixity_see_a_changed_pixel_and_a_changed_document(tmp_path: Path) -> None:
    source = samples.ome_zarr_v05(tmp_path / "cells.ome.zarr", samples.ramp((2, 300, 200), seed=4))
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    registered = run_cli("register", source, "--verify", "--repo", repo, check=True)
    assert "verified 1 image: 2 chunks" in registered.stdout, registered.stdout
    assert run_cli("fixity", "--repo", repo).returncode == 0

    chunk = next(p for p in sorted((source / "s0").rglob("*")) if p.is_file() and p.name != "zarr.json")
    damaged = bytearray(chunk.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    chunk.write_bytes(bytes(damaged))
    fixity = run_cli("fixity", "--repo", repo)
    assert fixity.returncode != 0 and f"{chunk.relative_to(source).as_posix()}: corrupted" in fixity.stderr

    document = source / "zarr.json"
    attributes = json.loads(document.read_text())
    attributes["attributes"]["ome"]["multiscales"][0]["name"] = "edited"
    document.write_text(json.dumps(attributes))
    (image,) = json.loads(run_cli("images", "--repo", repo, "--json", check=True).stdout)
    again = run_cli("verify-registered", image["id"], "--repo", repo)
    assert again.returncode == 1
    assert (
        f"{source}/zarr.json: changed since it was registered; register the new version again" in again.stderr
    )
    assert "Traceback" not in again.stderr


def test_an_image_over_http_and_a_zipped_ozx_are_served_where_they_are(
    tmp_path: Path, static_server: tuple[str, Path]
) -> None:
    base, www = static_server
    over_http = samples.ramp((2, 300, 200), seed=5)
    samples.ome_zarr_v05(www / "remote.ome.zarr", over_http)
    zipped = samples.ramp((2, 120, 90), seed=6)
    folder = samples.ome_zarr_v05(tmp_path / "packed.ome.zarr", zipped)
    ozx = tmp_path / "packed.ozx"
    with zipfile.ZipFile(ozx, "w", zipfile.ZIP_STORED) as archive:  # OME-NGFF RFC-9: stored, root at the top
        for key, body in _tree(folder).items():
            archive.writestr(key, body)
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    result = run_cli("register", f"{base}/remote.ome.zarr", ozx, "--repo", repo, "--json", "--verify")
    assert result.returncode == 0, result.stderr
    remote, packed = json.loads(result.stdout)
    assert remote["status"] == packed["status"] == "registered"
    assert remote["verified"][0]["chunks"] == 2 and packed["verified"][0]["chunks"] == 2

    with LiveServer(load_settings(repo)) as server:
        for outcome, pixels in ((remote, over_http), (packed, zipped)):
            url = f"{server.url}/zarr/{outcome['images'][0]}.ome.zarr"
            assert np.array_equal(_level_0(zarr.open_group(url, mode="r")), pixels)
            ranged = httpx.get(f"{url}/zarr.json", headers={"Range": "bytes=0-9"})
            assert ranged.status_code == 206 and len(ranged.content) == 10
    assert run_cli("fixity", "--repo", repo).returncode == 0


def test_what_cannot_be_registered_is_one_line_and_catalogues_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("no zarr here")
    plate = plate_samples.ome_zarr_plate(tmp_path / "broken.ome.zarr", WELLS, fields=1)
    (plate / "B" / "3" / "zarr.json").write_text("{ not json")
    missing = tmp_path / "nowhere.ome.zarr"
    result = run_cli("register", plain, plate, missing, "--repo", repo)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"failed {plain}: no zarr group or array there (no zarr.json, .zgroup or .zarray)",
        f"failed {plate}/B/3/zarr.json: not JSON (Expecting property name enclosed in double quotes: line 1 "
        "column 3 (char 2)); the zarr metadata is damaged",
        f"failed {missing}: no such folder or .ozx file; give the path of an OME-Zarr",
    ]
    assert json.loads(run_cli("images", "--repo", repo, "--json", check=True).stdout) == []
    assert json.loads(run_cli("plate", "list", "--repo", repo, "--json", check=True).stdout) == []


def test_a_plate_in_object_storage_is_registered_and_served_from_there(
    tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> None:
    import s3fs

    source = plate_samples.ome_zarr_plate(tmp_path / "screen.ome.zarr", WELLS, fields=1)
    s3fs.S3FileSystem(endpoint_url=s3_endpoint).put(str(source), f"{s3_bucket}/screens/", recursive=True)
    settings = load_settings(tmp_path / "repo", s3_endpoint=s3_endpoint)  # the catalog's objects stay local
    repository = init_repository(settings)
    try:
        outcome = register(repository, RegisterRequest(f"s3://{s3_bucket}/screens/screen.ome.zarr"))
        assert (outcome.status, outcome.fields) == ("registered", 2), outcome.error
        verified = [verify_registered(repository, image_id) for image_id in outcome.images]
        assert all(v.error is None and v.chunks == 2 for v in verified)
    finally:
        repository.close()
    with LiveServer(settings) as server:
        group = zarr.open_group(f"{server.url}/zarr/{outcome.plate_id}.ome.zarr", mode="r")
        expected = plate_samples.field_pixels(1, 2, 0, 1)
        assert np.array_equal(_level_0(group["B/3/0"])[1], expected)


def test_chunks_of_a_registered_image_are_verified_by_a_job_over_http(tmp_path: Path) -> None:
    source = samples.ome_zarr_v05(tmp_path / "cells.ome.zarr", samples.ramp((2, 300, 200), seed=7))
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    (outcome,) = json.loads(run_cli("register", source, "--repo", repo, "--json", check=True).stdout)
    image_id = outcome["images"][0]
    run_cli("user", "add", "ada", "--role", "steward", "--repo", repo, check=True)
    token = run_cli("token", "create", "ada", "--scope", "write", "--repo", repo, check=True).stdout.strip()
    steward = {"Authorization": f"Bearer {token}"}
    with LiveServer(load_settings(repo)) as server:
        address = f"{server.url}/api/images/{image_id}/verification"
        assert httpx.post(address).status_code in (401, 403)
        started = httpx.post(address, headers=steward)
        assert started.status_code == 202, started.text
        job = started.json()
        deadline = time.monotonic() + 60
        while job["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
            job = httpx.get(f"{server.url}{job['url']}", headers=steward).json()
        assert job["status"] == "done" and job["result"]["chunks"] == 2 and job["result"]["absent"] == 0, job
    fixity = run_cli("fixity", "--repo", repo, "--json", check=True)
    assert json.loads(fixity.stdout)["objects"] == 3 + 2  # metadata documents and now chunks

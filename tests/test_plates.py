"""High-content screening plates: vendor folders in, OME-NGFF plates out, read by standard clients over
HTTP; bad folders are one line naming the file and publish nothing."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
import tifffile
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Plate as PlateSpec
from ome_zarr.reader import Reader
from ome_zarr_models.v05.hcs import HCS
from PIL import Image

from fairimage.formats.plates import compile_pattern
from fairimage.model.errors import InvalidInputError
from fairimage.model.governance.policy import operator
from fairimage.model.plates.layout import parse_well, row_name
from fairimage.services.governance import policies
from fairimage.services.plates import plates as plate_service
from fairimage.services.plates.ingest import PlateRequest, ingest_plate
from fairimage.services.repository import Repository, init_repository
from fairimage.services.viewing import tiles
from fairimage.settings import load_settings
from fairimage.storage import layout
from tests import plate_samples
from tests.conftest import LiveServer, run_cli

ADMIN = operator("test")
WELLS = [(0, 0), (0, 1), (1, 2)]  # A1, A2, B3


def test_an_imagexpress_folder_becomes_a_plate_that_standard_clients_read(tmp_path: Path) -> None:
    folder = plate_samples.imagexpress(tmp_path / "Screen01", WELLS, fields=2, channels=2)
    platemap = tmp_path / "platemap.csv"
    platemap.write_text(
        "Well,Compound,Concentration,Control type\nA01,DMSO,,negative\nA02,staurosporine,1 uM,pos\n"
    )
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    result = run_cli("ingest", folder, "--plate", "--platemap", platemap, "--study", "Screen", "--repo", repo)
    assert result.returncode == 0, result.stderr
    assert "ingested" in result.stdout and "imagexpress: plate 'Screen01', 3 wells, 6 fields" in result.stdout
    assert "missing 93 well(s) without images: A3, A4" in result.stderr  # recorded, not invented

    (plate,) = json.loads(run_cli("plate", "list", "--repo", repo, "--json", check=True).stdout)
    again = run_cli("plate", "ingest", folder, "--study", "Screen", "--repo", repo, check=True)
    assert f"already present {folder} as {plate['id']}" in again.stdout

    from fairimage.settings import load_settings

    with LiveServer(load_settings(repo)) as server:
        described = httpx.get(f"{server.url}/api/plates/{plate['id']}").json()
        url = described["ome_zarr_url"]
        group = zarr.open_group(url, mode="r")
        assert [w["path"] for w in group.attrs["ome"]["plate"]["wells"]] == ["A/1", "A/2", "B/3"]
        for row, column in WELLS:
            for field in range(2):
                pixels = group[f"{row_name(row)}/{column + 1}/{field}/0"][...]
                for channel in range(2):
                    assert np.array_equal(
                        pixels[channel], plate_samples.field_pixels(row, column, field, channel)
                    )
        HCS.from_zarr(group)  # ome-zarr-models validates plate, wells and images
        (node, *_) = list(Reader(parse_url(url))())
        assert any(isinstance(spec, PlateSpec) for spec in node.specs)
        assert httpx.get(f"{url}/H/12/0/zarr.json").status_code == 404  # a well that was never imaged
        found = httpx.get(f"{server.url}/api/search", params={"q": "staurosporine"}).json()
        assert found["total"] == 2 and {hit["name"] for hit in found["hits"]} == {
            "Screen01 A2 field 1",
            "Screen01 A2 field 2",
        }
        controls = httpx.get(f"{server.url}/api/search", params={"control": "negative"}).json()
        assert controls["total"] == 2 and all(" A1 " in hit["name"] for hit in controls["hits"])
        facets = httpx.get(f"{server.url}/api/search", params={"q": "Screen01"}).json()["facets"]
        assert {c["value"]: c["count"] for c in facets["compound"]} == {"dmso": 2, "staurosporine": 2}
        assert httpx.get(f"{url}/A/1/9/zarr.json").status_code == 404

    wells = {well["row"] + well["column"]: well for well in described["wells"]}
    assert wells["A1"]["compound"] == "DMSO" and wells["A1"]["control"] == "negative"
    assert wells["A2"]["concentration"] == 1.0 and wells["A2"]["concentration_unit"] == "uM"
    assert wells["A2"]["control"] == "positive" and len(wells["B3"]["images"]) == 2


def test_a_harmony_export_keeps_channels_wavelengths_and_pixel_sizes(
    repository: Repository, tmp_path: Path
) -> None:
    folder = plate_samples.harmony(tmp_path / "export", [(0, 0), (2, 3)], fields=2)
    outcome = ingest_plate(repository, PlateRequest(folder, "Phenix"))
    assert outcome.status == "ingested", outcome.error
    plate = plate_service.get_plate(repository, ADMIN, outcome.plate_id or "")
    assert (plate.name, len(plate.rows), len(plate.columns)) == ("Phenix 7", 8, 12)
    assert [c["name"] for c in plate.channels] == ["HOECHST 33342", "Alexa 488"]
    assert [c["emission_nm"] for c in plate.channels] == [461.0, 519.0]
    image = zarr.open_group(repository.store.local_path(f"images/{outcome.images[0]}.ome.zarr"), mode="r")  # type: ignore[arg-type]
    ome = image.attrs["ome"]
    assert ome["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"][
        -2:
    ] == pytest.approx([0.65, 0.65])
    assert [c["color"] for c in ome["omero"]["channels"]] == ["0000FF", "00FF00"]  # by emission wavelength


def _bad_duplicate(folder: Path) -> str:
    (folder / "copied again").mkdir()
    tifffile.imwrite(
        folder / "copied again" / "Screen01_A01_s1_w1.tif", plate_samples.field_pixels(0, 0, 0, 0)
    )
    return "a second file for well A1 field 1 channel 1 (the first is"


def _bad_name(folder: Path) -> str:
    tifffile.imwrite(folder / "overview.tif", np.zeros((4, 4), np.uint16))
    return "overview.tif: its name does not follow the imagexpress naming"


def _bad_shape(folder: Path) -> str:
    tifffile.imwrite(folder / "Screen01_B03_s2_w2.tif", np.zeros((24, 30), np.uint16))
    return "Screen01_B03_s2_w2.tif: 30x24 uint16, but the plate's images are 32x24 uint16"


@pytest.mark.parametrize("spoil", [_bad_duplicate, _bad_name, _bad_shape])
def test_a_bad_folder_is_one_line_naming_the_file_and_publishes_nothing(
    repository: Repository, tmp_path: Path, spoil: object
) -> None:
    folder = plate_samples.imagexpress(tmp_path / "Screen01", WELLS)
    words = spoil(folder)  # type: ignore[operator]
    outcome = ingest_plate(repository, PlateRequest(folder, "Screen"))
    assert outcome.status == "failed" and outcome.error is not None
    assert words in outcome.error and "\n" not in outcome.error
    assert plate_service.list_plates(repository, ADMIN) == []
    assert not list(repository.store.list("images")) and not list(repository.store.list("plates"))


def test_a_platemap_well_outside_the_plate_is_named_with_its_row(
    repository: Repository, tmp_path: Path
) -> None:
    folder = plate_samples.imagexpress(tmp_path / "Screen01", WELLS)
    platemap = tmp_path / "map.csv"
    platemap.write_text("well,compound\nA1,DMSO\nQ30,taxol\n")
    outcome = ingest_plate(repository, PlateRequest(folder, "Screen", platemap=platemap, wells=96))
    assert outcome.error == f"{platemap}, row 3: well Q30 is outside the plate (8 rows x 12 columns)"
    assert plate_service.list_plates(repository, ADMIN) == []


def test_a_restricted_plate_is_404_to_those_not_allowed(repository: Repository, tmp_path: Path) -> None:
    folder = plate_samples.imagexpress(tmp_path / "Screen01", WELLS[:1], fields=1, channels=1)
    outcome = ingest_plate(repository, PlateRequest(folder, "Secret screen"))
    policies.set_policy(repository, ADMIN, "Secret screen", "restricted")
    with LiveServer(repository.settings) as server:
        url = f"{server.url}/zarr/{outcome.plate_id}.ome.zarr"
        for key in ("zarr.json", "A/zarr.json", "A/1/zarr.json", "A/1/0/zarr.json", "A/1/0/0/zarr.json"):
            assert httpx.get(f"{url}/{key}").status_code == 404, key
        assert httpx.get(f"{server.url}/api/plates").json()["items"] == []
        assert httpx.get(f"{server.url}/api/plates/{outcome.plate_id}").status_code == 404


def test_a_dense_plate_keeps_its_overview_from_ingest_for_every_server_after(
    repository: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1536-well plate's page picture is drawn once, at ingest, and kept in the store: a server started
    later sends it without reading a field; it is drawn again where it was removed. A 96-well plate's page
    shows thumbnails, so nothing is drawn for it."""
    wells = [(0, 0), (0, 47), (31, 0), (16, 20)]
    folder = plate_samples.imagexpress(tmp_path / "Dense", wells, fields=1, channels=1)
    dense = ingest_plate(repository, PlateRequest(folder, "Screen", wells=1536))
    assert dense.status == "ingested", dense.error
    key = layout.rendering_key(dense.plate_id or "", f"overview-22.r{tiles.RENDER_VERSION}.png")
    kept = repository.store.read(key)
    cell = 22 + tiles.OVERVIEW_GAP
    assert Image.open(io.BytesIO(kept)).size == (48 * cell, 32 * cell)

    def no_drawing(*args: object) -> bytes:
        raise AssertionError("the kept overview was drawn again")

    with monkeypatch.context() as patched:
        patched.setattr(tiles.Renderer, "mosaic", no_drawing)
        sent = tiles.plate_overview(tiles.Renderer(repository), ADMIN, dense.plate_id or "", size=22)
    assert sent.content == kept
    repository.store.delete(key)
    drawn = tiles.plate_overview(tiles.Renderer(repository), ADMIN, dense.plate_id or "", size=22)
    assert np.array_equal(
        np.asarray(Image.open(io.BytesIO(drawn.content))), np.asarray(Image.open(io.BytesIO(kept)))
    )
    assert repository.store.read(key) == drawn.content  # and kept again

    sparse = ingest_plate(
        repository, PlateRequest(plate_samples.imagexpress(tmp_path / "P96", WELLS[:1], 1, 1), "Screen")
    )
    assert sparse.status == "ingested", sparse.error
    assert list(repository.store.list(f"{layout.RENDERINGS}/{sparse.plate_id}")) == []


def test_user_patterns_and_well_names() -> None:
    regex = compile_pattern("{well}_f{field}_c{channel}.tif")
    match = regex.match("B07_f3_c2.tif")
    assert match is not None and match.groupdict() == {"well": "B07", "field": "3", "channel": "2"}
    assert parse_well("AF48") == (31, 47) and parse_well("a1") == (0, 0) and row_name(27) == "AB"
    with pytest.raises(InvalidInputError, match=r"\{site\} is not a field"):
        compile_pattern("{well}_{site}.tif")
    with pytest.raises(InvalidInputError, match="name the well"):
        compile_pattern("{field}.tif")


def test_an_existing_ome_zarr_plate_is_stored_as_a_plate(repository: Repository, tmp_path: Path) -> None:
    """A plate already in OME-Zarr 0.4 keeps its wells and fields, and is served as a 0.5 plate."""
    source = plate_samples.ome_zarr_plate_v04(tmp_path / "legacy.ome.zarr", [(0, 0), (1, 2)])
    outcome = ingest_plate(repository, PlateRequest(source, "Legacy"))
    assert outcome.status == "ingested", outcome.error
    assert (outcome.layout, outcome.name, outcome.wells, outcome.fields) == ("ome-zarr", "Legacy plate", 2, 4)
    with LiveServer(repository.settings) as server:
        group = zarr.open_group(f"{server.url}/zarr/{outcome.plate_id}.ome.zarr", mode="r")
        assert [w["path"] for w in group.attrs["ome"]["plate"]["wells"]] == ["A/1", "B/3"]
        pixels = group["B/3/1/0"][...]
        assert np.array_equal(pixels[1], plate_samples.field_pixels(1, 2, 1, 1))
        HCS.from_zarr(group)
    again = ingest_plate(repository, PlateRequest(source, "Legacy"))
    assert again.status == "already_present" and again.plate_id == outcome.plate_id


def test_an_ome_zarr_plate_over_http_is_copied_in_and_stays_when_its_server_is_gone(
    tmp_path: Path, static_server: tuple[str, Path]
) -> None:
    """`plate ingest URL` reads a 0.4 plate where it is served and stores a 0.5 copy of its own: still
    there, pixel for pixel, after the source is deleted; the same plate again is already present."""
    base, www = static_server
    plate_samples.ome_zarr_plate_v04(www / "legacy.ome.zarr", [(0, 0), (1, 2)])
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    url = f"{base}/legacy.ome.zarr"
    result = run_cli("plate", "ingest", url, "--study", "Screens", "--repo", repo, "--json", check=True)
    (outcome,) = json.loads(result.stdout)
    assert (outcome["status"], outcome["path"], outcome["wells"], outcome["fields"]) == (
        "ingested",
        url,
        2,
        4,
    )
    assert len(list((repo / "objects" / "images").iterdir())) == 4  # copied: fields of its own
    shutil.rmtree(www / "legacy.ome.zarr")
    with LiveServer(load_settings(repo)) as server:
        group = zarr.open_group(f"{server.url}/zarr/{outcome['plate_id']}.ome.zarr", mode="r")
        HCS.from_zarr(group)
        for row, column in [(0, 0), (1, 2)]:
            for field in range(2):
                pixels = group[f"{'AB'[row]}/{column + 1}/{field}/0"][...]
                for channel in range(2):
                    assert np.array_equal(
                        pixels[channel], plate_samples.field_pixels(row, column, field, channel)
                    )
    assert run_cli("fixity", "--repo", repo).returncode == 0
    gone = run_cli("plate", "ingest", url, "--repo", repo)
    assert gone.returncode == 1 and "Traceback" not in gone.stderr
    assert gone.stderr.strip().splitlines() == [
        f"failed {url}: no zarr group or array there (no zarr.json, .zgroup or .zarray)"
    ]
    assert len(json.loads(run_cli("plate", "list", "--repo", repo, "--json", check=True).stdout)) == 1


def test_ome_zarr_plates_in_object_storage_and_in_ozx_files_are_copied_in(
    tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> None:
    """The same plate in a bucket and in a zipped .ozx is one plate: its identity is its metadata."""
    import s3fs

    source = plate_samples.ome_zarr_plate(tmp_path / "screen.ome.zarr", [(1, 2)], fields=1)
    s3fs.S3FileSystem(endpoint_url=s3_endpoint).put(str(source), f"{s3_bucket}/copy/", recursive=True)
    ozx = tmp_path / "screen.ozx"
    with zipfile.ZipFile(ozx, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(source).as_posix())
    settings = load_settings(tmp_path / "repo", s3_endpoint=s3_endpoint)  # the copy's objects stay local
    copying = init_repository(settings)
    in_s3 = ingest_plate(copying, PlateRequest(Path(), "S3", url=f"s3://{s3_bucket}/copy/screen.ome.zarr"))
    assert (in_s3.status, in_s3.wells, in_s3.fields) == ("ingested", 1, 1), in_s3.error
    zipped = ingest_plate(copying, PlateRequest(Path(), "Zip", url=str(ozx)))
    assert zipped.status == "already_present" and zipped.plate_id == in_s3.plate_id  # the same documents
    with LiveServer(settings) as server:
        group = zarr.open_group(f"{server.url}/zarr/{in_s3.plate_id}.ome.zarr", mode="r")
        assert np.array_equal(group["B/3/0/0"][1], plate_samples.field_pixels(1, 2, 0, 1))
    broken = ingest_plate(copying, PlateRequest(Path(), "S3", url=f"s3://{s3_bucket}/copy/nothing.ome.zarr"))
    copying.close()
    assert broken.status == "failed" and broken.error.startswith(f"s3://{s3_bucket}/copy/nothing.ome.zarr")

"""DICOM as hospitals hand it over: series of files stacked in slice order with their physical sizes,
compressed transfer syntaxes decoded, inconsistent series refused with what is wrong; and every header
de-identified by PS3.15 Table E.1-1 before anything is kept, checked attribute by attribute on the DICOM
files pydicom ships."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
import zarr
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from fairimage import ontology
from fairimage.formats.deid import Choice, deidentify
from fairimage.model.governance.policy import ANONYMOUS
from fairimage.model.privacy import deid
from fairimage.model.privacy.deid import Option
from fairimage.services.discovery import images, search
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.repository import Repository, init_repository
from fairimage.settings import load_settings
from tests.conftest import LiveServer

PROFILE = ontology.dicom_profile()
KEY = bytes(range(32))
# pydicom's test files with identifying attributes, sequences, private tags, several modalities and syntaxes.
DEID_FILES = [
    "CT_small.dcm",
    "MR_small.dcm",
    "rtplan.dcm",
    "rtstruct.dcm",
    "test-SR.dcm",
    "priv_SQ.dcm",
    "nested_priv_SQ.dcm",
    "US1_UNCR.dcm",
    "emri_small.dcm",
    "JPEG2000.dcm",
    "waveform_ecg.dcm",
    "MR-SIEMENS-DICOM-WithOverlays.dcm",
]


def read(name: str) -> Dataset:
    return pydicom.dcmread(get_testdata_file(name), force=True)


def walk(dataset: Dataset, path: str = "") -> Iterator[tuple[str, Any, Dataset]]:
    """Every element with its path (sequence items by index), recursively."""
    for element in dataset:
        here = f"{path}/{element.tag}"
        yield here, element, dataset
        if element.VR == "SQ":
            for index, item in enumerate(element.value or []):
                yield from walk(item, f"{here}[{index}]")


def find(dataset: Dataset, path: str) -> Any:
    """The element at ``path`` (as ``walk`` writes it), or None if it (or a sequence on its way) is gone."""
    node: Any = dataset
    parts = path.strip("/").split("/")
    for part in parts:
        tag_text, _, index = part.partition("[")
        tag = pydicom.tag.Tag(*(int(x, 16) for x in tag_text.strip("()").split(",")))
        if not isinstance(node, Dataset) or tag not in node:
            return None
        node = node[tag]
        if index:
            items = node.value or []
            position = int(index.rstrip("]"))
            if position >= len(items):
                return None
            node = items[position]
    return node


@pytest.mark.parametrize("name", DEID_FILES)
def test_no_attribute_the_profile_names_keeps_its_value_and_pixels_do_not_change(name: str) -> None:
    original = read(name)
    cleaned = copy.deepcopy(original)
    report = deidentify(cleaned, PROFILE, KEY)
    checked = 0
    for path, element, _parent in walk(original):
        tag = int(element.tag)
        if element.tag.is_private:
            assert find(cleaned, path) is None, f"{name}: private {path} remains"
            continue
        row = PROFILE.attribute(tag)
        if row is None or element.value in (None, "", b"") or element.VR == "SQ":
            continue
        checked += 1
        after = find(cleaned, path)
        action = deid.action_for(row, frozenset())
        if action == "X":
            assert after is None, f"{name}: {path} {row.name} should be removed"
        elif action == "Z":
            assert after is None or after.value in (None, "", b"", []), (
                f"{name}: {path} {row.name} not emptied"
            )
        else:  # D, U: replaced, never the original value
            assert after is None or after.value != element.value, f"{name}: {path} {row.name} kept its value"
    only_private = name in ("priv_SQ.dcm", "nested_priv_SQ.dcm")  # these test private sequences alone
    assert (checked > 0 or only_private) and sum(report.actions.values()) >= checked
    assert cleaned.PatientIdentityRemoved == "YES"
    assert [item.CodeValue for item in cleaned.DeidentificationMethodCodeSequence] == ["113100"]
    if "PixelData" in original:
        assert cleaned.PixelData == original.PixelData
    assert not any(element.tag.is_private for _, element, _ in walk(cleaned))


def test_uids_and_pseudonyms_are_consistent_under_one_key_and_unlinkable_without_it() -> None:
    first, second, other_key = read("MR_small.dcm"), read("MR_small.dcm"), read("MR_small.dcm")
    original_study = first.StudyInstanceUID
    deidentify(first, PROFILE, KEY)
    deidentify(second, PROFILE, KEY)
    deidentify(other_key, PROFILE, bytes(32))
    assert first.StudyInstanceUID == second.StudyInstanceUID != original_study
    assert first.StudyInstanceUID.startswith("2.25.") and len(first.StudyInstanceUID) <= 64
    assert first.PatientID == second.PatientID != other_key.PatientID
    assert other_key.StudyInstanceUID != first.StudyInstanceUID
    assert first.file_meta.MediaStorageSOPInstanceUID == first.SOPInstanceUID


def test_options_retain_what_they_name_and_shift_dates_per_patient() -> None:
    original = read("CT_small.dcm")
    shifted = copy.deepcopy(original)
    report = deidentify(shifted, PROFILE, KEY, Choice(frozenset({Option.RETAIN_MODIFIED_DATES})))
    days = deid.date_shift(KEY, str(original.PatientID))
    assert report.date_shift_days == days and 1 <= days <= 3650
    assert shifted.StudyDate == deid.shift_da(original.StudyDate, days) != original.StudyDate
    assert shifted.LongitudinalTemporalInformationModified == "MODIFIED"
    codes = [item.CodeValue for item in shifted.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113107"]
    full = copy.deepcopy(original)
    deidentify(
        full, PROFILE, KEY, Choice(frozenset({Option.RETAIN_FULL_DATES, Option.RETAIN_MODIFIED_DATES}))
    )
    assert (
        full.StudyDate == original.StudyDate and full.LongitudinalTemporalInformationModified == "UNMODIFIED"
    )
    device = copy.deepcopy(original)
    deidentify(device, PROFILE, KEY, Choice(frozenset({Option.RETAIN_DEVICE_IDENTITY})))
    plain = copy.deepcopy(original)
    deidentify(plain, PROFILE, KEY)
    assert "StationName" in original and device.StationName == original.StationName != plain.get(
        "StationName"
    )


def test_safe_private_attributes_stay_only_when_listed() -> None:
    original = read("CT_small.dcm")
    creators = {
        (element.tag.group, element.tag.element): str(element.value)
        for element in original
        if element.tag.is_private and 0x10 <= element.tag.element <= 0xFF
    }
    data = next(
        element.tag
        for element in original
        if element.tag.is_private and element.tag.element > 0xFF and element.VR != "SQ"
    )
    group, block = data.group, data.element >> 8
    creator = creators[(group, block)]
    safe = Choice(frozenset({Option.RETAIN_SAFE_PRIVATE}), frozenset({(creator, data.element & 0xFF)}))
    kept = copy.deepcopy(original)
    report = deidentify(kept, PROFILE, KEY, safe)
    private = [element.tag for element in kept if element.tag.is_private]
    assert report.private_kept == 1 and data in private
    assert private == [pydicom.tag.Tag(group, block), data]  # with its private creator, nothing else
    assert [item.CodeValue for item in kept.DeidentificationMethodCodeSequence] == ["113100", "113111"]


def test_the_table_is_the_2024b_edition_from_machine_readable_sources() -> None:
    assert PROFILE.edition == "2024b" and len(PROFILE.attributes) == 621
    assert PROFILE.attribute(0x00100010).action == "Z"  # Patient's Name
    assert PROFILE.attribute(0x0020000D).action == "U"  # Study Instance UID
    assert PROFILE.attribute(0x60023000).name == "Overlay Data"  # a repeating group
    assert deid.resolve("X/Z/D") == "D" and deid.resolve("X/Z") == "Z" and deid.resolve("X") == "X"


def slices(folder: Path, count: int = 6, spacing: float = 2.5, drop: int | None = None) -> list[Path]:
    """A CT series of ``count`` slices made from pydicom's CT_small, each slice's pixels different, written
    in shuffled file order; ``drop`` leaves one slice out."""
    folder.mkdir(parents=True, exist_ok=True)
    template = read("CT_small.dcm")
    series, study = generate_uid(), generate_uid()
    base = template.pixel_array
    paths = []
    order = list(range(count))
    random.Random(3).shuffle(order)
    for position, index in enumerate(order):
        if index == drop:
            continue
        item = copy.deepcopy(template)
        item.StudyInstanceUID, item.SeriesInstanceUID = study, series
        item.SOPInstanceUID = generate_uid()
        item.file_meta.MediaStorageSOPInstanceUID = item.SOPInstanceUID
        x, y, _ = (float(v) for v in template.ImagePositionPatient)
        item.ImagePositionPatient = [x, y, -100.0 + index * spacing]
        item.InstanceNumber = count - index
        item.PixelData = (base + index * 7).astype(base.dtype).tobytes()
        path = folder / f"file{position:03d}.dcm"
        item.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[Repository]:
    repository = init_repository(load_settings(tmp_path / "repo"))
    yield repository
    repository.close()


def stored(repository: Repository, image_id: str) -> np.ndarray:
    root = repository.settings.storage
    return np.asarray(zarr.open_group(f"{root}/images/{image_id}.ome.zarr", mode="r")["0"][:])


def test_a_series_becomes_one_volume_in_slice_order_with_millimetres(
    repository: Repository, tmp_path: Path
) -> None:
    paths = slices(tmp_path / "ct", count=6, spacing=2.5)
    outcomes = ingest_paths(repository, [tmp_path / "ct"], study="CT study")
    assert [o.status for o in outcomes] == ["ingested"], outcomes
    image = images.get_image(repository, ANONYMOUS, outcomes[0].images[0])
    assert image.axes[0].name == "z" and tuple(image.shape) == (6, 128, 128)
    assert image.scale[0] == pytest.approx(2.5) and image.axes[0].unit == "millimeter"
    template = read("CT_small.dcm")
    expected = np.stack(
        [
            (template.pixel_array + k * 7).astype(np.float64) * float(template.RescaleSlope)
            + float(template.RescaleIntercept)
            for k in range(6)
        ]
    )
    assert np.array_equal(stored(repository, image.id), expected.astype(image.dtype))
    header = images.dicom_header(repository, ANONYMOUS, image.id)
    assert header["00120062"]["Value"] == ["YES"] and header["00100020"]["Value"][0].startswith("FI")
    assert str(template.PatientName) not in str(header) and str(template.PatientID) not in str(header)
    again = ingest_paths(repository, list(reversed(paths)), study="CT study")
    assert [o.status for o in again] == ["already_present"]  # the same files in any order: the same series
    found = search.search(repository, ANONYMOUS, "CT")
    assert {hit.image.id for hit in found.hits} == {image.id}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("drop", "slice(s) missing"),
        ("duplicate", "two slices at the same position"),
        ("size", "slices of different sizes"),
    ],
)
def test_an_inconsistent_series_is_refused_with_what_is_wrong(
    repository: Repository, tmp_path: Path, change: str, words: str
) -> None:
    paths = slices(tmp_path / "ct", count=6, drop=3 if change == "drop" else None)
    if change == "duplicate":
        first = pydicom.dcmread(paths[0])
        first.SOPInstanceUID = generate_uid()
        first.save_as(tmp_path / "ct" / "copy.dcm", enforce_file_format=True)
    if change == "size":
        small = pydicom.dcmread(paths[1])
        small.Rows, small.Columns = 64, 64
        small.PixelData = (
            small.pixel_array[:64, :64].tobytes() if False else np.zeros((64, 64), np.int16).tobytes()
        )
        small.save_as(paths[1], enforce_file_format=True)
    outcomes = ingest_paths(repository, [tmp_path / "ct"], study="CT study")
    assert [o.status for o in outcomes] == ["failed"] and words in (outcomes[0].error or "")
    assert "\n" not in (outcomes[0].error or "")


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_RLE.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_jp2klossless.dcm",
        "JPEG-LL.dcm",
        "JPEG2000.dcm",
        "JPEG-lossy.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
        "SC_ybr_full_422_uncompressed.dcm",
    ],
)
def test_compressed_transfer_syntaxes_are_decoded_pixel_for_pixel(
    repository: Repository, tmp_path: Path, name: str
) -> None:
    outcomes = ingest_paths(repository, [Path(get_testdata_file(name))], study="syntaxes")
    assert [o.status for o in outcomes] == ["ingested"], outcomes[0].error
    pixels = stored(repository, outcomes[0].images[0])
    reference = read(name.replace("_RLE", "").replace("_jpeg_ls_lossless", "").replace("_jp2klossless", ""))
    if name.startswith("MR_small"):
        assert np.array_equal(pixels, reference.pixel_array)  # lossless: the same pixels as uncompressed
    elif name == "JPEG-lossy.dcm":
        assert pixels.shape == (1024, 256) and pixels.dtype == np.uint16 and pixels.max() > 0
    else:
        decoded = read(name).pixel_array
        expected = np.moveaxis(decoded, -1, 0) if decoded.ndim == 3 else decoded
        assert np.array_equal(pixels, expected)


def test_the_header_over_http_follows_the_images_access(repository: Repository, tmp_path: Path) -> None:
    slices(tmp_path / "ct", count=3)
    image_id = ingest_paths(repository, [tmp_path / "ct"], study="CT study")[0].images[0]
    with LiveServer(repository.settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        header = client.get(f"/api/images/{image_id}/dicom")
        assert header.status_code == 200 and header.headers["content-type"].startswith(
            "application/dicom+json"
        )
        assert header.json()["00120062"]["Value"] == ["YES"]
        assert client.get(f"/api/images/{image_id}").json()["acquisition"]["modality"] == "CT"
        assert client.get("/api/images/img-nope/dicom").status_code == 404


def _dciodvfy_errors(path: Path) -> set[str]:
    """dciodvfy's errors, with values left out (replaced UIDs and dates are not new errors)."""
    import re
    import subprocess

    result = subprocess.run(["dciodvfy", "-new", str(path)], capture_output=True, text=True, check=False)
    lines = (result.stdout + result.stderr).splitlines()
    return {re.sub(r"<[^>]*>", "<>", line) for line in lines if line.startswith("Error")}


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "MR_small.dcm", "US1_UNCR.dcm", "rtplan.dcm", "emri_small.dcm", "test-SR.dcm"]
)
def test_de_identified_instances_raise_no_new_dciodvfy_errors(tmp_path: Path, name: str) -> None:
    import shutil

    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian dicom3tools) is not installed: 'make test' installs it")
    original = read(name)
    original.save_as(tmp_path / "before.dcm")
    deidentify(original, PROFILE, KEY)
    original.save_as(tmp_path / "after.dcm")
    assert _dciodvfy_errors(tmp_path / "after.dcm") - _dciodvfy_errors(tmp_path / "before.dcm") == set()


def test_images_that_may_show_burned_in_text_hold_their_study_back_until_a_steward_clears_them(
    repository: Repository, tmp_path: Path
) -> None:
    import json

    from fairimage.model.errors import ConflictError, NotFoundError
    from fairimage.model.governance.policy import operator
    from fairimage.services.governance import versions
    from tests.conftest import run_cli

    ultrasound = Path(get_testdata_file("US1_UNCR.dcm"))
    slices(tmp_path / "ct", count=3)
    ingest_paths(repository, [tmp_path / "ct"], study="CT")  # not quarantined: not listed below
    (outcome,) = ingest_paths(repository, [ultrasound], study="Echo")
    image_id = outcome.images[0]
    assert outcome.warnings == [
        f"{ultrasound}: quarantined (modality US often burns text into the pixels): its study is held back "
        f"until a steward clears it with 'fairimage dicom clear {image_id} --note ...'"
    ]
    with pytest.raises(NotFoundError):
        images.get_image(repository, ANONYMOUS, image_id)
    assert search.search(repository, ANONYMOUS, "").total == 1  # the CT study's image only
    assert images.get_image(repository, operator("steward"), image_id).id == image_id
    with pytest.raises(ConflictError, match="burned into their pixels"):
        versions.publish(repository, operator("steward"), "Echo")
    repo = repository.settings.repo
    listed = run_cli("dicom", "quarantine", "--repo", repo, "--json")
    assert listed.returncode == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert (
        entry["image_id"] == image_id and "modality US often burns text into the pixels" in entry["reasons"]
    )
    refused = run_cli("dicom", "clear", image_id, "--repo", repo)
    assert refused.returncode != 0 and "--note: say what you checked" in refused.stderr
    cleared = run_cli("dicom", "clear", image_id, "--note", "all frames viewed, no text", "--repo", repo)
    assert cleared.returncode == 0, cleared.stderr
    assert images.get_image(repository, ANONYMOUS, image_id).id == image_id
    assert search.search(repository, ANONYMOUS, "").total == 2
    assert versions.publish(repository, operator("steward"), "Echo").published_at is not None
    assert run_cli("dicom", "quarantine", "--repo", repo, "--json").stdout.strip() == "[]"


def test_identified_originals_are_kept_encrypted_and_leave_only_re_encrypted(tmp_path: Path) -> None:
    import io
    import json

    from crypt4gh import lib
    from crypt4gh.keys import c4gh, get_private_key

    from fairimage.services.ingest import originals
    from tests.conftest import run_cli

    settings = load_settings(tmp_path / "repo", keep_dicom_originals=True)
    repository = init_repository(settings)
    try:
        paths = slices(tmp_path / "ct", count=3)
        (outcome,) = ingest_paths(repository, [tmp_path / "ct"], study="CT study")
        secret_path, _ = settings.crypt4gh_keys
        assert secret_path.stat().st_mode & 0o077 == 0  # the secret key: its owner's only
        catalog = (tmp_path / "repo" / "catalog.sqlite").read_bytes()
        assert secret_path.read_bytes() not in catalog
        with repository.reading() as session:
            from fairimage.catalog.tables import OriginalFileRow

            kept = session.get(OriginalFileRow, outcome.file_id).kept
        assert kept is not None and len(kept) == 3
        patient = str(read("CT_small.dcm").PatientName).encode()
        plain = {path.read_bytes() for path in paths}
        stored = [repository.store.read(key) for key in kept]
        assert all(
            blob.startswith(b"crypt4gh") and patient not in blob and blob not in plain for blob in stored
        )
        keys = originals.repository_keys(settings)
        opened = set()
        for blob in stored:
            out = io.BytesIO()
            lib.decrypt([(0, keys.secret, None)], io.BytesIO(blob), out)
            opened.add(out.getvalue())
        assert opened == plain  # nothing lost: the originals as they came
        c4gh.generate(str(tmp_path / "alice.sec"), str(tmp_path / "alice.pub"), None, b"alice")
        exported = run_cli(
            "originals",
            "export",
            outcome.file_id,
            "--recipient",
            tmp_path / "alice.pub",
            "--to",
            tmp_path / "out",
            "--repo",
            settings.repo,
            "--json",
        )
        assert exported.returncode == 0, exported.stderr
        alice = get_private_key(str(tmp_path / "alice.sec"), lambda: "")
        received = set()
        for name in json.loads(exported.stdout):
            out = io.BytesIO()
            with open(name, "rb") as sealed:
                lib.decrypt([(0, alice, None)], sealed, out)
            received.add(out.getvalue())
        assert received == plain
    finally:
        repository.close()


def test_a_study_pulled_from_orthanc_over_dicomweb_is_ingested_de_identified(
    orthanc: str, tmp_path: Path
) -> None:
    import json

    from tests.conftest import run_cli

    paths = slices(tmp_path / "ct", count=4, spacing=3.0)
    for path in paths:
        assert httpx.post(f"{orthanc}/instances", content=path.read_bytes(), timeout=30).status_code == 200
    study_uid = str(pydicom.dcmread(paths[0]).StudyInstanceUID)
    repo = tmp_path / "repo"
    init_repository(load_settings(repo)).close()
    pulled = run_cli(
        "dicomweb",
        "pull",
        f"{orthanc}/dicom-web",
        "--study",
        study_uid,
        "--into",
        "From PACS",
        "--repo",
        repo,
        "--json",
    )
    assert pulled.returncode == 0, pulled.stderr
    (outcome,) = json.loads(pulled.stdout)
    assert outcome["status"] == "ingested" and outcome["format"] == "dicom"
    from fairimage.services.recovery import open_repository

    opened = open_repository(load_settings(repo))
    try:
        image = images.get_image(opened, ANONYMOUS, outcome["images"][0])
        assert tuple(image.shape) == (4, 128, 128) and image.scale[0] == pytest.approx(3.0)
        header = images.dicom_header(opened, ANONYMOUS, image.id)
        assert header["0020000D"]["Value"][0] != study_uid  # the Study Instance UID was replaced
        assert not any((repo / "scratch").iterdir())  # the retrieved files are gone
    finally:
        opened.close()
    missing = run_cli("dicomweb", "pull", f"{orthanc}/dicom-web", "--study", "1.2.3.4", "--repo", repo)
    assert missing.returncode != 0 and "not found on the DICOMweb service" in missing.stderr


def test_time_points_of_the_same_slices_make_a_4d_image(repository: Repository, tmp_path: Path) -> None:
    template = read("CT_small.dcm")
    series, study = generate_uid(), generate_uid()
    folder = tmp_path / "4d"
    folder.mkdir()
    for time_point in (2, 1):  # written out of order
        for index in range(4):
            item = copy.deepcopy(template)
            item.StudyInstanceUID, item.SeriesInstanceUID = study, series
            item.SOPInstanceUID = generate_uid()
            item.file_meta.MediaStorageSOPInstanceUID = item.SOPInstanceUID
            item.ImagePositionPatient = [0.0, 0.0, index * 2.0]
            item.TemporalPositionIdentifier = time_point
            item.PixelData = (template.pixel_array + 100 * time_point + index).astype(np.int16).tobytes()
            item.save_as(folder / f"t{time_point}z{index}.dcm", enforce_file_format=True)
    (outcome,) = ingest_paths(repository, [folder], study="4D")
    assert outcome.status == "ingested", outcome.error
    image = images.get_image(repository, ANONYMOUS, outcome.images[0])
    assert [axis.name for axis in image.axes] == ["t", "z", "y", "x"] and tuple(image.shape) == (
        2,
        4,
        128,
        128,
    )
    pixels = stored(repository, image.id)
    slope, intercept = float(template.RescaleSlope), float(template.RescaleIntercept)
    for t in range(2):
        for z in range(4):
            expected = (template.pixel_array + 100 * (t + 1) + z) * slope + intercept
            assert np.array_equal(pixels[t, z], expected.astype(pixels.dtype))


def test_a_dicomdir_folder_is_ingested_series_by_series(repository: Repository) -> None:
    folder = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests"
    outcomes = ingest_paths(repository, [folder], study="DICOMDIR")
    by_status: dict[str, list[str]] = {}
    for outcome in outcomes:
        by_status.setdefault(outcome.status, []).append(outcome.error or outcome.path)
    assert len(by_status["ingested"]) == 23  # CR, CT and MR series; a 3-plane localizer as three images
    # pydicom's set holds 4 slices of a 165-slice CT series: refused, never stacked with gaps
    assert by_status["failed"] == [next(e for e in by_status["failed"] if "slice(s) missing" in e)]
    assert sum("without an image" in text for text in by_status["skipped"]) >= 50  # DICOMDIRs, stripped files


def whole_slide(path: Path, pixels: np.ndarray, tile: int, image_type: str, series: str, study: str) -> Path:
    """A VL Whole Slide Microscopy instance (TILED_FULL, uncompressed RGB) of ``pixels`` (rows, columns,
    samples)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    rows, columns = pixels.shape[:2]
    across, down = -(-columns // tile), -(-rows // tile)
    padded = np.zeros((down * tile, across * tile, 3), np.uint8)
    padded[:rows, :columns] = pixels
    frames = [
        padded[y * tile : (y + 1) * tile, x * tile : (x + 1) * tile]
        for y in range(down)
        for x in range(across)
    ]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.6"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    item = Dataset()
    item.file_meta = meta
    item.SOPClassUID, item.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    item.StudyInstanceUID, item.SeriesInstanceUID = study, series
    item.PatientName, item.PatientID, item.Modality = "SLIDE^PATIENT", "P-SLIDE-1", "SM"
    item.ImageType = ["ORIGINAL", "PRIMARY", image_type, "NONE"]
    item.DimensionOrganizationType = "TILED_FULL"
    item.TotalPixelMatrixRows, item.TotalPixelMatrixColumns = rows, columns
    item.Rows = item.Columns = tile
    item.NumberOfFrames = len(frames)
    item.SamplesPerPixel, item.PhotometricInterpretation, item.PlanarConfiguration = 3, "RGB", 0
    item.BitsAllocated, item.BitsStored, item.HighBit, item.PixelRepresentation = 8, 8, 7, 0
    measures = Dataset()
    measures.PixelSpacing = [0.00025, 0.00025]
    shared = Dataset()
    shared.PixelMeasuresSequence = [measures]
    item.SharedFunctionalGroupsSequence = [shared]
    item.PixelData = np.stack(frames).tobytes()
    item.save_as(path, enforce_file_format=True)
    return path


def test_a_whole_slide_series_is_its_tissue_image_without_label_or_overview(
    repository: Repository, tmp_path: Path
) -> None:
    folder = tmp_path / "slide"
    folder.mkdir()
    series, study = generate_uid(), generate_uid()
    tissue = np.random.default_rng(5).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    whole_slide(folder / "level0.dcm", tissue, 128, "VOLUME", series, study)
    whole_slide(folder / "level1.dcm", tissue[::2, ::2], 128, "VOLUME", series, study)
    whole_slide(folder / "label.dcm", np.full((60, 80, 3), 200, np.uint8), 64, "LABEL", series, study)
    (outcome,) = ingest_paths(repository, [folder], study="Slides")
    assert outcome.status == "ingested", outcome.error
    image = images.get_image(repository, ANONYMOUS, outcome.images[0])
    assert tuple(image.shape) == (3, 300, 500) and image.scale[-1] == pytest.approx(0.00025)
    assert np.array_equal(stored(repository, image.id), np.moveaxis(tissue, -1, 0))
    assert "SLIDE^PATIENT" not in str(images.dicom_header(repository, ANONYMOUS, image.id))


def _sample(vr: str) -> Any:
    """An identifying-looking value of a VR (what a table row could hold)."""
    samples: dict[str, Any] = {
        "DA": "19610304",
        "DT": "19610304101500",
        "TM": "101500",
        "UI": "1.2.826.0.1.3680043.8.498.12345",
        "PN": "SMITH^JOHN",
        "AS": "061Y",
        "IS": "7",
        "DS": "7.5",
        "CS": "SECRET",
        "AE": "HOSPITALPACS",
        "UR": "http://hospital.example/patient/7",
        "AT": 0x00100010,
    }
    if vr in samples:
        return samples[vr]
    if vr in ("US", "SS", "UL", "SL", "UV", "SV"):
        return 7
    if vr in ("FL", "FD"):
        return 7.5
    if vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN"):
        return b"SECRET\x00\x00"
    return "John Smith, 221B Baker Street"


def test_every_attribute_of_the_table_gets_its_action() -> None:
    """A data set holding every attribute of Table E.1-1 that pydicom's dictionary knows, each with an
    identifying value: after de-identification each is removed, emptied or replaced as the table says."""
    from pydicom.datadict import dictionary_VR

    dataset = Dataset()
    placed = {}
    for row in PROFILE.attributes:
        if "x" in row.tag or row.tag == deid.PRIVATE_ROW:
            continue
        tag = int(row.tag, 16)
        try:
            vr = dictionary_VR(tag).split(" or ")[0]
        except KeyError:
            continue
        if vr == "SQ":
            item = Dataset()
            item.PatientName = "SMITH^JOHN"
            dataset.add_new(tag, vr, [item])
        else:
            dataset.add_new(tag, vr, _sample(vr))
        placed[tag] = (row, vr)
    original = copy.deepcopy(dataset)
    deidentify(dataset, PROFILE, KEY)
    wrong = []
    for tag, (row, vr) in placed.items():
        action = deid.action_for(row, frozenset())
        after = dataset.get(tag)
        before = original[tag].value
        if action == "X":
            ok = after is None
        elif action == "Z":
            ok = after is not None and after.value in (None, "", b"", [])
        elif vr == "SQ":  # kept or replaced: its items de-identified (the Patient's Name inside emptied)
            ok = after is not None and all(not item.get("PatientName") for item in after.value)
        else:
            ok = after is not None and after.value not in (None, "", b"") and after.value != before
        if not ok:
            wrong.append(
                f"{row.name} {row.tag} {action} {vr}: {after.value if after is not None else 'gone'!r}"
            )
    print(f"Table E.1-1 attributes placed: {len(placed)} of {len(PROFILE.attributes)}")
    assert len(placed) >= 600 and not wrong, wrong[:20]


def test_a_transfer_syntax_that_cannot_be_decoded_is_one_line_naming_file_and_syntax(
    repository: Repository, tmp_path: Path
) -> None:
    item = read("JPEG2000.dcm")
    item.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 Main Profile: no decoder here
    item.save_as(tmp_path / "video.dcm", enforce_file_format=True)
    (outcome,) = ingest_paths(repository, [tmp_path / "video.dcm"], study="videos")
    assert outcome.status == "failed"
    assert outcome.error is not None and outcome.error.startswith(
        f"{tmp_path / 'video.dcm'}: its transfer syntax (MPEG2"
    )
    assert "cannot be decoded here" in outcome.error and "\n" not in outcome.error

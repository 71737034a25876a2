"""A folder of section images (one per z) ingested with the real CLI as one 3D OME-Zarr image: pixels equal to
the sections stacked in the order of their numbers, the z scale exactly the spacing given, each section
named in the image's metadata; a folder that is not one volume is one error line and nothing is stored."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from ome_zarr_models.v05.image import Image as NgffImage

from fairimage.model.units import Length
from fairimage.services.ingest.sections import SectionsRequest, ingest_sections
from fairimage.services.progress import Progress
from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from fairimage.storage import layout
from tests import samples
from tests.conftest import run_cli

SHAPE = (64, 80)
NM_PER_CM = 1e7


def _tiff_sections(folder: Path, count: int, name: str = "section_{}.tif", **options: object) -> np.ndarray:
    """``count`` uint16 sections numbered from 1 (section_1.tif ... ); returns them stacked in z order."""
    folder.mkdir(parents=True, exist_ok=True)
    planes = [samples.ramp(SHAPE, seed=z) for z in range(count)]
    for z, plane in enumerate(planes):
        tifffile.imwrite(folder / name.format(z + 1), plane, **options)  # type: ignore[arg-type]
    return np.stack(planes)


def _stored(repo: Path, image_id: str) -> zarr.Group:
    return zarr.open_group(repo / "objects" / "images" / f"{image_id}.ome.zarr", mode="r")


def _images(repo: Path) -> list[dict[str, object]]:
    return json.loads(run_cli("images", "--repo", repo, "--json", check=True).stdout)  # type: ignore[no-any-return]


def test_tiff_sections_become_one_volume_in_natural_order_with_the_z_spacing(tmp_path: Path) -> None:
    folder = tmp_path / "volume"
    # 4 nm pixels in the files' resolution tags (pixels per centimetre), as microscope software writes them.
    stacked = _tiff_sections(
        folder, 12, resolution=(NM_PER_CM / 4, NM_PER_CM / 4), resolutionunit="CENTIMETER"
    )
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    # Small chunks: several z-chunks, row bands and pyramid levels, so the sections are streamed.
    config = repo / "fairimage.toml"
    config.write_text(re.sub(r"chunk_bytes = \d+", "chunk_bytes = 2048", config.read_text()))

    result = run_cli("ingest", folder, "--sections", "--z-spacing", "30nm", "--repo", repo, check=True)
    assert re.search(r"^ingested \S*volume -> img-\S+ \(sections/tiff\)", result.stdout, re.MULTILINE)

    [image] = _images(repo)
    group = _stored(repo, str(image["id"]))
    model = NgffImage.from_zarr(group)  # validates against the OME-NGFF 0.5 schema
    multiscale = model.ome_attributes.multiscales[0]
    assert [(axis.name, axis.unit) for axis in multiscale.axes] == [
        ("z", "nanometer"),
        ("y", "nanometer"),
        ("x", "nanometer"),
    ]
    levels = [group[dataset.path] for dataset in multiscale.datasets]
    assert len(levels) == 3 and levels[0].shape == (12, *SHAPE)
    np.testing.assert_array_equal(levels[0][...], stacked)  # section_2 before section_10: by number
    scales = [dataset.coordinateTransformations[0].scale for dataset in multiscale.datasets]
    assert scales == [[30.0, 4.0, 4.0], [30.0, 8.0, 8.0], [30.0, 16.0, 16.0]]
    assert [level.shape[0] for level in levels] == [12, 12, 12]

    recorded = group.attrs["fairimage"]["sections"]
    names = [f"section_{z}.tif" for z in range(1, 13)]
    assert [entry["name"] for entry in recorded["files"]] == names
    assert [entry["sha256"] for entry in recorded["files"]] == [
        hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in names
    ]
    # The original's identity: the sha256 of that list, as the catalog records it.
    listed = json.dumps(recorded["files"], sort_keys=True, separators=(",", ":")).encode()
    assert image["original_file"]["sha256"] == recorded["sha256"] == hashlib.sha256(listed).hexdigest()  # type: ignore[index]
    assert image["original_file"]["name"] == "volume (12 sections)"  # type: ignore[index]

    again = run_cli("ingest", folder, "--sections", "--z-spacing", "30nm", "--repo", repo, check=True)
    assert again.stdout.startswith(f"already present {folder} as {image['id']}")


def test_png_sections_take_the_pixel_size_given_in_the_spacings_unit(tmp_path: Path) -> None:
    folder = tmp_path / "em"
    folder.mkdir()
    planes = [samples.ramp(SHAPE, "uint8", seed=z) for z in range(8)]
    for z, plane in enumerate(planes):
        samples.png(folder / f"slice_{z + 1:05d}.png", plane)
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    run_cli(
        "ingest", folder, "--sections", "--z-spacing", "0.05um", "--pixel-size", "5nm", "--repo", repo,
        check=True,
    )  # fmt: skip
    [image] = _images(repo)
    group = _stored(repo, str(image["id"]))
    multiscale = group.attrs["ome"]["multiscales"][0]
    assert multiscale["datasets"][0]["coordinateTransformations"] == [
        {"type": "scale", "scale": [0.05, 0.005, 0.005]}
    ]
    assert {axis["unit"] for axis in multiscale["axes"]} == {"micrometer"}
    np.testing.assert_array_equal(group["0"][...], np.stack(planes))


def _bad_folders(root: Path) -> dict[str, str]:
    """Folder name -> words its one error line must hold."""
    _tiff_sections(root / "shapes", 6)
    tifffile.imwrite(root / "shapes" / "section_4.tif", samples.ramp((64, 81)))
    _tiff_sections(root / "dtypes", 6)
    tifffile.imwrite(root / "dtypes" / "section_5.tif", samples.ramp(SHAPE, "uint8"))
    _tiff_sections(root / "gap", 9)
    (root / "gap" / "section_7.tif").unlink()
    _tiff_sections(root / "duplicate", 8)
    tifffile.imwrite(root / "duplicate" / "section_007.tif", samples.ramp(SHAPE))
    _tiff_sections(root / "stray", 5)
    (root / "stray" / "notes.txt").write_text("cut on the ultramicrotome, 30 nm")
    (root / "empty").mkdir()
    _tiff_sections(root / "broken", 5)
    (root / "broken" / "section_3.tif").write_bytes(b"II*\x00\xff\xff\xff\x7f")
    return {
        "shapes": "section_4.tif (64 x 81 uint16)",
        "dtypes": "section_5.tif (64 x 80 uint8)",
        "gap": "sections missing: 7 (between section_6.tif and section_8.tif)",
        "duplicate": "sections numbered twice: 7 (section_007.tif and section_7.tif)",
        "stray": "not section images (TIFF, PNG or JPEG): notes.txt",
        "empty": "no section images (the folder is empty)",
        "broken": "section_3.tif",
    }


def test_folders_that_are_not_one_volume_fail_one_line_each_and_store_nothing(tmp_path: Path) -> None:
    bad = _bad_folders(tmp_path)
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    folders = [tmp_path / name for name in bad]
    result = run_cli(
        "ingest", *folders, "--sections", "--z-spacing", "30nm", "--pixel-size", "4nm", "--repo", repo
    )
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == len(bad)
    for name, words in bad.items():
        line = next(line for line in lines if f"{tmp_path / name}:" in line)
        assert line.startswith("failed ") and words in line, line
    assert "0 ingested" in result.stdout
    assert _images(repo) == []
    assert [p for p in (repo / "objects").rglob("*") if p.is_file()] == []
    assert not list((repo / "runs").iterdir())


class _Counting(Progress):
    def __init__(self) -> None:
        self.converted = 0

    def advance(self, nbytes: int) -> None:
        self.converted += nbytes


def test_a_bad_last_section_is_found_before_any_pixel_is_converted(tmp_path: Path) -> None:
    folder = tmp_path / "volume"
    _tiff_sections(folder, 10)
    tifffile.imwrite(folder / "section_10.tif", samples.ramp((60, 80)))
    repository = init_repository(load_settings(tmp_path / "repo"))
    counting = _Counting()
    try:
        outcome = ingest_sections(repository, SectionsRequest(folder, Length(30, "nanometer")), counting)
    finally:
        repository.close()
    assert outcome.status == "failed" and "section_10.tif (60 x 80 uint16)" in (outcome.error or "")
    assert "the sections record no pixel size: give it with --pixel-size" in (outcome.error or "")
    assert counting.converted == 0


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--sections", "--z-spacing", "30"], "--z-spacing '30': give a positive length with its unit"),
        (["--z-spacing", "30nm"], "--z-spacing: only for a folder of sections; add --sections"),
    ],
)
def test_section_options_are_checked_first(tmp_path: Path, arguments: list[str], words: str) -> None:
    result = run_cli("ingest", tmp_path, *arguments, "--repo", tmp_path / "repo")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {words}") and len(result.stderr.strip().splitlines()) == 1


def test_a_pixel_size_given_wins_over_the_files_and_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "volume"
    stacked = _tiff_sections(
        folder, 8, resolution=(NM_PER_CM / 4, NM_PER_CM / 4), resolutionunit="CENTIMETER"
    )
    repository = init_repository(load_settings(tmp_path / "repo"))
    try:
        request = SectionsRequest(folder, Length(0.03, "micrometer"), pixel_size=Length(5, "nanometer"))
        outcome = ingest_sections(repository, request)
        group = zarr.open_group(repository.store.zarr_store(layout.image_prefix(outcome.images[0])), mode="r")
        scale = group.attrs["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]
        np.testing.assert_array_equal(group["0"][...], stacked)
    finally:
        repository.close()
    assert outcome.status == "ingested" and scale == [0.03, 0.005, 0.005]
    assert outcome.warnings == [
        f"{folder}: the sections record a pixel size of 0.004 x 0.004 micrometer; --pixel-size 5 nanometer "
        "was used"
    ]


def test_a_multi_file_ome_tiff_is_one_volume_however_its_files_are_given(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    volume = samples.ramp((6, 40, 50), seed=5)
    files = samples.multifile_ome_tiff(raw, volume)
    samples.png(raw / "overview.png", samples.ramp((30, 30), "uint8"))
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)

    outcomes = json.loads(run_cli("ingest", raw, "--repo", repo, "--json", check=True).stdout)
    assert [(Path(o["path"]).name, o["status"]) for o in outcomes] == [
        ("overview.png", "ingested"),
        ("vol_z0.ome.tif", "ingested"),  # one input for the six files, not six volumes
    ]
    image = next(i for i in _images(repo) if i["id"] == outcomes[1]["images"][0])
    group = _stored(repo, str(image["id"]))
    np.testing.assert_array_equal(group["0"][...], volume)
    scale = group.attrs["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale == [0.5, 0.1, 0.1]
    # Its identity is all six files: the sha256 of their sha256s.
    digests = sorted(hashlib.sha256(path.read_bytes()).hexdigest() for path in files)
    assert image["original_file"]["sha256"] == hashlib.sha256("\n".join(digests).encode()).hexdigest()  # type: ignore[index]
    assert image["original_file"]["name"] == "vol_z0.ome.tif (+5 files of its multi-file OME-TIFF)"  # type: ignore[index]
    assert image["original_file"]["size"] == sum(path.stat().st_size for path in files)  # type: ignore[index]

    # Any one of its files names the same volume.
    again = json.loads(run_cli("ingest", files[3], "--repo", repo, "--json", check=True).stdout)
    assert [(o["status"], o["images"]) for o in again] == [("already_present", [image["id"]])]


def test_a_multi_file_ome_tiff_with_a_file_missing_or_outside_its_folder_is_refused(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    files = samples.multifile_ome_tiff(raw, samples.ramp((5, 20, 20), seed=6))
    files[3].unlink()  # tifffile would read its plane as zeros
    # A file whose OME-XML sends its reader to a file of another folder (and one anywhere on the disk).
    other = tmp_path / "other"
    other.mkdir()
    xml = tifffile.TiffFile(files[0]).pages.first.description
    xml = xml.replace('FileName="vol_z1.ome.tif"', 'FileName="../raw/vol_z1.ome.tif"')
    tifffile.imwrite(other / "vol_z0.ome.tif", samples.ramp((20, 20)), description=xml, metadata=None)
    tifffile.imwrite(
        other / "abs.ome.tif",
        samples.ramp((20, 20)),
        description=xml.replace("../raw/vol_z1.ome.tif", str(files[1])),
        metadata=None,
    )
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)

    result = run_cli("ingest", raw, other, "--repo", repo)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    # The four files left of the volume are one input, refused once, naming the missing one.
    assert [line for line in lines if line.startswith(f"failed {raw}/")] == [
        f"failed {files[0]}: a multi-file OME-TIFF of 5 files, 1 missing beside it (vol_z3.ome.tif); "
        "copy them into raw/"
    ]
    outside = [line for line in lines if line.startswith(f"failed {other}/")]
    assert len(outside) == 2 and all("its OME-XML names files outside its folder" in line for line in outside)
    assert _images(repo) == []
    assert [p for p in (repo / "objects").rglob("*") if p.is_file()] == []


def test_multi_page_tiffs_of_consecutive_sections_take_the_spacing_they_record(tmp_path: Path) -> None:
    folder = tmp_path / "stacks"
    folder.mkdir()
    # ImageJ stacks of 10, 10 and 5 sections (saved 30 nm apart, 4 nm pixels), numbered by their first
    # section (1, 11, 21); numbered 1, 2, 3 they would be read alike.
    parts = [samples.ramp((depth, *SHAPE), seed=depth + n) for n, depth in enumerate((10, 10, 5))]
    for number, part in zip((1, 11, 21), parts, strict=True):
        tifffile.imwrite(
            folder / f"stack_{number}.tif",
            part,
            imagej=True,
            resolution=(1 / 0.004, 1 / 0.004),
            metadata={"spacing": 0.03, "unit": "um", "axes": "ZYX"},
        )
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)

    result = run_cli("ingest", folder, "--sections", "--repo", repo, check=True)
    assert "sections missing" not in result.stderr  # 11 follows 1's ten sections: no gap
    [image] = _images(repo)
    group = _stored(repo, str(image["id"]))
    np.testing.assert_array_equal(group["0"][...], np.concatenate(parts))
    scale = group.attrs["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale == [0.03, 0.004, 0.004]
    assert image["original_file"]["name"] == "stacks (25 sections in 3 files)"  # type: ignore[index]
    files = group.attrs["fairimage"]["sections"]["files"]
    assert [(f["name"], f["z"], f.get("planes")) for f in files] == [
        ("stack_1.tif", 0, 10),
        ("stack_11.tif", 10, 10),
        ("stack_21.tif", 20, 5),
    ]
    # A stack missing is a gap still.
    (folder / "stack_11.tif").unlink()
    missing = run_cli("ingest", folder, "--sections", "--repo", repo)
    assert (
        missing.returncode == 1
        and "sections missing: 2-20 (between stack_1.tif and stack_21.tif)" in missing.stderr
    )


def _ome_sections(folder: Path, spacings: list[float]) -> np.ndarray:
    """Single-plane OME-TIFF sections whose OME-XML records a PhysicalSizeZ each (in micrometres)."""
    folder.mkdir(parents=True, exist_ok=True)
    planes = [samples.ramp(SHAPE, seed=z) for z in range(len(spacings))]
    for z, (plane, spacing) in enumerate(zip(planes, spacings, strict=True)):
        samples.ome_tiff(folder / f"s{z + 1:03d}.ome.tif", plane, axes="YX", PhysicalSizeX=0.004,
                         PhysicalSizeY=0.004, PhysicalSizeZ=spacing)  # fmt: skip
    return np.stack(planes)


def test_the_z_spacing_comes_from_the_sections_unless_given_and_must_agree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    stacked = _ome_sections(tmp_path / "ome", [0.05] * 6)
    run_cli("ingest", tmp_path / "ome", "--sections", "--repo", repo, check=True)
    [image] = _images(repo)
    group = _stored(repo, str(image["id"]))
    np.testing.assert_array_equal(group["0"][...], stacked)
    scale = group.attrs["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale == [0.05, 0.004, 0.004]

    # Given, --z-spacing wins and the difference is told.
    _ome_sections(tmp_path / "given", [0.05] * 3)
    given = run_cli(
        "ingest", tmp_path / "given", "--sections", "--z-spacing", "40nm", "--repo", repo, check=True
    )
    assert "the sections record a z spacing of 0.05 micrometer; --z-spacing 40 nanometer was used" in (
        given.stdout + given.stderr
    )

    # Sections that disagree, and sections that record none: one line each, nothing stored.
    _ome_sections(tmp_path / "odd", [0.05, 0.05, 0.06, 0.05])
    _tiff_sections(
        tmp_path / "plain", 4, resolution=(NM_PER_CM / 4, NM_PER_CM / 4), resolutionunit="CENTIMETER"
    )
    result = run_cli("ingest", tmp_path / "odd", tmp_path / "plain", "--sections", "--repo", repo)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 2
    assert "sections unlike the others (0.05 micrometer): s003.ome.tif (0.06 micrometer)" in lines[0], lines[
        0
    ]
    assert lines[1].endswith("the sections record no z spacing: give it with --z-spacing, e.g. 30nm"), lines[
        1
    ]
    assert len(_images(repo)) == 2

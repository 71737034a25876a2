"""Bad input: one line naming the file and the reason, exit 1, no traceback, nothing stored for it, and the
other files of the same run ingested all the same."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import tifffile

from tests import samples
from tests.conftest import run_cli


def _stored_files(repo: Path) -> list[Path]:
    return [p for p in (repo / "objects").rglob("*") if p.is_file()]


def _bad_inputs(folder: Path) -> dict[str, str]:
    """File name -> words its error line must contain."""
    big = folder / "whole.tif"
    tifffile.imwrite(big, samples.ramp((1000, 1000)))
    data = big.read_bytes()
    (folder / "truncated.tif").write_bytes(data[: len(data) // 2])
    big.unlink()
    samples.png(folder / "whole.png", samples.ramp((200, 200), "uint8"))
    png = (folder / "whole.png").read_bytes()
    (folder / "corrupt.png").write_bytes(png[:60] + b"\x00garbage" * 50)
    (folder / "whole.png").unlink()
    (folder / "empty.tif").write_bytes(b"")
    (folder / "readme.docx").write_bytes(b"PK\x03\x04 not an image at all")
    (folder / "headless.tif").write_bytes(b"II*\x00\xff\xff\xff\x7f")
    return {
        "truncated.tif": "truncated",
        "corrupt.png": "corrupt.png",
        "empty.tif": "empty",
        "readme.docx": "not an image fairimage reads",
        "headless.tif": "headless.tif",
    }


def test_bad_files_fail_one_line_each_and_good_ones_still_land(tmp_path: Path) -> None:
    bad = _bad_inputs(tmp_path)
    good = samples.ome_tiff(tmp_path / "good.ome.tif", samples.ramp((2, 64, 64)), axes="CYX")
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    named = [tmp_path / name for name in bad]
    result = run_cli("ingest", "--repo", repo, *named[:3], good, *named[3:])
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    error_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(error_lines) == len(bad)
    for name, words in bad.items():
        line = next(line for line in error_lines if name in line)
        assert words in line, line
    assert re.search(r"^ingested \S*good\.ome\.tif -> img-", result.stdout, re.MULTILINE)
    listed = json.loads(run_cli("images", "--repo", repo, "--json", check=True).stdout)
    assert [image["name"] for image in listed] == ["good.ome.tif"]
    stored = {p.relative_to(repo / "objects").parts[:2] for p in _stored_files(repo)}
    assert stored == {("images", f"{listed[0]['id']}.ome.zarr"), ("manifests", f"{listed[0]['id']}.json")}
    assert not list((repo / "runs").iterdir())


def test_json_reports_each_file(tmp_path: Path) -> None:
    good = samples.png(tmp_path / "ok.png", samples.ramp((20, 30), "uint8"))
    (tmp_path / "empty.png").write_bytes(b"")
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    result = run_cli(
        "ingest", "--repo", repo, good, tmp_path / "empty.png", tmp_path / "missing.tif", "--json"
    )
    assert result.returncode == 1
    report = {Path(entry["path"]).name: entry for entry in json.loads(result.stdout)}
    assert report["ok.png"]["status"] == "ingested" and report["ok.png"]["images"][0].startswith("img-")
    assert report["ok.png"]["error"] is None and report["ok.png"]["file_id"]
    assert report["empty.png"]["status"] == "failed" and "empty" in report["empty.png"]["error"]
    assert report["missing.tif"]["status"] == "failed" and "no such file" in report["missing.tif"]["error"]


def test_same_content_twice_is_reported_already_present(tmp_path: Path) -> None:
    data = samples.ramp((3, 40, 50))
    first = samples.ome_tiff(tmp_path / "a.ome.tif", data, axes="ZYX")
    copy = tmp_path / "copy-of-a.ome.tif"
    copy.write_bytes(first.read_bytes())
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    once = json.loads(run_cli("ingest", "--repo", repo, first, "--json", check=True).stdout)[0]
    again = json.loads(run_cli("ingest", "--repo", repo, copy, "--json", check=True).stdout)[0]
    assert again["status"] == "already_present" and again["images"] == once["images"]
    assert len(json.loads(run_cli("images", "--repo", repo, "--json", check=True).stdout)) == 1


def test_one_file_named_twice_in_one_command_is_stored_once_and_reported_twice(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    source = samples.ome_tiff(tmp_path / "raw" / "a.ome.tif", samples.ramp((2, 30, 40)), axes="ZYX")
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    # By name twice, then again inside its folder.
    arguments = ["ingest", "--repo", repo, source, source, source.parent, "--json"]
    outcomes = json.loads(run_cli(*arguments, check=True).stdout)
    assert [o["status"] for o in outcomes] == ["ingested", "already_present", "already_present"]
    assert outcomes[0]["images"] == outcomes[1]["images"] == outcomes[2]["images"]


def test_folders_are_walked_and_unknown_kinds_skipped_without_failing(tmp_path: Path) -> None:
    inputs = tmp_path / "plate_dir" / "well-A1"
    inputs.mkdir(parents=True)
    samples.png(inputs / "field-1.png", samples.ramp((20, 20), "uint8", seed=1))
    samples.png(inputs / "field-2.png", samples.ramp((20, 20), "uint8", seed=2))
    (inputs / "acquisition.log").write_text("exposure 20 ms")
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    result = run_cli("ingest", "--repo", repo, tmp_path / "plate_dir", "--study", "screen")
    assert result.returncode == 0, result.stderr
    # named as it was found: the folder given, then the path inside it
    log = tmp_path / "plate_dir" / "well-A1" / "acquisition.log"
    assert re.search(rf"^skipped {re.escape(str(log))}: not an image", result.stdout, re.MULTILINE)
    assert "2 ingested, 0 already present, 1 skipped, 0 failed" in result.stdout
    listed = json.loads(run_cli("images", "--repo", repo, "--study", "screen", "--json", check=True).stdout)
    assert sorted(image["name"] for image in listed) == ["field-1.png", "field-2.png"]


def test_cli_errors_are_one_line_with_a_fix(tmp_path: Path) -> None:
    result = run_cli("images", "--repo", tmp_path / "nowhere")
    assert result.returncode == 4
    assert result.stderr.strip().count("\n") == 0
    assert "not a fairimage repository" in result.stderr and "fairimage init" in result.stderr
    run_cli("init", tmp_path / "repo", check=True)
    again = run_cli("init", tmp_path / "repo")
    assert again.returncode == 1 and "already a fairimage repository" in again.stderr
    help_text = run_cli("ingest", "--help", check=True).stdout
    assert "--study" in help_text and "--json" in help_text


def test_bool_and_wide_integer_pixels_are_kept(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    wide = np.array([[0, 2**63 + 5], [2**64 - 1, 7]], dtype=np.uint64)
    tifffile.imwrite(tmp_path / "wide.tif", wide)
    report = json.loads(run_cli("ingest", "--repo", repo, tmp_path / "wide.tif", "--json", check=True).stdout)
    import zarr

    stored = zarr.open_group(repo / "objects" / "images" / f"{report[0]['images'][0]}.ome.zarr", mode="r")
    np.testing.assert_array_equal(stored["0"][...], wide)


def test_the_codec_is_chosen_per_ingest_and_a_bad_one_is_named(tmp_path: Path) -> None:
    import zarr

    pixels = samples.ramp((2, 96, 80))
    source = samples.ome_tiff(tmp_path / "cells.ome.tif", pixels, axes="CYX")
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    bad = run_cli("ingest", "--repo", repo, "--codec", "brotli:4", source)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "--codec 'brotli:4'" in bad.stderr and "zstd:3" in bad.stderr
    assert not _stored_files(repo)
    done = run_cli("ingest", "--repo", repo, "--codec", "lz4:3", "--json", source, check=True)
    image = json.loads(done.stdout)[0]["images"][0]
    level = zarr.open_array(str(repo / "objects" / "images" / f"{image}.ome.zarr" / "0"), mode="r")
    blosc = level.metadata.to_dict()["codecs"][-1]["configuration"]
    assert (blosc["cname"], blosc["clevel"]) == ("lz4", 3)
    assert np.array_equal(level[...], pixels)

"""Quality control of a plate, as a user runs it: a plate with planted defects (a blurred field, a
saturated well, a dead channel) and controls of known separation; each defect is found, nothing clean is
flagged, Z' is the formula's on the wells' readouts, and the report is kept, served and drawn."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
import tifffile

from fairimage.model.plates.layout import row_name
from fairimage.settings import load_settings
from tests import plate_samples, samples
from tests.conftest import LiveServer, run_cli

SHAPE = (128, 128)
BLURRED, SATURATED, DEAD = "A5", "A8", "B3"  # the planted defects; DEAD's second channel is all zero
POSITIVE, NEGATIVE = ("A12", "B12"), ("A1", "B1")


def _plate(folder: Path) -> dict[str, list[np.ndarray]]:
    """Two rows x 12 columns, one field, two channels (nuclei; the readout, dimmer in positive controls)."""
    rng = np.random.default_rng(5)
    folder.mkdir(parents=True)
    planes = {}
    for row in range(2):
        for column in range(12):
            well = f"{row_name(row)}{column + 1}"
            nuclei = plate_samples.blobs(rng, SHAPE, 40, 2, 2000)
            readout_peak = 300 if well in POSITIVE else 1500
            readout = plate_samples.blobs(rng, SHAPE, 40, 3, readout_peak)
            if well == BLURRED:
                nuclei = plate_samples.box_blur(nuclei, 7)
            if well == SATURATED:
                nuclei[10:40, 10:40] = 65535  # ~10% of the field clipped at the detector's ceiling
            if well == DEAD:
                readout = np.zeros(SHAPE, np.uint16)
            for channel, plane in enumerate((nuclei, readout), start=1):
                tifffile.imwrite(folder / f"QC_{row_name(row)}{column + 1:02d}_s1_w{channel}.tif", plane)
            planes[well] = [nuclei, readout]
    return planes


def test_planted_defects_are_found_and_nothing_clean_is_flagged(tmp_path: Path) -> None:
    planes = _plate(tmp_path / "QC")
    platemap = tmp_path / "map.csv"
    rows = [f"{w},DMSO,,,negative" for w in NEGATIVE] + [f"{w},staurosporine,1,uM,positive" for w in POSITIVE]
    platemap.write_text("well,compound,concentration,unit,control\n" + "\n".join(rows) + "\n")
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    ingested = run_cli("plate", "ingest", tmp_path / "QC", "--platemap", platemap, "--repo", repo, "--json")
    (outcome,) = json.loads(ingested.stdout)
    plate_id = outcome["plate_id"]

    result = run_cli("qc", plate_id, "--readout-channel", "1", "--csv", tmp_path / "qc.csv", "--repo", repo)
    assert result.returncode == 0, result.stderr
    report = json.loads(run_cli("qc", plate_id, "--readout-channel", "1", "--json", "--repo", repo).stdout)

    flagged = {(f["well"], f["channel"]): set(f["flags"]) for f in report["fields"] if f["flags"]}
    assert "blurred" in flagged[(BLURRED, "w1")]
    assert "saturated" in flagged[(SATURATED, "w1")]
    assert "empty" in flagged[(DEAD, "w2")]
    planted = {BLURRED, SATURATED, DEAD, *POSITIVE}  # positive controls are dim (dark) by design
    assert {well for well, _ in flagged} <= planted, flagged
    # Outliers (|robust z| > 3.5 among a channel's fields) are a list to look at, tested once per field,
    # channel and measure: on clean wells they stay rare (here 132 tests).
    clean = [f for f in report["fields"] if f["well"] not in planted]
    assert sum(len(f["outliers"]) for f in clean) <= 2, [
        (f["well"], f["outliers"]) for f in clean if f["outliers"]
    ]

    # Z' is Zhang's formula on the wells' readouts (the readout channel's mean, one field per well).
    readout = {well: float(pair[1].mean()) for well, pair in planes.items()}
    positive = [readout[w] for w in POSITIVE]
    negative = [readout[w] for w in NEGATIVE]
    expected = 1 - 3 * (np.std(positive, ddof=1) + np.std(negative, ddof=1)) / abs(
        np.mean(positive) - np.mean(negative)
    )
    assert report["statistics"]["z_prime"] == pytest.approx(expected, rel=1e-6)

    table = list(csv.DictReader(io.StringIO((tmp_path / "qc.csv").read_text())))
    assert len(table) == 24 * 2 and {"power_log_log_slope", "percent_saturated", "flags"} <= set(table[0])

    with LiveServer(load_settings(repo)) as server:
        served = httpx.get(f"{server.url}/api/plates/{plate_id}/qc").json()
        assert served["id"] == report["id"] and served["statistics"]["z_prime"] == pytest.approx(expected)
        below = httpx.get(f"{server.url}/api/qc/plates", params={"z_prime_below": expected + 0.01}).json()
        above = httpx.get(f"{server.url}/api/qc/plates", params={"z_prime_below": expected - 0.01}).json()
        assert [entry["plate"] for entry in below["plates"]] == [plate_id] and above["plates"] == []
        page = httpx.get(f"{server.url}/plates/{plate_id}/qc")
        assert page.status_code == 200
        assert page.text.count("data:image/png;base64,") >= 2 * 3 + 2  # heatmaps, controls, focus
        assert f"{BLURRED} field 1 · w1: blurred" in page.text
        with pytest.MonkeyPatch.context() as patch:  # the report's plots are drawn once, then kept
            patch.setattr("fairimage.web.charts.plate_heatmaps", _never_drawn)
            again = httpx.get(f"{server.url}/plates/{plate_id}/qc")
        assert again.status_code == 200 and again.text.count("base64,") == page.text.count("base64,")
        assert httpx.get(f"{server.url}/api/plates/{plate_id}/qc.csv").text.startswith("image,well,field")
        parquet = httpx.get(f"{server.url}/api/plates/{plate_id}/qc.parquet")
        measures = pq.read_table(io.BytesIO(parquet.content))
        assert measures.num_rows == 24 * 2 and measures.schema.field("power_log_log_slope").type == "double"
        by_well = measures.to_pydict()
        assert set(by_well["flags"][by_well["well"].index(BLURRED)].split(";")) >= {"blurred"}
        blurred = httpx.get(f"{server.url}/api/qc/images", params={"flag": "blurred"}).json()["images"]
        assert {hit["plate"] for hit in blurred} == {plate_id}
        # the saturated well's clipped square changes its spectrum too: flagged wells are planted ones
        assert BLURRED in {hit["well"] for hit in blurred} <= {BLURRED, SATURATED, DEAD}
        saturated = httpx.get(f"{server.url}/api/qc/images", params={"flag": "saturated"}).json()["images"]
        assert {hit["well"] for hit in saturated} == {SATURATED}
        anonymous_run = httpx.post(f"{server.url}/api/plates/{plate_id}/qc", json={})
        assert anonymous_run.status_code in (401, 403)  # only those who govern the study run QC


def test_dataset_qc_names_odd_images_duplicates_and_what_the_metadata_lacks(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    pixels = plate_samples.field_pixels(0, 0, 0, 0, (40, 50))
    inputs = [
        samples.ome_tiff(tmp_path / "a.ome.tif", pixels, axes="YX", PhysicalSizeX=0.5, PhysicalSizeY=0.5),
        samples.ome_tiff(
            tmp_path / "a-again.ome.tif", pixels, axes="YX", PhysicalSizeX=0.5, PhysicalSizeY=0.5
        ),
        samples.ome_tiff(tmp_path / "b.ome.tif", pixels + 1, axes="YX", PhysicalSizeX=0.5, PhysicalSizeY=0.5),
        samples.ome_tiff(tmp_path / "c.ome.tif", pixels + 2, axes="YX", PhysicalSizeX=0.5, PhysicalSizeY=0.5),
        samples.ome_tiff(
            tmp_path / "odd-size.ome.tif", pixels[:30], axes="YX", PhysicalSizeX=0.5, PhysicalSizeY=0.5
        ),
        samples.ome_tiff(
            tmp_path / "other-lens.ome.tif", pixels + 3, axes="YX", PhysicalSizeX=0.25, PhysicalSizeY=0.25
        ),
    ]
    run_cli("ingest", *inputs, "--study", "Mixed", "--repo", repo, check=True)
    images = {
        i["name"]: i["id"] for i in json.loads(run_cli("images", "--repo", repo, "--json", check=True).stdout)
    }
    report = json.loads(run_cli("qc", "Mixed", "--repo", repo, "--json", check=True).stdout)
    by_rule = {}
    for finding in report["findings"]:
        by_rule.setdefault(finding["rule"], []).append(finding)
    (duplicate,) = by_rule["duplicate"]
    assert {duplicate["subject"], duplicate["message"].split(" (")[0].removeprefix("same pixels as ")} == {
        images["a.ome.tif"],
        images["a-again.ome.tif"],
    }
    assert [f["subject"] for f in by_rule["dimensions"]] == [images["odd-size.ome.tif"]]
    assert [f["subject"] for f in by_rule["pixel_size"]] == [images["other-lens.ome.tif"]]
    assert set(by_rule) == {"duplicate", "dimensions", "pixel_size"}  # nothing else is flagged
    assert report["images"] == 6 and 0 <= report["fair_score"]["score"] <= 100
    words = run_cli("qc", "Mixed", "--repo", repo, check=True).stdout
    assert f"{images['odd-size.ome.tif']}: " in words and "FAIR score" in words


def test_qc_over_http_is_a_background_job_whose_progress_and_result_its_owner_follows(
    tmp_path: Path,
) -> None:
    folder = plate_samples.imagexpress(tmp_path / "Jobs", [(0, 0), (0, 1), (1, 0)], fields=2, channels=2)
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    (outcome,) = json.loads(run_cli("plate", "ingest", folder, "--repo", repo, "--json", check=True).stdout)
    plate_id = outcome["plate_id"]
    run_cli("user", "add", "ada", "--role", "admin", "--repo", repo, check=True)
    token = run_cli("token", "create", "ada", "--scope", "write", "--repo", repo, check=True).stdout.strip()
    owner = {"Authorization": f"Bearer {token}"}
    with LiveServer(load_settings(repo)) as server:
        bad = httpx.post(f"{server.url}/api/plates/{plate_id}/qc", json={"readout_channel": 5}, headers=owner)
        assert bad.status_code == 400 and "has channels 0 to 1" in bad.text  # refused before any job starts
        started = httpx.post(
            f"{server.url}/api/plates/{plate_id}/qc", json={"readout_channel": 1}, headers=owner
        )
        assert started.status_code == 202, started.text
        job = started.json()
        assert started.headers["location"] == job["url"] == f"/api/jobs/{job['id']}"
        assert job["status"] in ("queued", "running") and job["kind"] == "plate.qc"
        deadline = time.monotonic() + 60
        while job["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
            job = httpx.get(f"{server.url}{job['url']}", headers=owner).json()
        assert job["status"] == "done", job
        assert (job["done"], job["total"]) == (6, 6)  # fields measured of fields
        report = httpx.get(f"{server.url}{job['result']['url']}").json()
        assert report["id"] == job["result"]["report"] and len(report["fields"]) == 6 * 2
        assert httpx.get(f"{server.url}{job['url']}").status_code == 404  # not the anonymous caller's job


def test_a_study_sets_its_own_thresholds_and_its_plates_are_judged_by_them(tmp_path: Path) -> None:
    _plate(tmp_path / "QC")
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    ingested = run_cli("plate", "ingest", tmp_path / "QC", "--study", "Screen", "--repo", repo, "--json")
    plate_id = json.loads(ingested.stdout)[0]["plate_id"]
    run_cli("user", "add", "ada", "--role", "viewer", "--repo", repo, check=True)
    run_cli("study", "owner", "Screen", "ada", "--repo", repo, check=True)
    token = run_cli("token", "create", "ada", "--scope", "write", "--repo", repo, check=True).stdout.strip()
    owner = {"Authorization": f"Bearer {token}"}
    with LiveServer(load_settings(repo)) as server:
        address = f"{server.url}/api/studies/Screen/qc-thresholds"
        assert httpx.get(address).json()["changed"] == {}
        assert httpx.put(address, json={"saturated_percent": 20}).status_code in (401, 403)
        unknown = httpx.put(address, json={"saturation": 20}, headers=owner)
        assert unknown.status_code == 422 and "saturation" in unknown.text
        outside = httpx.put(address, json={"dark_fraction": 3}, headers=owner)
        assert outside.status_code == 400 and "dark_fraction: 3 is outside 0 to 1" in outside.text
        # ~10% of the planted well is clipped: a screen that tolerates 20% does not call it saturated.
        changed = httpx.put(address, json={"saturated_percent": 20}, headers=owner)
        assert changed.status_code == 200 and changed.json()["changed"] == {"saturated_percent": 20.0}
    report = json.loads(run_cli("qc", plate_id, "--json", "--repo", repo, check=True).stdout)
    assert report["thresholds"]["saturated_percent"] == 20.0
    flagged = {(f["well"], flag) for f in report["fields"] for flag in f["flags"]}
    assert (BLURRED, "blurred") in flagged and not any(flag == "saturated" for _, flag in flagged)
    shown = run_cli("study", "qc-thresholds", "Screen", "--repo", repo, check=True).stdout
    assert "saturated_percent" in shown and "set by the study" in shown
    run_cli("study", "qc-thresholds", "Screen", "--reset", "--repo", repo, check=True)
    again = json.loads(run_cli("qc", plate_id, "--json", "--repo", repo, check=True).stdout)
    assert any("saturated" in f["flags"] for f in again["fields"] if f["well"] == SATURATED)


def _never_drawn(*_: object) -> list[tuple[str, str]]:
    raise AssertionError("a kept report's plots were drawn again")

"""Datasets for machine learning as an AI researcher makes them: a plate's fields split by well and
stratified by control type, the same seed giving the same split, a check that proves no group and no pixels
are on two sides (and catches them when they are), AI-generated labels left out unless asked, restricted
studies only for those allowed, bad keys one line."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest
import tifffile
from PIL import Image

from fairimage.model.datasets.splits import CheckedItem, Item, assign_splits, check_splits, parse_split
from fairimage.model.errors import InvalidInputError, NotFoundError
from fairimage.model.governance.policy import Role, Scope, operator
from fairimage.model.labels import MadeBy
from fairimage.services.curation import annotations
from fairimage.services.datasets.datasets import (
    Dataset,
    DatasetRequest,
    check_dataset,
    create_dataset,
    get_dataset,
)
from fairimage.services.governance import accounts, policies
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.labels.labels import add_label
from fairimage.services.repository import Repository
from tests import plate_samples, samples
from tests.conftest import LiveServer, run_cli
from tests.test_exports import validate

ADMIN = operator("test")
WELLS = [(row, column) for row in range(2) for column in range(6)]  # A1..B6


def _screen(tmp_path: Path) -> tuple[Path, Path]:
    folder = plate_samples.imagexpress(tmp_path / "Screen", WELLS, fields=3, channels=1)
    platemap = tmp_path / "map.csv"
    lines = [f"A{c + 1},DMSO,negative" for c in range(3)] + [f"B{c + 1},taxol,positive" for c in range(3)]
    platemap.write_text("well,compound,control\n" + "\n".join(lines) + "\n")
    return folder, platemap


def test_a_plates_fields_split_by_well_never_leak_and_the_seed_repeats_the_split(tmp_path: Path) -> None:
    folder, platemap = _screen(tmp_path)
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    run_cli(
        "plate", "ingest", folder, "--platemap", platemap, "--study", "Screen", "--repo", repo, check=True
    )
    made = run_cli(
        "dataset", "create", "mitosis", "--from", "Screen", "--split", "50/25/25", "--group-by", "well",
        "--stratify", "control", "--seed", "7", "--repo", repo, "--json", check=True,
    )  # fmt: skip
    first = json.loads(made.stdout)
    assert (first["version"], sum(first["counts"].values())) == (1, 36)
    shown = json.loads(run_cli("dataset", "show", "mitosis", "--repo", repo, "--json", check=True).stdout)
    by_well: dict[str, set[str]] = {}
    for item in shown["items"]:
        by_well.setdefault(item["group"], set()).add(item["split"])
    assert len(by_well) == 12 and all(len(splits) == 1 for splits in by_well.values())  # fields stay together
    per_split = Counter((item["split"], item["stratum"]) for item in shown["items"])
    sizes = Counter(item["stratum"] for item in shown["items"])
    assert sizes == {"negative": 9, "positive": 9, "(none)": 18}  # 3, 3 and 6 wells of 3 fields
    for stratum, size in sizes.items():  # each split within a well (3 fields) of its share of each stratum
        for split, share in (("train", 0.5), ("validation", 0.25), ("test", 0.25)):
            assert per_split[(split, stratum)] > 0 and abs(per_split[(split, stratum)] - size * share) <= 3

    checked = run_cli("dataset", "check", "mitosis", "--repo", repo, "--json")
    report = json.loads(checked.stdout)
    assert checked.returncode == 0 and report["ok"] and report["leaks"] == [] and report["duplicates"] == []
    again = run_cli(
        "dataset", "create", "mitosis", "--from", "Screen", "--split", "50/25/25", "--group-by", "well",
        "--stratify", "control", "--seed", "7", "--repo", repo, "--json", check=True,
    )  # fmt: skip
    assert json.loads(again.stdout)["version"] == 2
    second = json.loads(
        run_cli("dataset", "show", "mitosis", "--version", "2", "--repo", repo, "--json").stdout
    )
    assert [(i["image_id"], i["split"]) for i in second["items"]] == [
        (i["image_id"], i["split"]) for i in shown["items"]
    ]
    listed = run_cli("dataset", "list", "--repo", repo, check=True).stdout
    assert "mitosis" in listed and "well" in listed

    unknown = run_cli("dataset", "create", "x", "--from", "Screen", "--group-by", "donor", "--repo", repo)
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr
    assert "--group-by donor: use one of image, study, plate, well, patient" in " ".join(
        unknown.stderr.split()
    )
    bad = run_cli("dataset", "create", "x", "--from", "Screen", "--split", "70/20/20", "--repo", repo)
    assert "--split 70/20/20: the parts add up to 110; they must add up to 100" in bad.stderr


def test_the_check_finds_the_same_pixels_on_two_sides_and_generated_labels_stay_out(
    repository: Repository, tmp_path: Path
) -> None:
    pixels = [samples.ramp((40, 30), seed=n) for n in range(8)]
    paths = [
        samples.png(tmp_path / f"cell-{n}.png", (p % 256).astype(np.uint8)) for n, p in enumerate(pixels)
    ]
    twin = tmp_path / "cell-0-again.png"  # the same pixels in another file (saved with another compression)
    Image.fromarray((pixels[0] % 256).astype(np.uint8)).save(twin, compress_level=1)
    images = [o.images[0] for o in ingest_paths(repository, [*paths, twin], study="Cells")]
    assert len(set(images)) == 9
    for image_id, donor in zip(images, "aabbccdda", strict=True):
        annotations.annotate(repository, ADMIN, image_id, annotations.Change(pairs=(("donor", donor),)))
    mask = tmp_path / "mask.tif"
    tifffile.imwrite(mask, np.ones((40, 30), np.uint8))
    for image_id in images[:4]:
        add_label(repository, ADMIN, image_id, mask, "cells", MadeBy("person", "Ada"))
    add_label(repository, ADMIN, images[4], mask, "cells", MadeBy("model", "cellpose@3"))

    by_donor = create_dataset(
        repository, ADMIN, DatasetRequest("donors", ("Cells",), "50/50", "annotation:donor", seed=1)
    )
    assert _split_of(by_donor, images[0]) == _split_of(by_donor, images[8])  # donor a: one side
    assert check_dataset(repository, ADMIN, "donors")[1].ok
    leaking = next(
        dataset
        for seed in range(50)
        if _split_of(
            dataset := create_dataset(
                repository, ADMIN, DatasetRequest("by-image", ("Cells",), "50/50", seed=seed)
            ),
            images[0],
        )
        != _split_of(dataset, images[8])
    )
    _, found = check_dataset(repository, ADMIN, "by-image", leaking.version)
    assert not found.ok and found.leaks == [] and len(found.duplicates) == 1
    assert images[0] in found.duplicates[0] and images[8] in found.duplicates[0]
    checked = run_cli(
        "dataset", "check", "by-image", "--version", str(leaking.version), "--repo", repository.settings.repo
    )
    assert checked.returncode == 1 and "the same pixels" in checked.stdout

    labelled = create_dataset(
        repository, ADMIN, DatasetRequest("labelled", ("Cells",), "50/50", label="cells")
    )
    assert len(labelled.items) == 4 and labelled.excluded == {"without the label": 4, "AI-generated": 1}
    assert all(item.label_id for item in labelled.items)
    generated = create_dataset(
        repository,
        ADMIN,
        DatasetRequest("labelled", ("Cells",), "50/50", label="cells", include_generated=True),
    )
    assert len(generated.items) == 5 and sum(item.ai_generated for item in generated.items) == 1

    annotations_missing = DatasetRequest("x", ("Cells",), group_by="annotation:patient")
    with pytest.raises(
        InvalidInputError, match=f"image {images[0]} has no annotation 'patient'; annotate it"
    ):
        create_dataset(repository, ADMIN, annotations_missing)


def _split_of(dataset: Dataset, image_id: str) -> str:
    return next(item.split for item in dataset.items if item.image_id == image_id)


def test_a_dataset_over_a_restricted_study_is_only_for_those_allowed(
    repository: Repository, tmp_path: Path
) -> None:
    path = samples.png(tmp_path / "biopsy.png", np.full((20, 20), 7, np.uint8))
    ingest_paths(repository, [path], study="Biopsies")
    policies.set_policy(repository, ADMIN, "Biopsies", "restricted")
    create_dataset(repository, ADMIN, DatasetRequest("biopsies", ("Biopsies",), "100/0/0"))
    accounts.add_user(repository, ADMIN, "eve", Role.VIEWER)
    eve = accounts.principal_for_token(
        repository, accounts.create_token(repository, ADMIN, "eve", Scope.WRITE).secret
    )
    with pytest.raises(NotFoundError, match="study 'Biopsies' not found"):
        create_dataset(repository, eve, DatasetRequest("mine", ("Biopsies",)))
    with pytest.raises(NotFoundError, match="dataset 'biopsies' not found"):
        get_dataset(repository, eve, "biopsies")


def test_splits_keep_groups_whole_and_strata_balanced() -> None:
    items = [Item(f"i{n}", f"g{n // 3}", "pos" if n % 2 else "neg") for n in range(60)]
    proportions = parse_split("70/15/15")
    splits = assign_splits(items, proportions, seed=3)
    assert splits == assign_splits(list(reversed(items)), proportions, seed=3)  # order does not matter
    assert splits != assign_splits(items, proportions, seed=4)
    assert all(len({splits[i.key] for i in items if i.group == g}) == 1 for g in {i.group for i in items})
    counts = Counter(splits.values())
    assert abs(counts["train"] - 42) <= 3 and abs(counts["test"] - 9) <= 3
    report = check_splits([CheckedItem(i.key, splits[i.key], i.group, i.stratum, None) for i in items])
    assert report.ok
    moved = [CheckedItem("i0", "test" if splits["i0"] != "test" else "train", "g0", "neg", "same")]
    moved += [
        CheckedItem(i.key, splits[i.key], i.group, i.stratum, "same" if i.key == "i1" else None)
        for i in items[1:]
    ]
    leaky = check_splits(moved)
    assert leaky.leaks == [f"group 'g0' is in {', '.join(sorted({moved[0].split, splits['i1']}))}"]
    assert len(leaky.duplicates) == 1


def test_an_exported_dataset_loads_in_mlcroissant_and_its_card_tells_its_composition(tmp_path: Path) -> None:
    import mlcroissant as mlc

    folder, platemap = _screen(tmp_path)
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    run_cli(
        "plate", "ingest", folder, "--platemap", platemap, "--study", "Screen", "--repo", repo, check=True
    )
    run_cli("study", "data-use", "Screen", "HMB", "--repo", repo)
    run_cli("dataset", "create", "mitosis", "--from", "Screen", "--split", "80/20", "--group-by", "plate",
            "--repo", repo, check=True)  # fmt: skip
    made = json.loads(run_cli("dataset", "show", "mitosis", "--repo", repo, "--json", check=True).stdout)
    run_cli("dataset", "describe", "mitosis", "--intended-uses", "Training mitosis detectors",
            "--biases", "One cell line (HeLa) only", "--repo", repo, check=True)  # fmt: skip
    nothing = run_cli("dataset", "describe", "mitosis", "--repo", repo)
    assert nothing.returncode == 2 and "say what to write: --description" in nothing.stderr
    out = tmp_path / "export"
    run_cli("dataset", "export", "mitosis", "--to", out, "--repo", repo, check=True)
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "card.json", "croissant.json", "items.csv", "ro-crate-metadata.json"
    ]  # fmt: skip
    again = run_cli("dataset", "export", "mitosis", "--to", out, "--repo", repo)
    assert again.returncode != 0 and f"{out}: already exists; export into a new folder" in again.stderr

    dataset = mlc.Dataset(jsonld=str(out / "croissant.json"))  # validates: raises on an invalid description
    assert dataset.metadata.name == "mitosis"
    records = list(dataset.records(record_set="items"))
    assert len(records) == 36
    by_image = {r["items/image_id"].decode(): r["items/split"].decode() for r in records}
    assert by_image == {item["image_id"]: item["split"] for item in made["items"]}
    assert set(by_image.values()) == {"train"}  # one plate, grouped by plate: all on one side
    urls = {r["items/ome_zarr_url"].decode() for r in records}
    assert all(url.startswith("http") and url.endswith(".ome.zarr") for url in urls)

    card = (out / "README.md").read_text()
    assert "# Dataset mitosis, version 1" in card and "36 images: train 36, test 0." in card
    assert "grouped by plate (no group is in two splits)" in card
    assert "## Intended uses\n\nTraining mitosis detectors" in card and "One cell line (HeLa) only" in card
    assert "its card last edited by operator" in card
    description = json.loads((out / "croissant.json").read_text())
    assert description["rai:dataUseCases"] == "Training mitosis detectors"
    assert description["rai:dataBiases"].startswith("One cell line (HeLa) only Per split")
    assert json.loads((out / "card.json").read_text())["items"] == 36  # the items never change
    passed, issues = validate(out)  # roc-validator, RO-Crate 1.3, required level
    assert passed, issues
    crate = {
        entity["@id"]: entity for entity in json.loads((out / "ro-crate-metadata.json").read_text())["@graph"]
    }
    parts = {part["@id"] for part in crate["./"]["hasPart"]}
    assert {"items.csv", "croissant.json", "README.md", "card.json"} <= parts
    assert sum(part.endswith(".ome.zarr") for part in parts) == 36
    assert crate["./"]["identifier"].endswith(f"/pid/{made['id']}")
    assert description["conformsTo"] == "http://mlcommons.org/croissant/1.1"
    assert {"rai:dataCollection", "rai:dataBiases", "rai:personalSensitiveInformation"} <= set(description)


def test_datasets_over_http_are_for_readers_of_every_study_and_serve_their_croissant(
    repository: Repository, tmp_path: Path
) -> None:
    import mlcroissant as mlc

    for n, study in enumerate(("Open", "Closed")):
        path = samples.png(tmp_path / f"{study}.png", np.full((20, 20), n + 1, np.uint8))
        ingest_paths(repository, [path], study=study)
    policies.set_policy(repository, ADMIN, "Closed", "restricted")
    create_dataset(repository, ADMIN, DatasetRequest("open", ("Open",), "100/0/0"))
    create_dataset(repository, ADMIN, DatasetRequest("both", ("Open", "Closed"), "50/50"))
    with LiveServer(repository.settings) as server:
        listed = httpx.get(f"{server.url}/api/datasets").json()["items"]
        assert [d["name"] for d in listed] == ["open"]  # "both" draws on a study the anonymous may not read
        assert httpx.get(f"{server.url}/api/datasets/both").status_code == 404
        assert httpx.get(f"{server.url}/api/datasets/both/1/croissant.json").status_code == 404
        version = httpx.get(f"{server.url}/api/datasets/open/1").json()
        assert [item["split"] for item in version["items"]] == ["train"]
        check = httpx.get(f"{server.url}/api/datasets/open/1/check").json()
        assert check["ok"] and check["balance"] == {"train": {"": 1}}
        url = f"{server.url}/api/datasets/open/1/croissant.json"
        loaded = mlc.Dataset(jsonld=url)  # its items.csv resolves beside it, over HTTP
        records = list(loaded.records(record_set="items"))
        assert [r["items/image_id"].decode() for r in records] == [version["items"][0]["image_id"]]
        card = httpx.get(f"{server.url}/api/datasets/open/1/README.md")
        assert card.headers["content-type"].startswith("text/markdown") and "# Dataset open" in card.text
        assert httpx.get(f"{server.url}/api/datasets/open/1/secrets.txt").status_code == 422
        card = f"{server.url}/api/datasets/open/1/card"
        for who, role in (("eve", Role.VIEWER), ("sam", Role.STEWARD)):
            accounts.add_user(repository, ADMIN, who, role)
        eve, sam = (
            {"Authorization": f"Bearer {accounts.create_token(repository, ADMIN, who, Scope.WRITE).secret}"}
            for who in ("eve", "sam")
        )
        refused = httpx.patch(card, json={"biases": "none"}, headers=eve)
        assert refused.status_code == 403 and "only its maker" in refused.json()["error"]["message"]
        assert httpx.patch(card, json={"bias": "none"}, headers=sam).status_code == 422  # a typo is refused
        written = httpx.patch(card, json={"limitations": "Two images only"}, headers=sam)
        assert written.status_code == 200 and written.json()["notes"]["limitations"] == "Two images only"
        assert "Two images only" in httpx.get(f"{server.url}/api/datasets/open/1/README.md").text


def test_an_export_with_pixels_gives_every_plane_and_label_through_mlcroissant(tmp_path: Path) -> None:
    """`--with-pixels`: mlcroissant's records are the stored planes (16-bit, every channel and z) and the
    labels' planes, losslessly; (the next test: an image a PNG cannot hold is one line naming it)."""
    import mlcroissant as mlc

    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    stacks = {f"cells-{n}.ome.tif": samples.ramp((2, 3, 40, 30), seed=n) for n in range(2)}  # c, z, y, x
    paths = [samples.ome_tiff(tmp_path / file, data) for file, data in stacks.items()]
    ingested = json.loads(
        run_cli("ingest", *paths, "--study", "Cells", "--repo", repo, "--json", check=True).stdout
    )
    pixels = {outcome["images"][0]: stacks[Path(outcome["path"]).name] for outcome in ingested}
    masks = {}
    for n, image_id in enumerate(pixels):
        masks[image_id] = np.zeros((3, 40, 30), np.uint16)
        masks[image_id][:, 5:20, 5 + n : 15 + n] = 300 + n  # ids above 255: a 16-bit PNG
        mask = samples.ome_tiff(tmp_path / f"mask-{n}.ome.tif", masks[image_id], axes="ZYX")
        run_cli("label", "add", image_id, mask, "--name", "nuclei", "--annotator", "Ada", "--repo", repo,
                check=True)  # fmt: skip
    run_cli("dataset", "create", "cells", "--from", "Cells", "--split", "50/50", "--label", "nuclei",
            "--repo", repo, check=True)  # fmt: skip
    out = tmp_path / "export"
    exported = run_cli("dataset", "export", "cells", "--to", out, "--with-pixels", "--repo", repo, "--json")
    assert json.loads(exported.stdout)["files"] == [
        "README.md", "card.json", "croissant.json", "items.csv", "labels.parquet", "pixels.parquet",
        "ro-crate-metadata.json",
    ]  # fmt: skip
    crate = json.loads((out / "ro-crate-metadata.json").read_text())["@graph"]
    assert {"pixels.parquet", "labels.parquet"} <= {entity["@id"] for entity in crate}  # parts of the crate

    dataset = mlc.Dataset(jsonld=str(out / "croissant.json"))
    planes = list(dataset.records(record_set="pixels"))
    assert len(planes) == 2 * 3 * 2  # images x planes x channels
    for record in planes:
        image_id = record["pixels/image_id"].decode()
        c, z = record["pixels/c"], record["pixels/z"]
        assert np.array_equal(np.asarray(record["pixels/image"]), pixels[image_id][c, z])
    labels = list(dataset.records(record_set="labels"))
    assert len(labels) == 2 * 3
    for record in labels:
        image_id, z = record["labels/image_id"].decode(), record["labels/z"]
        assert np.array_equal(np.asarray(record["labels/image"]), masks[image_id][z])


def test_an_export_with_pixels_refuses_planes_a_png_cannot_hold(
    repository: Repository, tmp_path: Path
) -> None:
    from fairimage.services.datasets.exports import export_dataset

    path = samples.ome_tiff(
        tmp_path / "float.ome.tif", np.linspace(0, 1, 1200, dtype=np.float32).reshape(1, 1, 40, 30)
    )
    (outcome,) = ingest_paths(repository, [path], study="Floats")
    create_dataset(repository, ADMIN, DatasetRequest("floats", ("Floats",), "50/50"))
    out = tmp_path / "export"
    with pytest.raises(
        InvalidInputError, match=f"image {outcome.images[0]}: its pixels are float32, which a PNG"
    ):
        export_dataset(repository, ADMIN, "floats", None, out, "http://127.0.0.1", pixels=True)
    assert not out.exists() and not list(tmp_path.glob(".export*"))  # nothing half-written

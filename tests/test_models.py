"""Trained models as an AI researcher registers them and as anyone reads their cards: a real bioimage.io
package (made with bioimageio.spec, TorchScript weights) validated and kept whole, a card of our own, the
dataset versions they learnt from by PID, a card that says plainly when the data are not public (and never
names a dataset the reader may not read), JSON-LD in FAIR4ML's terms, a model's output linked to it, and bad
packages refused in one line with nothing kept."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import httpx
import numpy as np
import pytest

from fairimage.model.governance.duo import DataUse
from fairimage.model.governance.policy import operator
from fairimage.services.datasets.datasets import DatasetRequest, create_dataset
from fairimage.services.governance import policies
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.repository import Repository
from tests import samples
from tests.conftest import LiveServer, run_cli

ADMIN = operator("test")


def bioimageio_package(folder: Path, name: str = "Tiny nucleus segmenter") -> Path:
    """A valid bioimage.io model package (format 0.5): a TorchScript sigmoid with its test tensors."""
    import torch
    from bioimageio.spec import save_bioimageio_package_as_folder
    from bioimageio.spec.model import v0_5 as spec

    sources = folder / "sources"
    sources.mkdir(parents=True)
    tensor = np.linspace(-3, 3, 64 * 64, dtype="float32").reshape(1, 1, 64, 64)
    np.save(sources / "input.npy", tensor)
    np.save(sources / "output.npy", 1 / (1 + np.exp(-tensor)))
    with warnings.catch_warnings():  # TorchScript is deprecated in torch, still a bioimage.io weights format
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(torch.nn.Sigmoid()).save(str(sources / "weights.pt"))
    (sources / "README.md").write_text("# A sigmoid\nFor tests.\n")

    def axes(kind: type, channel: str) -> list[object]:
        space = [kind(id=spec.AxisId(axis), size=64) for axis in ("y", "x")]
        return [spec.BatchAxis(), spec.ChannelAxis(channel_names=[spec.Identifier(channel)]), *space]

    description = spec.ModelDescr(
        name=name,
        description="A sigmoid over each pixel, for tests",
        authors=[spec.Author(name="Ada Lovelace", orcid="0000-0002-1825-0097")],
        cite=[spec.CiteEntry(text="fairimage's tests", doi=spec.Doi("10.5281/zenodo.1234"))],
        license=spec.LicenseId("CC-BY-4.0"),
        tags=["segmentation", "nuclei"],
        documentation=spec.FileDescr(source=sources / "README.md"),
        inputs=[
            spec.InputTensorDescr(
                id=spec.TensorId("raw"),
                axes=axes(spec.SpaceInputAxis, "dapi"),
                test_tensor=spec.FileDescr(source=sources / "input.npy"),
            )
        ],
        outputs=[
            spec.OutputTensorDescr(
                id=spec.TensorId("probability"),
                axes=axes(spec.SpaceOutputAxis, "nucleus"),
                test_tensor=spec.FileDescr(source=sources / "output.npy"),
            )
        ],
        weights=spec.WeightsDescr(
            torchscript=spec.TorchscriptWeightsDescr(source=sources / "weights.pt", pytorch_version="2.13")
        ),
    )
    return save_bioimageio_package_as_folder(description, output_path=folder / "package")


def _images(repository: Repository, tmp_path: Path, study: str, count: int = 2) -> None:
    paths = [
        samples.png(tmp_path / f"{study}-{n}.png", np.full((16, 16), n + 1, np.uint8)) for n in range(count)
    ]
    ingest_paths(repository, paths, study=study)


def test_a_bioimageio_package_is_validated_kept_whole_and_its_card_served(
    repository: Repository, tmp_path: Path
) -> None:
    from bioimageio.spec import load_description
    from pyld import jsonld

    _images(repository, tmp_path, "Nuclei")
    create_dataset(repository, ADMIN, DatasetRequest("nuclei", ("Nuclei",), "50/50"))
    package = bioimageio_package(tmp_path)
    repo = repository.settings.repo
    registered = run_cli(
        "model", "register", package, "--trained-on", "nuclei:1", "--metric", "dice=0.91",
        "--intended-use", "Nuclei in widefield images of fixed cells",
        "--limitations", "Never saw live cells",
        "--repo", repo, "--json", check=True,
    )  # fmt: skip
    model = json.loads(registered.stdout)
    assert model["kind"] == "bioimageio" and model["name"] == "Tiny nucleus segmenter"
    assert model["card"]["weights"] == ["torchscript"] and model["card"]["metrics"] == {"dice": 0.91}
    assert model["card"]["inputs"] == ["raw (batch, channel, y, x)"]
    assert [(d["role"], d["name"], d["version"]) for d in model["data"]] == [("trained", "nuclei", 1)]
    assert model["trained_on_public_data"] and model["files"] == ["package.zip", "rdf.yaml"]

    with LiveServer(repository.settings) as server:
        card = httpx.get(f"{server.url}/api/models/{model['id']}").json()
        assert card["card"]["intended_use"] == "Nuclei in widefield images of fixed cells"
        zipped = httpx.get(f"{server.url}/api/models/{model['id']}/files/package.zip")
        assert hashlib.sha256(zipped.content).hexdigest() == model["package_sha256"]
        (tmp_path / "downloaded.zip").write_bytes(zipped.content)
        reloaded = load_description(tmp_path / "downloaded.zip", perform_io_checks=True)
        assert type(reloaded).__name__ == "ModelDescr" and reloaded.name == model["name"]  # whole, valid
        document = httpx.get(f"{server.url}/api/models/{model['id']}/jsonld").json()
        expanded = jsonld.expand(document)[0]
        assert "https://w3id.org/fair4ml#MLModel" in expanded["@type"]
        trained = expanded["https://w3id.org/fair4ml#trainedOn"][0]["@id"]
        assert trained == f"{server.url}/pid/{model['data'][0]['dataset_id']}"
        resolved = httpx.get(
            f"{server.url}/pid/{model['id']}", headers={"Accept": "text/html"}, follow_redirects=True
        )
        assert resolved.status_code == 200 and str(resolved.url).endswith(f"/models/{model['id']}")
        for text in ("Never saw live cells", "dice", "nuclei version 1", "Trained on public data"):
            assert text in resolved.text
        pid = f"{server.url}/pid/{trained.rsplit('/', 1)[1]}"
        dataset = httpx.get(pid, headers={"Accept": "application/json"}, follow_redirects=True)
        assert dataset.json()["name"] == "nuclei"
        listing = httpx.get(f"{server.url}/models").text
        assert f"/models/{model['id']}" in listing
        assert httpx.get(f"{server.url}/api/models/model-nope").status_code == 404


def test_a_model_trained_on_restricted_data_says_so_and_never_names_the_dataset(
    repository: Repository, tmp_path: Path
) -> None:
    _images(repository, tmp_path, "Biopsies")
    policies.set_policy(repository, ADMIN, "Biopsies", "restricted")
    policies.set_data_use(repository, ADMIN, "Biopsies", DataUse(permission="DUO:0000006"))
    create_dataset(repository, ADMIN, DatasetRequest("biopsy-tumours", ("Biopsies",), "100/0/0"))
    card = tmp_path / "card.yaml"
    card.write_text(
        "name: Tumour grader\nversion: 1.0\nauthors: [Grace Hopper]\nlicense: MIT\n"
        "task: classification of tumour grade\nlimitations: one hospital's scanner only\n"
        "training: {code: 'https://example.org/train.py', parameters: {epochs: 20}}\n"
        "trained_on: ['biopsy-tumours:1']\n"
    )
    made = run_cli("model", "register", card, "--repo", repository.settings.repo, "--json", check=True)
    model = json.loads(made.stdout)
    assert model["kind"] == "card" and not model["trained_on_public_data"]
    with LiveServer(repository.settings) as server:
        seen = httpx.get(f"{server.url}/api/models/{model['id']}").json()  # anonymous
        assert seen["data"][0]["name"] is None and not seen["data"][0]["public"]
        assert seen["training_data"] == (
            "Trained on data that is not public: Biopsies: restricted; consent DUO:0000006."
        )
        page = httpx.get(f"{server.url}/models/{model['id']}").text
        assert "a dataset you may not read" in page and "DUO:0000006" in page
        assert "biopsy-tumours" not in page and "biopsy-tumours" not in json.dumps(seen)
        document = httpx.get(f"{server.url}/api/models/{model['id']}/jsonld").text
        assert "biopsy-tumours" not in document and "not public" in document
        assert httpx.get(f"{server.url}/pid/{seen['data'][0]['dataset_id']}").status_code == 404
    shown = run_cli("model", "show", "Tumour grader@1.0", "--repo", repository.settings.repo, check=True)
    assert "trained on biopsy-tumours:1" in shown.stdout  # the operator may read it


def test_a_models_output_is_linked_to_its_card(repository: Repository, tmp_path: Path) -> None:
    from pyld import jsonld

    card = tmp_path / "card.json"
    card.write_text(json.dumps({"name": "Denoiser", "version": "3", "task": "denoising"}))
    repo = repository.settings.repo
    model = json.loads(run_cli("model", "register", card, "--repo", repo, "--json", check=True).stdout)
    noisy = samples.png(tmp_path / "noisy.png", np.arange(256, dtype=np.uint8).reshape(16, 16))
    (source,) = json.loads(run_cli("ingest", noisy, "--repo", repo, "--json", check=True).stdout)
    picture = samples.png(tmp_path / "denoised.png", np.full((16, 16), 9, np.uint8))
    run_cli("ingest", picture, "--generated-by", "Denoiser@3", "--generated-from", source["images"][0],
            "--generated-with", "sigma=1.5", "--repo", repo, check=True)  # fmt: skip
    with LiveServer(repository.settings) as server:
        (image,) = [i for i in httpx.get(f"{server.url}/api/images").json()["items"] if i["ai_generated"]]
        assert image["generated"]["model"] == model["id"]
        page = httpx.get(f"{server.url}/images/{image['id']}").text
        assert f'href="/models/{model["id"]}"' in page
        assert "The training data are not given" in httpx.get(f"{server.url}/models/{model['id']}").text
        made = httpx.get(f"{server.url}/api/images/{image['id']}/provenance").json()
    graph = {node["@id"]: node for node in jsonld.expand(made)}
    prov = "http://www.w3.org/ns/prov#"
    agent = f"{server.url}/pid/{model['id']}"  # the model, by its PID
    assert prov + "SoftwareAgent" in graph[agent]["@type"]
    (inference,) = [n for n in graph.values() if n.get(prov + "wasAssociatedWith") == [{"@id": agent}]]
    assert inference[prov + "used"] == [{"@id": f"{server.url}/pid/{source['images'][0]}"}]
    (ran_with,) = inference["https://schema.org/additionalProperty"]  # what the model ran with
    assert ran_with["https://schema.org/name"] == [{"@value": "sigma"}]
    assert ran_with["https://schema.org/value"] == [{"@value": "1.5"}]
    attributed = graph[f"{server.url}/pid/{image['id']}"][prov + "wasAttributedTo"]
    assert {"@id": agent} in attributed


@pytest.mark.parametrize("damage", ["weights", "licence", "card field", "unknown dataset", "twice"])
def test_a_bad_model_is_one_line_and_nothing_is_kept(
    repository: Repository, tmp_path: Path, damage: str
) -> None:
    repo = repository.settings.repo
    package = bioimageio_package(tmp_path) if damage in ("weights", "licence") else None
    source: Path
    if package is not None:
        rdf = package / "rdf.yaml"
        if damage == "weights":
            (package / "weights.pt").write_bytes(b"not the weights")
        else:
            rdf.write_text(rdf.read_text().replace("license: CC-BY-4.0", "license: NOT-A-LICENCE"))
        source = rdf
    else:
        source = tmp_path / "card.yaml"
        source.write_text("name: Grader\nepochs: 3\n" if damage == "card field" else "name: Grader\n")
    if damage == "twice":
        run_cli("model", "register", source, "--repo", repo, check=True)
    extra = ["--trained-on", "nothing:4"] if damage == "unknown dataset" else []
    refused = run_cli("model", "register", source, *extra, "--repo", repo)
    expected = {
        "weights": "SHA256 mismatch",
        "licence": "license: not one of the values the bioimage.io spec allows",
        "card field": "epochs: Extra inputs are not permitted; fix the model card",
        "unknown dataset": "--trained-on nothing:4: no dataset version you may read",
        "twice": "model 'Grader' version 1 is already registered",
    }[damage]
    assert refused.returncode != 0 and expected in refused.stderr and refused.stderr.count("\n") == 1
    assert "Traceback" not in refused.stderr
    listed = json.loads(run_cli("model", "list", "--repo", repo, "--json", check=True).stdout)
    assert len(listed) == (1 if damage == "twice" else 0)
    stored = list((repository.settings.repo / "objects" / "models").glob("*"))
    assert len(stored) == len(listed)

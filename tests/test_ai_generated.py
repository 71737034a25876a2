"""AI-generated images marked everywhere, as a curator and a reader meet them: ingested with the model that
made them (and the images it ran on), then shown as such in the API, the image page and search results, a
search facet to keep or leave them out, schema.org JSON-LD and RO-Crate, and datasets that leave them out
unless asked; the mark stays through later metadata edits, and a wrong declaration is one line."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import httpx

from fairimage.settings import load_settings
from tests import plate_samples, samples
from tests.conftest import LiveServer, run_cli

MODEL = "cellpose@3.0.10"


def test_an_image_a_model_made_is_marked_ai_generated_everywhere(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    raw = samples.ome_tiff(tmp_path / "cells.ome.tif", samples.ramp((1, 1, 64, 48)))
    (acquired,) = json.loads(run_cli("ingest", raw, "--study", "Cells", "--repo", repo, "--json").stdout)
    source = acquired["images"][0]
    denoised = samples.ome_tiff(tmp_path / "cells-denoised.ome.tif", samples.ramp((1, 1, 64, 48), seed=5))

    wrong = run_cli("ingest", denoised, "--study", "Cells", "--generated-by", MODEL,
                    "--generated-from", "img-0000", "--repo", repo)  # fmt: skip
    assert wrong.returncode != 0 and "Traceback" not in wrong.stderr
    assert "--generated-from img-0000: no such image here" in wrong.stderr
    orphan = run_cli("ingest", denoised, "--generated-from", source, "--repo", repo)
    assert "--generated-from: say which model made the files with --generated-by MODEL" in orphan.stderr
    made = run_cli("ingest", denoised, "--study", "Cells", "--generated-by", MODEL,
                   "--generated-from", source, "--repo", repo, "--json", check=True)  # fmt: skip
    generated = json.loads(made.stdout)[0]["images"][0]

    with LiveServer(load_settings(repo)) as server:
        described = httpx.get(f"{server.url}/api/images/{generated}").json()
        assert described["ai_generated"] is True
        # "model": the registered model MODEL names, if any (tests/test_models.py links one)
        # "source": who says so, --generated-by here ("c2pa": the file's own manifest, tests/test_c2pa.py)
        assert described["generated"] == {
            "by": MODEL,
            "from_images": [source],
            "model": None,
            "parameters": {},
            "source": "declared",
            "unverified": None,
        }
        assert httpx.get(f"{server.url}/api/images/{source}").json()["ai_generated"] is False

        def hits(**params: str) -> list[str]:
            return [hit["id"] for hit in httpx.get(f"{server.url}/api/search", params=params).json()["hits"]]

        assert hits(origin="ai-generated") == [generated] and hits(origin="acquired") == [source]
        assert hits(q="cellpose") == [generated]
        facets = httpx.get(f"{server.url}/api/search").json()["facets"]
        assert {count["value"]: count["count"] for count in facets["origin"]} == {
            "acquired": 1,
            "ai-generated": 1,
        }

        page = httpx.get(f"{server.url}/images/{generated}").text
        assert 'id="ai-generated"' in page and f"Made by the model <strong>{MODEL}</strong>" in page
        assert 'id="ai-generated"' not in httpx.get(f"{server.url}/images/{source}").text
        listing = httpx.get(f"{server.url}/search", params={"q": "cells"}).text
        assert listing.count('class="ai-mark"') == 1

        linked = httpx.get(f"{server.url}/api/images/{generated}/jsonld").json()
        assert linked["digitalSourceType"] == "https://schema.org/TrainedAlgorithmicMediaDigitalSource"
        assert linked["creator"] == {"@type": "SoftwareApplication", "name": MODEL}
        assert [based["@id"] for based in linked["isBasedOn"]] == [linked["@id"].replace(generated, source)]
        acquired_ld = httpx.get(f"{server.url}/api/images/{source}/jsonld").json()
        assert acquired_ld["digitalSourceType"] == "https://schema.org/DigitalCaptureDigitalSource"
        embedded = re.search(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
        assert embedded and json.loads(embedded.group(1))["digitalSourceType"].endswith(
            "TrainedAlgorithmicMediaDigitalSource"
        )

        study = described["study"]["id"]
        crate = httpx.get(f"{server.url}/api/studies/{study}/export/ro-crate")
        with zipfile.ZipFile(io.BytesIO(crate.content)) as archive:
            graph = json.loads(archive.read("ro-crate-metadata.json"))["@graph"]
        entities = {entity["@id"]: entity for entity in graph}
        marked = [e for e in graph if e.get("identifier", "").endswith(generated)]
        assert marked[0]["digitalSourceType"] == {
            "@id": "https://schema.org/TrainedAlgorithmicMediaDigitalSource"
        }
        assert entities[marked[0]["creator"]["@id"]] == {
            "@id": f"#model-{MODEL}",
            "@type": "SoftwareApplication",
            "name": MODEL,
        }

    # the mark is the image's, not the study's metadata: a metadata edit leaves it
    rembi = tmp_path / "rembi.yaml"
    rembi.write_text(
        "study:\n  title: Cells, raw and denoised\n  description: a model's output beside its input\n"
    )
    run_cli("metadata", "set", "Cells", rembi, "--repo", repo, check=True)
    shown = json.loads(run_cli("images", "--repo", repo, "--json", check=True).stdout)
    marks = {image["id"]: image["ai_generated"] for image in shown}
    assert marks == {source: False, generated: True}

    left_out = json.loads(run_cli("dataset", "create", "cells", "--from", "Cells", "--split", "50/50",
                                  "--repo", repo, "--json", check=True).stdout)  # fmt: skip
    assert (sum(left_out["counts"].values()), left_out["excluded"]) == (1, {"AI-generated": 1})
    run_cli("dataset", "create", "cells", "--from", "Cells", "--split", "50/50", "--include-generated",
            "--repo", repo, check=True)  # fmt: skip
    kept = json.loads(run_cli("dataset", "show", "cells", "--version", "2", "--repo", repo, "--json").stdout)
    marked_items = {item["image_id"]: item["ai_generated"] for item in kept["items"]}
    assert marked_items == {source: False, generated: True}


def test_a_plate_a_model_made_is_marked_in_every_field(tmp_path: Path) -> None:
    """A synthetic plate (a generative model's fields, say) is marked like an image: every field."""
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    folder = plate_samples.imagexpress(tmp_path / "Synthetic", [(0, 0), (0, 1)], fields=2, channels=1)
    run_cli("plate", "ingest", folder, "--study", "Synthetic", "--generated-by", MODEL, "--repo", repo,
            check=True)  # fmt: skip
    listed = json.loads(run_cli("images", "--repo", repo, "--json", check=True).stdout)
    assert len(listed) == 4 and all(image["ai_generated"] for image in listed)
    assert {image["generated"]["by"] for image in listed} == {MODEL}
    unknown = run_cli("ingest", folder, "--plate", "--generated-by", MODEL, "--generated-from", "img-nope",
                      "--repo", repo)  # fmt: skip
    assert unknown.returncode == 2 and "--generated-from img-nope: no such image here" in unknown.stderr

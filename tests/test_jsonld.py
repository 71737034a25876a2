"""schema.org JSON-LD of studies and images: embedded in the landing pages, served by /pid/{id} for
Accept: application/ld+json, expanded offline by pyld without losing a term, and following the access
rules (a restricted study's Dataset is public; its images are not in it)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pyld import jsonld

from fairimage.model.governance.policy import operator
from fairimage.services.curation import study_metadata
from fairimage.services.governance import policies
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer
from tests.test_curation import hela

ADMIN = operator("test")
SCHEMA = "https://schema.org/"


def no_network(url: str, options: object) -> None:
    raise AssertionError(f"the JSON-LD processor fetched {url}")


def keys(node: Any) -> set[str]:
    """Every property name in a compact document (what expansion must keep)."""
    if isinstance(node, list):
        return set().union(*(keys(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {key for key in node if not key.startswith("@")}
    return found.union(*(keys(value) for key, value in node.items() if key != "@context"))


def expanded_keys(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(expanded_keys(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {key for key in node if not key.startswith("@")}
    return found.union(*(expanded_keys(value) for value in node.values()))


def test_landing_pages_embed_schema_org_that_expands_without_loss(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "repo")
    repository = init_repository(settings)
    path = samples.ome_tiff(tmp_path / "cells.ome.tif", samples.ramp((2, 3, 32, 40)), axes="CZYX")
    (outcome,) = ingest_paths(repository, [path], study="HeLa")
    study_metadata.set_metadata(repository, ADMIN, "HeLa", hela())
    (tumour,) = ingest_paths(
        repository, [samples.png(tmp_path / "t.png", np.ones((8, 8), np.uint8))], study="Tumours"
    )
    study_metadata.set_metadata(
        repository, ADMIN, "Tumours", {**hela(), "study": {**hela()["study"], "title": "Tumours"}}
    )
    policies.set_policy(repository, ADMIN, "Tumours", "restricted")
    image = outcome.images[0]
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        study_id = client.get("/api/studies/HeLa").json()["id"]
        page = client.get(f"/studies/{study_id}").text
        embedded = json.loads(
            re.search(r'<script type="application/ld\+json">(.*?)</script>', page, re.S).group(1)
        )
        served = client.get(f"/api/studies/{study_id}/jsonld")
        negotiated = client.get(
            f"/pid/{study_id}", headers={"Accept": "application/ld+json"}, follow_redirects=True
        )
        image_page = client.get(f"/images/{image}").text
        image_doc = client.get(
            f"/pid/{image}", headers={"Accept": "application/ld+json"}, follow_redirects=True
        )
        tumours = client.get("/api/studies/Tumours/jsonld").json()
        hidden = client.get(f"/api/images/{tumour.images[0]}/jsonld")
        hidden_pid = client.get(f"/pid/{tumour.images[0]}", headers={"Accept": "application/ld+json"})
    repository.close()
    assert served.headers["content-type"] == "application/ld+json"
    assert embedded == served.json() == negotiated.json()
    assert negotiated.headers["content-type"] == "application/ld+json"
    dataset = served.json()
    assert dataset["@type"] == "Dataset" and dataset["@id"] == f"{server.url}/pid/{study_id}"
    assert dataset["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert dataset["measurementTechnique"][0]["@id"] == "http://purl.obolibrary.org/obo/FBbi_00000253"
    assert dataset["about"][0] == {
        "@type": "Taxon",
        "@id": "http://purl.obolibrary.org/obo/NCBITaxon_9606",
        "name": "Homo sapiens",
    }
    assert dataset["creator"][0]["@id"] == "https://orcid.org/0000-0002-1825-0097"
    assert dataset["hasPart"][0]["contentUrl"] == f"{server.url}/zarr/{image}.ome.zarr"

    for document in (dataset, image_doc.json()):
        expanded = jsonld.expand(document, {"documentLoader": no_network})
        assert {SCHEMA + key for key in keys(document)} <= expanded_keys(expanded)
    assert image_doc.json()["isPartOf"]["@id"] == f"{server.url}/pid/{study_id}"
    assert image_doc.json()["measurementTechnique"][0]["name"] == "spinning disk confocal microscopy"
    assert '<script type="application/ld+json">' in image_page

    # A restricted study: its Dataset (the record) is public, its images are not part of it.
    assert (
        tumours["name"] == "Tumours" and "hasPart" not in tumours and tumours["isAccessibleForFree"] is False
    )
    assert hidden.status_code == 404 and hidden_pid.status_code == 404

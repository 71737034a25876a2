"""Exports a user can hand to others: RO-Crate 1.3 (checked by roc-validator, offline), DataCite 4.5 JSON
and REMBI JSON, from the CLI and over HTTP, following the access rules."""

from __future__ import annotations

import io
import json
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
import zarr

from fairimage.model.governance.policy import operator
from fairimage.services.curation import study_metadata
from fairimage.services.governance import policies
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer, run_cli
from tests.test_curation import hela

ADMIN = operator("test")
ROOT = Path(__file__).resolve().parent.parent
VALIDATOR = ROOT / ".venv-rocrate" / "bin" / "python"


def validate(crate: Path) -> tuple[bool, list[dict[str, str]]]:
    if not VALIDATOR.exists():
        pytest.fail("roc-validator is not installed: 'make test' makes .venv-rocrate")
    result = subprocess.run(
        [str(VALIDATOR), str(ROOT / "tests" / "rocrate_check.py"), str(crate), "ro-crate-1.3"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, result.stderr
    return lines[-1]["passed"], lines[:-1]


def test_ro_crates_validate_and_datacite_names_the_terms(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    picture = samples.png(tmp_path / "cells.png", np.arange(600, dtype=np.uint8).reshape(20, 30))
    (tmp_path / "hela.yaml").write_text(yaml.safe_dump(hela()))
    run_cli(
        "ingest", picture, "--study", "HeLa", "--metadata", tmp_path / "hela.yaml", "--repo", repo, check=True
    )

    run_cli("export", "HeLa", "--to", tmp_path / "linked", "--repo", repo, check=True)
    passed, issues = validate(tmp_path / "linked")
    assert passed, issues
    metadata = json.loads((tmp_path / "linked" / "ro-crate-metadata.json").read_text())
    root = next(entity for entity in metadata["@graph"] if entity["@id"] == "./")
    assert root["license"] == {"@id": "https://creativecommons.org/licenses/by/4.0/"}
    assert root["measurementTechnique"] == [{"@id": "http://purl.obolibrary.org/obo/FBbi_00000253"}]
    assert any(part["@id"].endswith(".ome.zarr") for part in root["hasPart"])
    assert json.loads((tmp_path / "linked" / "rembi.json").read_text())["study"]["license"] == "CC-BY-4.0"

    run_cli("export", "HeLa", "--to", tmp_path / "crate.zip", "--copy-images", "--repo", repo, check=True)
    passed, issues = validate(tmp_path / "crate.zip")
    assert passed, issues
    with zipfile.ZipFile(tmp_path / "crate.zip") as archive:
        archive.extractall(tmp_path / "unzipped")
    (folder,) = (tmp_path / "unzipped" / "images").iterdir()
    pixels = zarr.open_group(str(folder), mode="r")["0"][...]
    assert np.array_equal(pixels, np.arange(600, dtype=np.uint8).reshape(20, 30))  # the copy is pixel-exact

    broken = json.loads((tmp_path / "linked" / "ro-crate-metadata.json").read_text())
    for entity in broken["@graph"]:
        if entity["@id"] == "./":
            del entity["datePublished"]
    (tmp_path / "linked" / "ro-crate-metadata.json").write_text(json.dumps(broken))
    passed, issues = validate(tmp_path / "linked")
    assert not passed and issues  # the validator does check

    run_cli("export", "HeLa", "--as", "datacite", "--to", tmp_path / "dc.json", "--repo", repo, check=True)
    datacite = json.loads((tmp_path / "dc.json").read_text())
    assert datacite["types"]["resourceTypeGeneral"] == "Dataset" and datacite["publicationYear"] >= 2026
    assert (
        datacite["creators"][0]["nameIdentifiers"][0]["nameIdentifier"]
        == "https://orcid.org/0000-0002-1825-0097"
    )
    schemes = {subject.get("subjectScheme"): subject.get("valueUri") for subject in datacite["subjects"]}
    assert schemes["FBbi"] == "http://purl.obolibrary.org/obo/FBbi_00000253"
    assert schemes["NCBITaxon"] == "http://purl.obolibrary.org/obo/NCBITaxon_9606"
    assert datacite["rightsList"][0]["rightsIdentifier"] == "cc-by-4.0"
    run_cli("export", "HeLa", "--as", "datacite-xml", "--to", tmp_path / "dc.xml", "--repo", repo, check=True)
    xml = ET.fromstring((tmp_path / "dc.xml").read_bytes())
    kernel = "{http://datacite.org/schema/kernel-4}"
    assert xml.tag == f"{kernel}resource" and xml.findtext(f"{kernel}publisher") == "fairimage"
    assert xml.find(f".//{kernel}subject[@subjectScheme='FBbi']").get("valueURI").endswith("FBbi_00000253")
    existing = run_cli("export", "HeLa", "--as", "datacite", "--to", tmp_path / "dc.json", "--repo", repo)
    assert existing.returncode == 1 and "exists already" in existing.stderr


def test_exports_over_http_follow_the_access_rules(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "repo")
    repository = init_repository(settings)
    ingest_paths(repository, [samples.png(tmp_path / "a.png", np.ones((8, 8), np.uint8))], study="Tumours")
    study_metadata.set_metadata(repository, ADMIN, "Tumours", hela())
    policies.set_policy(repository, ADMIN, "Tumours", "restricted")
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        study_id = client.get("/api/studies/Tumours").json()["id"]
        crate = client.get(f"/api/studies/{study_id}/export/ro-crate")
        datacite = client.get(f"/api/studies/{study_id}/export/datacite")
        wrong = client.get(f"/api/studies/{study_id}/export/excel")
    repository.close()
    assert crate.status_code == 200 and crate.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(crate.content)) as archive:
        metadata = json.loads(archive.read("ro-crate-metadata.json"))
    root = next(entity for entity in metadata["@graph"] if entity["@id"] == "./")
    assert root["hasPart"] == [{"@id": "rembi.json"}]  # a restricted study's images are not exported
    assert datacite.json()["titles"] == [{"title": "HeLa cells in mitosis"}]
    assert (
        wrong.status_code == 400
        and "use one of ro-crate, datacite, datacite-xml, rembi-json" in wrong.json()["error"]["message"]
    )


def test_datacite_records_carry_dois_of_the_study_and_its_published_versions(tmp_path: Path) -> None:
    from datacite import schema45

    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    picture = samples.png(tmp_path / "cells.png", np.arange(600, dtype=np.uint8).reshape(20, 30))
    (tmp_path / "hela.yaml").write_text(yaml.safe_dump(hela()))
    run_cli("ingest", picture, "--study", "HeLa", "--metadata", tmp_path / "hela.yaml", "--repo", repo,
            check=True)  # fmt: skip
    run_cli("export", "HeLa", "--as", "datacite", "--to", tmp_path / "none.json", "--repo", repo, check=True)
    unprefixed = json.loads((tmp_path / "none.json").read_text())
    schema45.validate(unprefixed)
    assert "doi" not in unprefixed
    assert any("no doi_prefix configured" in d["description"] for d in unprefixed["descriptions"])

    with (repo / "fairimage.toml").open("a") as settings:
        settings.write('doi_prefix = "10.5072"\n')
    published = json.loads(run_cli("publish", "HeLa", "--repo", repo, "--json", check=True).stdout)
    study = published["study_id"]
    assert published["doi"] == f"10.5072/{study}.v{published['number']}"
    concept_file = tmp_path / "concept.json"
    run_cli("export", "HeLa", "--as", "datacite", "--to", concept_file, "--repo", repo, check=True)
    concept = json.loads((tmp_path / "concept.json").read_text())
    schema45.validate(concept)  # raises on a record that is not DataCite 4.5
    assert concept["doi"] == f"10.5072/{study}" and concept["suffix"] == study
    assert {"relatedIdentifier": published["doi"], "relatedIdentifierType": "DOI",
            "relationType": "HasVersion"} in concept["relatedIdentifiers"]  # fmt: skip
    assert concept["alternateIdentifiers"][0]["alternateIdentifier"].endswith(f"/pid/{study}")

    number = str(published["number"])
    run_cli("export", "HeLa", "--as", "datacite", "--version", number, "--to", tmp_path / "v.json",
            "--repo", repo, check=True)  # fmt: skip
    version = json.loads((tmp_path / "v.json").read_text())
    schema45.validate(version)
    assert version["doi"] == published["doi"] and version["version"] == number
    assert version["alternateIdentifiers"][0]["alternateIdentifier"].endswith(f"/pid/{study}.v{number}")
    assert {"relatedIdentifier": f"10.5072/{study}", "relatedIdentifierType": "DOI",
            "relationType": "IsVersionOf"} in version["relatedIdentifiers"]  # fmt: skip
    run_cli("export", "HeLa", "--as", "datacite-xml", "--version", number, "--to", tmp_path / "v.xml",
            "--repo", repo, check=True)  # fmt: skip
    kernel = "{http://datacite.org/schema/kernel-4}"
    identifier = ET.fromstring((tmp_path / "v.xml").read_bytes()).find(f"{kernel}identifier")
    assert identifier is not None and identifier.text == published["doi"]
    assert identifier.get("identifierType") == "DOI"

    run_cli("study", "describe", "HeLa", "A new description", "--repo", repo, check=True)  # a draft version
    draft = str(published["number"] + 1)
    refused = run_cli("export", "HeLa", "--as", "datacite", "--version", draft, "--to", tmp_path / "d.json",
                      "--repo", repo)  # fmt: skip
    assert refused.returncode == 2 and f"--version {draft}: not a published version" in refused.stderr
    with LiveServer(load_settings(repo)) as server:  # the version's page shows its DOI and cites by it
        page = httpx.get(f"{server.url}/studies/{study}/versions/{number}").text
    assert f'<a href="https://doi.org/{published["doi"]}">' in page
    assert f"https://doi.org/{published['doi']}" in page.split('class="citation">')[1]

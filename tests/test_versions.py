"""Study versions, persistent identifiers and provenance, as users meet them: the CLI, HTTP and the catalog
itself (tampered with directly), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from pyld import jsonld
from sqlalchemy import select, text, update

from fairimage import __version__
from fairimage.catalog.tables import StudyVersionRow
from fairimage.model.errors import ConflictError
from fairimage.model.governance.duo import DataUse
from fairimage.model.governance.policy import Role, Scope, operator
from fairimage.services.governance import accounts, policies, versions
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.recovery import open_repository
from fairimage.services.repository import Repository, init_repository
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer, run_cli

ADMIN = operator("test")
PROV = "http://www.w3.org/ns/prov#"
SCHEMA = "https://schema.org/"


def picture(path: Path, value: int) -> Path:
    return samples.png(path, np.full((24, 32), value, np.uint8))


def test_each_ingest_run_and_metadata_change_makes_one_version(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    first = [picture(tmp_path / f"a{i}.png", i) for i in range(2)]
    run_cli("ingest", *first, "--study", "HeLa", "--repo", repo, check=True)
    run_cli("ingest", picture(tmp_path / "b.png", 9), "--study", "HeLa", "--repo", repo, check=True)
    run_cli("ingest", *first, "--study", "HeLa", "--repo", repo, check=True)  # present already: no version
    run_cli("study", "describe", "HeLa", "HeLa cells, confocal", "--repo", repo, check=True)
    listed = json.loads(run_cli("versions", "HeLa", "--repo", repo, "--json", check=True).stdout)

    assert [v["number"] for v in listed] == [1, 2, 3]
    assert [v["image_count"] for v in listed] == [2, 3, 3]
    assert listed[0]["note"].endswith("2 files") and listed[1]["note"].endswith("1 file")
    assert listed[2]["note"] == "description changed"
    assert all(v["intact"] and len(v["content_sha256"]) == 64 for v in listed)
    assert len({v["content_sha256"] for v in listed}) == 3

    changes = json.loads(run_cli("diff", "HeLa", "1", "3", "--repo", repo, "--json", check=True).stdout)
    assert changes["metadata"] == [{"field": "description", "before": "", "after": "HeLa cells, confocal"}]
    assert [image["name"] for image in changes["added"]] == ["b.png"] and changes["removed"] == []
    shown = run_cli("diff", "HeLa", "1", "3", "--repo", repo, check=True).stdout
    assert "description: '' -> 'HeLa cells, confocal'" in shown and "+ image" in shown and "b.png" in shown

    missing = run_cli("diff", "HeLa", "1", "7", "--repo", repo)
    assert missing.returncode == 4
    assert missing.stderr.strip() == (
        f"error: version 7 of study {listed[0]['study_id']!r} not found; its versions are 1 to 3"
    )


@dataclass
class Site:
    repository: Repository
    study: str
    images: list[str]


@pytest.fixture
def site(tmp_path: Path, catalog_url: str) -> Iterator[Site]:
    repository = init_repository(load_settings(tmp_path / "repo", db=catalog_url))
    paths = [picture(tmp_path / f"c{i}.png", 40 + i) for i in range(2)]
    outcomes = ingest_paths(repository, paths, study="Tumours")
    study = versions.get_version(repository, ADMIN, "Tumours", None).study_id
    yield Site(repository, study, [outcome.images[0] for outcome in outcomes])
    repository.close()


def test_consent_changes_make_versions_and_policy_changes_do_not(site: Site) -> None:
    policies.set_policy(site.repository, ADMIN, "Tumours", "restricted")
    policies.set_data_use(site.repository, ADMIN, "Tumours", DataUse(permission="HMB", modifiers=["NPU"]))
    found = versions.list_versions(site.repository, ADMIN, "Tumours")
    assert [(v.number, v.note) for v in found][1:] == [(2, "consent terms changed")]
    changes = versions.diff(site.repository, ADMIN, "Tumours", 1, 2)
    fields = {change.field: change.after for change in changes.metadata}
    assert fields == {"data_use": found[1].content.metadata["data_use"]} and fields["data_use"] is not None


def test_a_version_edited_in_the_catalog_is_found_and_cannot_be_published(site: Site) -> None:
    table = StudyVersionRow.__table__
    with site.repository.engine.begin() as connection:  # behind fairimage's back, in the database
        content = connection.execute(select(table.c.content).where(table.c.number == 1)).scalar_one()
        content["images"] = content["images"][:1]  # someone hides an image from the record
        connection.execute(update(table).where(table.c.number == 1).values(content=content))
    (version,) = versions.list_versions(site.repository, ADMIN, "Tumours")
    assert not version.intact and version.image_count == 1
    with pytest.raises(ConflictError, match="version 1 no longer matches its checksum"):
        versions.publish(site.repository, ADMIN, "Tumours")


def test_a_killed_ingest_still_versions_what_it_published(tmp_path: Path) -> None:
    """A run killed after committing one file: the next command versions the study with that file."""
    settings = load_settings(tmp_path / "repo")
    init_repository(settings).close()
    first, second = picture(tmp_path / "p.png", 1), picture(tmp_path / "q.png", 2)
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from fairimage.services.ingest import intake
        from fairimage.services.recovery import open_repository
        from fairimage.settings import load_settings

        repository = open_repository(load_settings(Path({str(settings.repo)!r})))
        real_publish = intake.publish

        def publish_then_die(*args, **kwargs):
            outcome = real_publish(*args, **kwargs)
            os._exit(9)  # killed after the first file's transaction committed

        intake.publish = publish_then_die
        intake.ingest_paths(repository, [Path({str(first)!r}), Path({str(second)!r})], "Killed")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 9, result.stderr
    repository = open_repository(settings)
    try:
        (version,) = versions.list_versions(repository, ADMIN, "Killed")
    finally:
        repository.close()
    assert version.note.endswith(": interrupted") and version.image_count == 1
    assert [image.name for image in version.content.images] == ["p.png"]


def test_studies_made_before_versions_get_version_one_when_the_repository_opens(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "repo")
    repository = init_repository(settings)
    ingest_paths(repository, [picture(tmp_path / "old.png", 3)], study="Old")
    with repository.engine.begin() as connection:  # as a repository of catalog revision 0003 had it
        connection.execute(text("delete from study_versions"))
    repository.close()
    repository = open_repository(settings)
    try:
        (version,) = versions.list_versions(repository, ADMIN, "Old")
    finally:
        repository.close()
    assert version.number == 1 and version.image_count == 1 and version.created_by == "fairimage"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Site, dict[str, str]]]:
    settings = load_settings(tmp_path / "repo")
    repository = init_repository(settings)
    outcomes = ingest_paths(
        repository, [picture(tmp_path / f"s{i}.png", 60 + i) for i in range(2)], study="Served"
    )
    ingest_paths(repository, [picture(tmp_path / "closed.png", 90)], study="Closed")
    policies.set_policy(repository, ADMIN, "Closed", "private")
    accounts.add_user(repository, ADMIN, "sam", Role.SUBMITTER)
    accounts.add_user(repository, ADMIN, "ada", Role.VIEWER)
    accounts.add_user(repository, ADMIN, "stu", Role.STEWARD)
    policies.set_owner(repository, ADMIN, "Served", "sam")
    tokens = {
        name: accounts.create_token(repository, ADMIN, name, scope).secret
        for name, scope in (("sam", Scope.WRITE), ("ada", Scope.WRITE), ("stu", Scope.READ))
    }
    study = versions.get_version(repository, ADMIN, "Served", None).study_id
    site = Site(repository, study, [outcome.images[0] for outcome in outcomes])
    with LiveServer(settings) as server:
        yield server.url, site, tokens
    repository.close()


def test_publishing_freezes_a_version_that_stays_resolvable_by_its_pid(
    served: tuple[str, Site, dict[str, str]], tmp_path: Path
) -> None:
    url, site, tokens = served
    sam = {"Authorization": f"Bearer {tokens['sam']}"}
    ada = {"Authorization": f"Bearer {tokens['ada']}"}
    with httpx.Client(base_url=url, timeout=30) as client:
        refused = client.post(f"/api/studies/{site.study}/versions/1/publish", headers=ada)
        assert refused.status_code == 403
        published = client.post(f"/api/studies/{site.study}/versions/1/publish", headers=sam)
        assert published.status_code == 200, published.text
        body = published.json()
        assert body["published_by"] == "sam" and body["pid_url"] == f"{url}/pid/{site.study}.v1"
        assert (
            body["citation"]
            == f"Served ({body['published_at'][:4]}). Version 1. fairimage. {body['pid_url']}"
        )
        again = client.post(f"/api/studies/{site.study}/versions/1/publish", headers=sam)
        assert again.status_code == 409 and "published already" in again.json()["error"]["message"]

        changed = client.put(
            f"/api/studies/{site.study}/description", headers=sam, json={"description": "Two fields"}
        )
        assert changed.status_code == 200 and changed.json()["number"] == 2

        page = client.get(f"/pid/{site.study}.v1", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == f"/studies/{site.study}/versions/1"
        as_data = client.get(f"/pid/{site.study}.v1", headers={"Accept": "application/ld+json"})
        assert as_data.headers["location"] == f"/api/studies/{site.study}/versions/1"
        old = client.get(as_data.headers["location"]).json()
        assert old["content"]["metadata"]["description"] == "" and old["published_at"] is not None
        assert sorted(image["id"] for image in old["content"]["images"]) == sorted(site.images)

        landing = client.get(f"/studies/{site.study}/versions/2")
        assert landing.status_code == 200
        assert "Changes from version 1" in landing.text and "Two fields" in landing.text
        assert "not yet (a draft" in landing.text and f"fairimage {__version__} ·" in landing.text
        cited = client.get(f"/studies/{site.study}/versions/1").text
        assert body["citation"] in cited
        study_page = client.get(f"/studies/{site.study}").text
        assert (
            f'href="/studies/{site.study}/versions/2"' in study_page and "description changed" in study_page
        )


def test_pids_resolve_for_those_who_may_see_and_are_404_otherwise(
    served: tuple[str, Site, dict[str, str]],
) -> None:
    url, site, tokens = served
    steward = {"Authorization": f"Bearer {tokens['stu']}"}
    with httpx.Client(base_url=url, timeout=30) as client:
        closed = client.get("/api/studies/Closed", headers=steward).json()["id"]
        assert client.get(f"/pid/{closed}.v1", headers=steward).status_code == 303
        for pid in (site.study, f"{site.study}.v1", site.images[0]):
            assert client.get(f"/pid/{pid}").status_code == 303
        for pid in (closed, f"{closed}.v1", "study-nothing", "img-nothing", "file-nothing", "whatever"):
            response = client.get(f"/pid/{pid}")
            assert response.status_code == 404, pid
        image = client.get(f"/api/images/{site.images[0]}").json()
        file_pid = client.get(f"/pid/{image['original_file']['id']}", headers={"Accept": "application/json"})
        assert file_pid.headers["location"] == f"/api/images/{site.images[0]}"


def test_provenance_is_prov_json_ld_that_expands_offline(
    served: tuple[str, Site, dict[str, str]],
) -> None:
    url, site, _ = served
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.get(f"/api/images/{site.images[0]}/provenance")
        image = client.get(f"/api/images/{site.images[0]}").json()
        closed = client.get("/api/images/img-nothing/provenance")
    assert response.status_code == 200 and response.headers["content-type"] == "application/ld+json"
    assert closed.status_code == 404
    document = response.json()

    def no_network(url: str, options: object) -> None:
        raise AssertionError(f"the JSON-LD processor fetched {url}")

    expanded = jsonld.expand(document, {"documentLoader": no_network})
    nodes = {node["@id"]: node for node in expanded}
    stored = nodes[f"{url}/pid/{site.images[0]}"]
    assert PROV + "Entity" in stored["@type"] and SCHEMA + "ImageObject" in stored["@type"]
    source = nodes[stored[PROV + "wasDerivedFrom"][0]["@id"]]
    assert source["@id"] == f"{url}/pid/{image['original_file']['id']}"
    assert source[SCHEMA + "sha256"][0]["@value"] == image["original_file"]["sha256"]
    assert source[SCHEMA + "name"][0]["@value"] == "s0.png"
    run = nodes[stored[PROV + "wasGeneratedBy"][0]["@id"]]
    assert PROV + "Activity" in run["@type"]
    assert run[PROV + "used"][0]["@id"] == source["@id"]
    assert run[PROV + "startedAtTime"][0]["@type"] == "http://www.w3.org/2001/XMLSchema#dateTime"
    assert run[PROV + "startedAtTime"][0]["@value"] <= run[PROV + "endedAtTime"][0]["@value"]
    person = nodes[stored[PROV + "wasAttributedTo"][0]["@id"]]
    assert person["http://www.w3.org/2000/01/rdf-schema#label"][0]["@value"] == "operator"
    plan_id = run[PROV + "qualifiedAssociation"][0][PROV + "hadPlan"][0]["@id"]
    parameters = {
        item[SCHEMA + "name"][0]["@value"]: item[SCHEMA + "value"][0]["@value"]
        for item in nodes[plan_id][SCHEMA + "additionalProperty"]
    }
    assert parameters["chunk_bytes"] == 1 << 20 and parameters["format"] == "OME-Zarr 0.5"
    # Nothing is lost: every key of the compact document maps to an IRI (a term without one is dropped).
    quads = jsonld.to_rdf(document, {"format": "application/n-quads", "documentLoader": no_network})
    compact_values = sum(
        len(value) if isinstance(value, list) else 1
        for node in document["@graph"]
        for key, value in node.items()
        if not key.startswith("@") and key != "prov:qualifiedAssociation"
    )
    assert quads.count("\n") >= compact_values


def test_the_command_line_prints_the_same_provenance(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    run_cli("ingest", picture(tmp_path / "one.png", 7), "--repo", repo, check=True)
    (image,) = json.loads(run_cli("images", "--repo", repo, "--json", check=True).stdout)
    document = json.loads(run_cli("provenance", image["id"], "--repo", repo, "--json", check=True).stdout)
    assert document["@graph"][0]["@id"] == f"http://127.0.0.1:8000/pid/{image['id']}"
    summary = run_cli("provenance", image["id"], "--repo", repo, check=True).stdout
    assert f"derived from one.png (png, {(tmp_path / 'one.png').stat().st_size} bytes" in summary
    assert "chunk_bytes = 1048576" in summary and "with fairimage " in summary

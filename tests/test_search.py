"""Search as users meet it: the same results from the service, the CLI, the API and the web page; ranking,
ontology-aware matching (a broad term finds narrower ones), facets with counts, and never a private image
in results or counts. On SQLite (FTS5) and PostgreSQL (tsvector) alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from fairimage.model.governance.policy import ANONYMOUS, Role, Scope, operator
from fairimage.services.curation import annotations, study_metadata
from fairimage.services.discovery import search
from fairimage.services.governance import accounts, policies
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.repository import Repository, init_repository
from fairimage.settings import Settings, load_settings
from tests import samples
from tests.conftest import LiveServer, run_cli

ADMIN = operator("test")


def study_file(title: str, method: str, organism: str | None, fluorophore: str | None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "study": {"title": title, "description": f"{title} images", "license": "CC0-1.0"},
        "study_components": [
            {"name": "main", "description": "all", "imaging_methods": [method], "biosample": "b"}
        ],
        "biosamples": [
            {"id": "b", "biological_entity": "cells", **({"organism": organism} if organism else {})}
        ],
    }
    if fluorophore:
        document["study_components"][0]["specimen"] = "s"
        document["specimens"] = [
            {"id": "s", "preparation_method": "fixed", "channels": [{"content": fluorophore}]}
        ]
    return document


@dataclass
class Node:
    settings: Settings
    repository: Repository
    images: dict[str, list[str]]  # study -> image ids


@pytest.fixture
def node(tmp_path: Path, catalog_url: str) -> Iterator[Node]:
    settings = load_settings(tmp_path / "repo", db=catalog_url)
    repository = init_repository(settings)
    studies = {
        "HeLa mitosis": study_file("HeLa mitosis", "FBbi:00000251", "NCBITaxon:9606", "FBbi:00000056"),
        "Mouse brain": study_file(
            "Mouse brain light sheet", "FBbi:00000369", "NCBITaxon:10090", "FBbi:00000082"
        ),
        "Yeast EM": study_file("Yeast ultrastructure", "FBbi:00000258", "NCBITaxon:4932", None),
        "Patients": study_file("Patient biopsies", "FBbi:00000251", "NCBITaxon:9606", None),
    }
    images: dict[str, list[str]] = {}
    for index, (name, document) in enumerate(studies.items()):
        paths = [
            samples.png(tmp_path / f"{index}-{n}.png", np.full((12 + n, 10), 10 * index + n, np.uint8))
            for n in range(index + 1)
        ]
        outcomes = ingest_paths(repository, paths, study=name)
        images[name] = [outcome.images[0] for outcome in outcomes]
        study_metadata.set_metadata(repository, ADMIN, name, document)
    policies.set_policy(repository, ADMIN, "Patients", "private")
    yield Node(settings, repository, images)
    repository.close()


def ids(results: search.SearchResults) -> set[str]:
    return {hit.image.id for hit in results.hits}


def test_words_and_their_prefixes_find_images_and_rank_them(node: Node) -> None:
    hela = set(node.images["HeLa mitosis"])
    assert ids(search.search(node.repository, ANONYMOUS, "confocal HeLa")) == hela
    assert ids(search.search(node.repository, ANONYMOUS, "mitos")) == hela  # the last word is a prefix
    assert search.search(node.repository, ANONYMOUS, "confocal nonexistentword").total == 0
    both = search.search(node.repository, ANONYMOUS, "cells")
    assert both.total == 6  # every public image's biosample is "cells"


def test_a_broad_term_finds_the_narrower_ones(node: Node) -> None:
    fluorescence = search.search(node.repository, ANONYMOUS, "fluorescence microscopy")
    assert ids(fluorescence) == set(node.images["HeLa mitosis"]) | set(node.images["Mouse brain"])
    mammals = search.search(node.repository, ANONYMOUS, "Mammalia")
    assert ids(mammals) == set(node.images["HeLa mitosis"]) | set(node.images["Mouse brain"])
    by_filter = search.search(node.repository, ANONYMOUS, "", {"imaging_method": ["fluorescence microscopy"]})
    assert ids(by_filter) == ids(fluorescence)
    fungi = search.search(node.repository, ANONYMOUS, "", {"organism": ["Fungi"]})
    assert ids(fungi) == set(node.images["Yeast EM"])
    gfp = search.search(node.repository, ANONYMOUS, "GFP")  # EGFP's synonym
    assert ids(gfp) == set(node.images["Mouse brain"])


def test_edam_topics_and_analysis_operations_are_searched_with_their_broader_terms(node: Node) -> None:
    document = study_file("Mouse brain light sheet", "FBbi:00000369", "NCBITaxon:10090", "FBbi:00000082")
    document["study"]["topics"] = ["Light-sheet microscopy"]
    document["analysed_data"] = [{"type": "nuclei masks", "operations": ["Watershed segmentation"]}]
    study_metadata.set_metadata(node.repository, ADMIN, "Mouse brain", document)
    brain = set(node.images["Mouse brain"])
    assert ids(search.search(node.repository, ANONYMOUS, "image segmentation")) == brain
    assert ids(search.search(node.repository, ANONYMOUS, "SPIM")) == brain  # a synonym of the topic
    assert ids(search.search(node.repository, ANONYMOUS, "nuclei masks")) == brain
    assert search.search(node.repository, ANONYMOUS, "cell tracking").total == 0


def test_an_images_own_words_match_with_its_studys_and_pages_cover_every_match(node: Node) -> None:
    """Images share their study's text through their group; an image's own annotation makes it match alone,
    also together with a word of its study, and counts, facets and pages add up across both kinds."""
    yeast = node.images["Yeast EM"]
    annotations.annotate(
        node.repository, ADMIN, yeast[1], annotations.Change(pairs=(("note", "spindle pole"),), tags=("odd",))
    )
    annotations.annotate(
        node.repository, ADMIN, node.images["HeLa mitosis"][0], annotations.Change(tags=("odd",))
    )
    assert ids(search.search(node.repository, ANONYMOUS, "spindle")) == {yeast[1]}
    assert ids(search.search(node.repository, ANONYMOUS, "ultrastructure spindle pole")) == {yeast[1]}
    assert search.search(node.repository, ANONYMOUS, "mitosis spindle").total == 0  # words of two images
    odd = search.search(node.repository, ANONYMOUS, "odd")
    assert ids(odd) == {yeast[1], node.images["HeLa mitosis"][0]}
    assert {c.value: c.count for c in odd.facets["tag"]} == {"odd": 2}
    both = search.search(node.repository, ANONYMOUS, "cells")  # five whole-group images and one moved out
    assert both.total == 6 and {c.value: c.count for c in both.facets["tag"]} == {"odd": 2}
    paged = [search.search(node.repository, ANONYMOUS, "cells", limit=1, offset=n).hits for n in range(7)]
    assert [len(hits) for hits in paged] == [1, 1, 1, 1, 1, 1, 0]
    assert {hits[0].image.id for hits in paged[:6]} == ids(both)
    partly = search.search(node.repository, ANONYMOUS, "yeast odd")  # the group's word, the image's tag
    assert ids(partly) == {yeast[1]} and partly.total == 1
    assert search.search(node.repository, ANONYMOUS, "", {"tag": ["odd"]}).total == 2


def test_facets_count_what_the_caller_may_read(node: Node) -> None:
    results = search.search(node.repository, ANONYMOUS, "")
    organisms = {count.label: count.count for count in results.facets["organism"]}
    assert organisms == {"Homo sapiens": 1, "Mus musculus": 2, "Saccharomyces cerevisiae": 3}
    assert results.total == 6  # the private study's 4 images are neither listed nor counted
    methods = {count.value: count.count for count in results.facets["imaging_method"]}
    assert methods == {"FBbi:00000251": 1, "FBbi:00000369": 2, "FBbi:00000258": 3}  # only what was named
    studies = {count.label for count in results.facets["study"]}
    assert studies == {"HeLa mitosis", "Mouse brain", "Yeast EM"}
    steward = search.search(node.repository, ADMIN, "Patient biopsies")
    assert ids(steward) == set(node.images["Patients"])
    assert search.search(node.repository, ANONYMOUS, "Patient biopsies").total == 0
    everyone = search.search(node.repository, ADMIN, "", {"organism": ["human"]})
    assert everyone.total == 5 and {c.label for c in everyone.facets["study"]} == {"HeLa mitosis", "Patients"}


def test_facets_list_their_most_frequent_values_and_say_how_many_more(node: Node) -> None:
    """At millions of images a facet has thousands of values: the most frequent are listed, the values
    filtered on always, and how many more there are is said, in the service, the CLI, the API and the page."""
    two = search.search(node.repository, ANONYMOUS, "", facet_values=2)
    assert [(c.label, c.count) for c in two.facets["study"]] == [("Yeast EM", 3), ("Mouse brain", 2)]
    assert two.facets_left_off == {"study": 1, "organism": 1, "imaging_method": 1}
    assert two.total == 6  # the counts of what is listed, and the total, are those of the whole search
    everything = search.search(node.repository, ANONYMOUS, "")
    assert everything.facets_left_off == {} and len(everything.facets["study"]) == 3
    hela = node.images["HeLa mitosis"]
    hela_study = search.search(node.repository, ANONYMOUS, "", {"study": ["HeLa mitosis"]}).facets["study"]
    assert [c.label for c in hela_study] == ["HeLa mitosis"]
    # A value filtered on that is not among the first: still listed (after them), so the page can show it.
    human = search.search(node.repository, ANONYMOUS, "", {"organism": ["human"]}, facet_values=1)
    assert ids(human) == set(hela)
    assert [c.value for c in human.facets["organism"]] == ["NCBITaxon:9606"]
    with pytest.raises(search.InvalidInputError, match="facet values: give 1 to 1000"):
        search.search(node.repository, ANONYMOUS, "", facet_values=0)

    repo = ["--repo", node.settings.repo]
    cli = json.loads(run_cli("search", "--facet-values", "2", *repo, "--json", check=True).stdout)
    # The command line is the operator's: it counts the private study too.
    assert [c["label"] for c in cli["facets"]["study"]] == ["Patients", "Yeast EM"]
    assert cli["facets_left_off"] == {"study": 2, "organism": 1, "imaging_method": 1}
    text = run_cli("search", *repo, check=True).stdout
    assert "study: Patients (4), Yeast EM (3), Mouse brain (2), HeLa mitosis (1)" in text
    with LiveServer(node.settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        api = client.get("/api/search", params={"facet_values": 2}).json()
        too_many = client.get("/api/search", params={"facet_values": 1001})
        default = client.get("/api/search").json()
    assert api["facets_left_off"] == two.facets_left_off
    assert api["facets"] == {name: [c.__dict__ for c in counts] for name, counts in two.facets.items()}
    assert too_many.status_code == 422 and "facet_values" in too_many.text
    assert default["facets_left_off"] == {} and len(default["facets"]["study"]) == 3


def test_metadata_changes_are_searchable_at_once(node: Node) -> None:
    changed = study_file("Yeast ultrastructure", "FBbi:00000257", "NCBITaxon:4896", None)
    study_metadata.set_metadata(node.repository, ADMIN, "Yeast EM", changed)
    assert search.search(node.repository, ANONYMOUS, "", {"organism": ["fission yeast"]}).total == 3
    assert search.search(node.repository, ANONYMOUS, "", {"organism": ["NCBITaxon:4932"]}).total == 0
    assert search.search(node.repository, ANONYMOUS, "scanning electron").total == 3


def test_paging_and_bad_input(node: Node) -> None:
    first = search.search(node.repository, ANONYMOUS, "", limit=4)
    second = search.search(node.repository, ANONYMOUS, "", limit=4, offset=4)
    assert len(first.hits) == 4 and len(second.hits) == 2 and not ids(first) & ids(second)
    with pytest.raises(search.InvalidInputError, match="facet 'organsm': use one of organism"):
        search.search(node.repository, ANONYMOUS, "", {"organsm": ["x"]})
    with pytest.raises(
        search.InvalidInputError, match="organism='dragon': not a term of the bundled NCBITaxon"
    ):
        search.search(node.repository, ANONYMOUS, "", {"organism": ["dragon"]})
    assert search.search(node.repository, ANONYMOUS, '"); DROP TABLE images; --').total == 0


def test_the_cli_the_api_and_the_page_give_the_same_answer(node: Node) -> None:
    accounts.add_user(node.repository, ADMIN, "stu", Role.STEWARD)
    token = accounts.create_token(node.repository, ADMIN, "stu", Scope.READ).secret
    cli = run_cli(
        "search", "fluorescence", "--facet", "organism=mouse", "--repo", node.settings.repo, "--json"
    )
    assert cli.returncode == 0, cli.stderr
    from_cli = json.loads(cli.stdout)
    with LiveServer(node.settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        api = client.get("/api/search", params={"q": "fluorescence", "organism": "mouse"}).json()
        page = client.get("/search", params={"q": "fluorescence", "organism": "mouse"})
        bad = client.get("/api/search", params={"organism": "dragon"})
        private_api = client.get("/api/search", params={"q": "biopsies"}).json()
        steward = client.get(
            "/api/search", params={"q": "biopsies"}, headers={"Authorization": f"Bearer {token}"}
        )
    assert from_cli["total"] == api["total"] == 2
    assert (
        {hit["id"] for hit in from_cli["hits"]}
        == {hit["id"] for hit in api["hits"]}
        == set(node.images["Mouse brain"])
    )
    assert api["hits"][0]["ome_zarr_url"].endswith(".ome.zarr") and api["filters"] == {
        "organism": ["NCBITaxon:10090"]
    }
    assert page.status_code == 200 and "2 images match" in page.text
    assert all(f"/images/{image}" in page.text for image in node.images["Mouse brain"])
    assert "organism=NCBITaxon%3A10090" in page.text or "organism=NCBITaxon:10090" in page.text
    assert bad.status_code == 400 and "not a term of the bundled NCBITaxon" in bad.json()["error"]["message"]
    assert private_api["total"] == 0 and private_api["facets"]["study"] == []
    assert steward.json()["total"] == 4


def test_a_catalog_from_before_search_groups_is_reindexed_when_it_opens(
    tmp_path: Path, catalog_url: str
) -> None:
    """Revision 0009 replaces the index: a catalog made at 0008 is upgraded and every image reindexed at the
    next command, so nothing ingested is missing from search."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from fairimage.catalog.db import HEAD, MIGRATIONS, current_revision
    from fairimage.services.recovery import open_repository

    settings = load_settings(tmp_path / "repo", db=catalog_url)
    repository = init_repository(settings)
    paths = [samples.png(tmp_path / f"{n}.png", np.full((8, 8), n, np.uint8)) for n in range(3)]
    ingest_paths(repository, paths, study="Old study")
    study_metadata.set_metadata(
        repository, ADMIN, "Old study", study_file("Old study", "FBbi:00000251", None, None)
    )
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with repository.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0008")
    repository.close()
    reopened = open_repository(settings)
    try:
        # the head known from the file names is Alembic's own, so an up-to-date catalog skips Alembic safely
        assert reopened.upgraded and current_revision(reopened.engine) == HEAD
        assert ScriptDirectory.from_config(config).get_current_head() == HEAD
        again = open_repository(settings)
        assert not again.upgraded
        again.close()
        found = search.search(reopened, ANONYMOUS, "confocal old")
        assert found.total == 3 and {c.label: c.count for c in found.facets["imaging_method"]} == {
            "confocal microscopy": 3
        }
    finally:
        reopened.close()


def test_cells_in_the_nervous_system_are_found_through_cell_types_and_their_anatomy(
    tmp_path: Path, catalog_url: str
) -> None:
    """CL cell types are searched with their broader types and the anatomy (UBERON) they are part of; the
    query's function words ("in", "the") are dropped."""
    settings = load_settings(tmp_path / "repo", db=catalog_url)
    repository = init_repository(settings)
    images: dict[str, str] = {}
    samples_by_study = {
        "Cortex cultures": {"cell_types": ["neuron"], "organism_parts": ["cerebral cortex"]},
        "Glia": {"cell_types": ["CL:0000127"]},
        "Liver": {"cell_types": ["hepatocyte"], "organism_parts": ["UBERON:0002107"]},
    }
    for index, (name, biosample) in enumerate(samples_by_study.items()):
        picture = samples.png(tmp_path / f"{index}.png", np.full((8, 8), index, np.uint8))
        images[name] = ingest_paths(repository, [picture], study=name)[0].images[0]
        document = study_file(name, "FBbi:00000251", "NCBITaxon:10090", None)
        document["biosamples"][0].update(biosample)
        study_metadata.set_metadata(repository, ADMIN, name, document)
    nervous = {images["Cortex cultures"], images["Glia"]}
    try:
        assert ids(search.search(repository, ANONYMOUS, "cells in the nervous system")) == nervous
        assert ids(search.search(repository, ANONYMOUS, "nervous system cell")) == nervous
        assert ids(search.search(repository, ANONYMOUS, "", {"cell_type": ["neural cell"]})) == nervous
        assert ids(search.search(repository, ANONYMOUS, "brain")) == {images["Cortex cultures"]}
        assert ids(search.search(repository, ANONYMOUS, "digestive system")) == {images["Liver"]}
        with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
            found = client.get("/api/search", params={"q": "cells in the nervous system"}).json()
            liver = client.get("/api/search", params={"organism_part": "liver"}).json()
        assert {hit["id"] for hit in found["hits"]} == nervous
        assert {(c["label"], c["count"]) for c in found["facets"]["cell_type"]} == {
            ("neuron", 1),
            ("astrocyte", 1),
        }
        assert [hit["id"] for hit in liver["hits"]] == [images["Liver"]]
        assert liver["filters"] == {"organism_part": ["UBERON:0002107"]}
    finally:
        repository.close()

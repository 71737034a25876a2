"""Federation between real nodes: separate `fairimage serve` processes with their own repositories and
ports on 127.0.0.1, one with its catalog on PostgreSQL and one with its objects in S3 (moto's server). The
harvesting node adds the others as peers, harvests their feeds and searches them with its own records,
through the command line and HTTP as their users would."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tifffile
from sqlalchemy import create_engine, text

from tests.conftest import FAIRIMAGE, _free_port, new_bucket, run_cli

ZEBRAFISH = """
study:
  title: Zebrafish neuron atlas {node}
  description: Confocal images of zebrafish neurons in the hindbrain
  keywords: [zebrafish, neuron]
  license: CC-BY-4.0
study_components:
  - name: hindbrain
    description: confocal stacks of the hindbrain
    imaging_methods: [FBbi:00000251]
    biosample: fish
biosamples:
  - id: fish
    organism: NCBITaxon:7955
    biological_entity: larval zebrafish
"""
MOUSE = """
study:
  title: Mouse liver sections
  description: Widefield images of mouse liver tissue
  license: CC0-1.0
study_components:
  - name: lobes
    description: widefield images of liver lobes
    imaging_methods: [FBbi:00000243]
    biosample: liver
biosamples:
  - id: liver
    organism: NCBITaxon:10090
    biological_entity: liver section
"""


@dataclass
class Node:
    name: str
    repo: Path
    url: str = ""
    server: subprocess.Popen[bytes] | None = None
    studies: dict[str, str] = field(default_factory=dict)  # name -> id

    def cli(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "--repo", self.repo)

    def json(self, *args: str | Path) -> Any:
        result = self.cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def serve(self) -> None:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRIMAGE_")}
        command = [FAIRIMAGE, "serve", "--repo", str(self.repo), "--port", str(port)]
        self.server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/.well-known/fairimage-node", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.server.poll() is None and time.monotonic() < deadline, f"{self.name} did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=20)
            self.server = None

    def ingest(self, folder: Path, study: str, metadata: str, seed: int) -> None:
        folder.mkdir(parents=True)
        rng = np.random.default_rng(seed)
        tifffile.imwrite(folder / f"{study}.tif", rng.integers(0, 4000, (32, 32), dtype=np.uint16))
        (folder / "study.yaml").write_text(metadata)
        result = self.cli(
            "ingest", folder / f"{study}.tif", "--study", study, "--metadata", folder / "study.yaml"
        )
        assert result.returncode == 0, result.stderr
        listed = self.json("studies")
        self.studies = {study["name"]: study["id"] for study in listed}


def _configure(node: Node, *lines: str) -> None:
    config = node.repo / "fairimage.toml"
    config.write_text(config.read_text() + "\n".join((f'node_name = "{node.name}"', *lines)) + "\n")


@dataclass
class Network:
    atlas: Node  # the harvesting node: SQLite and a local folder
    clinic: Node  # PostgreSQL catalog
    archive: Node  # objects in S3


@pytest.fixture(scope="module")
def network(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: str, s3_endpoint: str
) -> Iterator[Network]:
    root = tmp_path_factory.mktemp("federation")
    schema = f"fi_fed_{secrets.token_hex(4)}"
    engine = create_engine(postgres_server)
    with engine.begin() as connection:
        connection.execute(text(f"create schema {schema}"))
    atlas, clinic, archive = (Node(name, root / name) for name in ("atlas", "clinic", "archive"))
    run_cli("init", atlas.repo, check=True)
    run_cli("init", clinic.repo, "--db", f"{postgres_server}?options=-csearch_path%3D{schema}", check=True)
    bucket = new_bucket(s3_endpoint)
    run_cli(
        "init", archive.repo, "--storage", f"s3://{bucket}/repo", "--s3-endpoint", s3_endpoint, check=True
    )
    _configure(atlas, "peer_timeout = 1.5")
    _configure(clinic)
    _configure(archive)
    atlas.ingest(root / "in-atlas", "local-zebrafish", ZEBRAFISH.format(node="here"), 1)
    clinic.ingest(root / "in-clinic-1", "clinic-zebrafish", ZEBRAFISH.format(node="clinic"), 2)
    clinic.ingest(root / "in-clinic-2", "clinic-liver", MOUSE, 3)
    clinic.ingest(root / "in-clinic-3", "clinic-private", ZEBRAFISH.format(node="private"), 4)
    assert clinic.cli("study", "policy", "clinic-liver", "restricted").returncode == 0
    assert clinic.cli("study", "consent", "clinic-liver", "HMB", "--modifier", "IRB").returncode == 0
    assert clinic.cli("study", "policy", "clinic-private", "private").returncode == 0
    archive.ingest(root / "in-archive", "archive-zebrafish", ZEBRAFISH.format(node="archive"), 5)
    for node in (atlas, clinic, archive):
        node.serve()
    try:
        yield Network(atlas, clinic, archive)
    finally:
        for node in (atlas, clinic, archive):
            node.stop()
        with engine.begin() as connection:
            connection.execute(text(f"drop schema {schema} cascade"))
        engine.dispose()


def _federated(node: Node, query: str, *options: str) -> dict[str, Any]:
    found: dict[str, Any] = node.json("search", query, "--federated", *options)
    return found


def test_peers_are_added_harvested_and_searched_as_one(network: Network) -> None:
    atlas, clinic, archive = network.atlas, network.clinic, network.archive
    for peer in (clinic, archive):
        added = atlas.json("peer", "add", peer.url)
        assert added["name"] == peer.name and added["url"] == peer.url
        assert added["public_key"] == httpx.get(peer.url + "/.well-known/fairimage-node").json()["public_key"]
    again = atlas.cli("peer", "add", clinic.url)
    assert again.returncode != 0 and "already added" in again.stderr
    outcomes = {outcome["peer"]: outcome for outcome in atlas.json("harvest")}
    # the clinic publishes its public study whole and its restricted one as a title with conditions; its
    # private study not at all
    assert (outcomes["clinic"]["kept"], outcomes["archive"]["kept"]) == (2, 1), outcomes
    listed = {peer["name"]: peer for peer in atlas.json("peer", "list")}
    assert listed["clinic"]["records"] == 2 and listed["archive"]["records"] == 1

    found = _federated(atlas, "zebrafish neurons")
    by_node = {hit["node"]: hit for hit in found["studies"]}
    assert set(by_node) == {"atlas", "clinic", "archive"}, found["studies"]
    assert by_node["clinic"]["title"] == "Zebrafish neuron atlas clinic"
    assert by_node["clinic"]["url"] == f"{clinic.url}/studies/{clinic.studies['clinic-zebrafish']}"
    assert by_node["clinic"]["pid"] == f"{clinic.url}/pid/{clinic.studies['clinic-zebrafish']}"
    assert by_node["archive"]["source"] == "harvested" and by_node["atlas"]["source"] == "local"
    assert found["total"] == 3
    organisms = {count["value"]: count["count"] for count in found["facets"]["organism"]}
    assert organisms == {"NCBITaxon:7955": 3}  # summed over the three nodes
    assert "private" not in json.dumps(found)

    restricted = _federated(atlas, "liver")
    (hit,) = restricted["studies"]
    assert (hit["node"], hit["access"], hit["images"]) == ("clinic", "restricted", 0)
    assert hit["title"] == "Mouse liver sections"
    # the restricted study's record carries its title and access conditions, never its other metadata
    feed = httpx.get(clinic.url + "/federation/changes").json()
    (record,) = [c["study"] for c in feed["changes"] if c["id"] == clinic.studies["clinic-liver"]]
    assert record["conditions"] == {"policy": "restricted", "data_use": ["DUO:0000006", "DUO:0000021"]}
    assert record["description"] == "" and record["keywords"] == [] and "Widefield" not in json.dumps(feed)
    assert clinic.studies["clinic-private"] not in json.dumps(feed)  # named by a digest only
    assert len(feed["gone"]) == 1

    # the same over HTTP, with the local image hits beside
    answer = httpx.get(atlas.url + "/api/search", params={"q": "zebrafish", "scope": "federated"}).json()
    assert answer["total"] == 1 and len(answer["federated"]["studies"]) == 3
    assert {peer["name"]: peer["status"] for peer in answer["federated"]["peers"]} == {
        "archive": "harvested",
        "clinic": "harvested",
    }


def test_changes_at_a_peer_propagate_and_harvesting_again_changes_nothing(network: Network) -> None:
    atlas, clinic = network.atlas, network.clinic
    if not any(peer["name"] == "clinic" for peer in atlas.json("peer", "list")):
        atlas.json("peer", "add", clinic.url)
    atlas.json("harvest")
    assert [o["kept"] + o["dropped"] for o in atlas.json("harvest", "clinic")] == [0]  # idempotent
    assert clinic.cli("study", "policy", "clinic-zebrafish", "private").returncode == 0
    assert clinic.cli("study", "policy", "clinic-private", "public").returncode == 0
    (outcome,) = atlas.json("harvest", "clinic")
    assert (outcome["kept"], outcome["dropped"]) == (1, 1), outcome
    titles = {hit["title"] for hit in _federated(atlas, "zebrafish")["studies"] if hit["node"] == "clinic"}
    assert titles == {"Zebrafish neuron atlas private"}
    assert clinic.cli("study", "policy", "clinic-zebrafish", "public").returncode == 0
    assert clinic.cli("study", "policy", "clinic-private", "private").returncode == 0
    atlas.json("harvest", "clinic")


def test_live_search_reports_a_peer_that_is_down_and_answers_from_its_records(network: Network) -> None:
    atlas, archive = network.atlas, network.archive
    for peer in (network.clinic, archive):
        if not any(p["name"] == peer.name for p in atlas.json("peer", "list")):
            atlas.json("peer", "add", peer.url)
    atlas.json("harvest")
    live = _federated(atlas, "zebrafish", "--live")
    statuses = {peer["name"]: peer["status"] for peer in live["peers"]}
    assert statuses == {"archive": "live", "clinic": "live"}
    assert {hit["node"]: hit["source"] for hit in live["studies"]}["archive"] == "live"
    assert len({hit["pid"] for hit in live["studies"]}) == len(live["studies"])  # one hit per PID
    archive.stop()
    try:
        started = time.monotonic()
        answer = httpx.get(
            atlas.url + "/api/search", params={"q": "zebrafish", "scope": "federated", "live": "true"}
        ).json()["federated"]
        assert time.monotonic() - started < 1.5 + 1.0  # the peer timeout, and some margin
        statuses = {peer["name"]: peer["status"] for peer in answer["peers"]}
        assert statuses == {"archive": "down", "clinic": "live"}
        archived = [hit for hit in answer["studies"] if hit["node"] == "archive"]
        assert [hit["source"] for hit in archived] == ["harvested"]  # its harvested record answers for it
    finally:
        archive.serve()
        assert atlas.cli("peer", "remove", "archive").returncode == 0
        atlas.json("peer", "add", archive.url)

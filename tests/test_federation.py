"""Federation between real nodes: separate `fairimage serve` processes with their own repositories and
ports on 127.0.0.1, one with its catalog on PostgreSQL and one with its objects in S3 (moto's server). The
harvesting node adds the others as peers, harvests their feeds and searches them with its own records,
through the command line and HTTP as their users would."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tifffile
import yaml
import zarr
from sqlalchemy import create_engine, text

from fairimage.model.governance.policy import operator
from fairimage.services.curation import study_metadata
from fairimage.services.discovery import images
from fairimage.services.governance import policies
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.recovery import open_repository
from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from tests.conftest import FAIRIMAGE, LiveServer, _free_port, new_bucket, run_cli

ADMIN = operator("test")

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
FLY = """
study:
  title: Fly brain sections
  description: Serial sections of an adult Drosophila brain
  license: CC0-1.0
study_components:
  - name: sections
    description: one section per plane
    imaging_methods: [FBbi:00000251]
    biosample: brain
biosamples:
  - id: brain
    organism: NCBITaxon:7227
    biological_entity: adult brain
"""


@dataclass
class Node:
    name: str
    repo: Path
    url: str = ""
    server: subprocess.Popen[bytes] | None = None
    studies: dict[str, str] = field(default_factory=dict)  # name -> id
    images: dict[str, str] = field(default_factory=dict)  # study name -> its image's id

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

    def ingest(
        self, folder: Path, study: str, metadata: str, seed: int, policy: str = "public", side: int = 32
    ) -> None:
        """A study of one image (``side`` pixels square, in chunks of 8 KiB) with its REMBI metadata, made
        through the services (the setup, not what these tests are about)."""
        folder.mkdir(parents=True)
        rng = np.random.default_rng(seed)
        image = folder / f"{study}.tif"
        tifffile.imwrite(image, rng.integers(0, 4000, (side, side), dtype=np.uint16))
        repository = open_repository(load_settings(self.repo, chunk_bytes=8192))
        try:
            ingest_paths(repository, [image], study=study)
            study_metadata.set_metadata(repository, ADMIN, study, yaml.safe_load(metadata))
            if policy != "public":
                policies.set_policy(repository, ADMIN, study, policy)
            self.studies[study] = images.get_study(repository, ADMIN, study).id
            self.images[study] = images.list_images(repository, ADMIN, study).items[0].id
        finally:
            repository.close()


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
    init_repository(load_settings(atlas.repo)).close()
    init_repository(
        load_settings(clinic.repo, db=f"{postgres_server}?options=-csearch_path%3D{schema}")
    ).close()
    storage = f"s3://{new_bucket(s3_endpoint)}/repo"
    init_repository(load_settings(archive.repo, storage=storage, s3_endpoint=s3_endpoint)).close()
    _configure(atlas, "peer_timeout = 1.5")
    _configure(clinic)
    _configure(archive)
    atlas.ingest(root / "in-atlas", "local-zebrafish", ZEBRAFISH.format(node="here"), 1)
    clinic.ingest(root / "in-clinic-1", "clinic-zebrafish", ZEBRAFISH.format(node="clinic"), 2)
    clinic.ingest(root / "in-clinic-2", "clinic-liver", MOUSE, 3, "restricted")
    clinic.ingest(root / "in-clinic-3", "clinic-private", ZEBRAFISH.format(node="private"), 4, "private")
    assert clinic.cli("study", "consent", "clinic-liver", "HMB", "--modifier", "IRB").returncode == 0
    archive.ingest(root / "in-archive", "archive-zebrafish", ZEBRAFISH.format(node="archive"), 5)
    archive.ingest(root / "in-archive-em", "archive-em", FLY, 6, side=512)  # about 90 objects
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
    assert (outcomes["clinic"]["kept"], outcomes["archive"]["kept"]) == (2, 2), outcomes
    listed = {peer["name"]: peer for peer in atlas.json("peer", "list")}
    assert listed["clinic"]["records"] == 2 and listed["archive"]["records"] == 2

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

    # the search page, with its "other nodes too" link followed
    page = httpx.get(f"{atlas.url}/search", params={"q": "zebrafish", "scope": "federated"}).text
    assert "Across the network: 3 studies" in page and "Zebrafish neuron atlas clinic" in page
    assert f'href="{clinic.url}/studies/{clinic.studies["clinic-zebrafish"]}"' in page

    # a peer's study resolves here to its PID there
    for study in (clinic.studies["clinic-zebrafish"], clinic.studies["clinic-liver"]):
        resolved = httpx.get(f"{atlas.url}/pid/{study}", follow_redirects=False)
        assert (resolved.status_code, resolved.headers["location"]) == (303, f"{clinic.url}/pid/{study}")
    assert httpx.get(f"{atlas.url}/pid/{clinic.studies['clinic-private']}").status_code == 404

    # a peer's image is not harvested, by id: asked here, the peers are asked, and it is pointed to there
    image = clinic.images["clinic-zebrafish"]
    resolved = httpx.get(f"{atlas.url}/pid/{image}", follow_redirects=False)
    assert (resolved.status_code, resolved.headers["location"]) == (303, f"{clinic.url}/pid/{image}")
    drs = httpx.get(f"{atlas.url}/ga4gh/drs/v1/objects/{image}", follow_redirects=False)
    assert (drs.status_code, drs.headers["location"]) == (307, f"{clinic.url}/ga4gh/drs/v1/objects/{image}")
    followed = httpx.get(f"{atlas.url}/ga4gh/drs/v1/objects/{image}", follow_redirects=True)
    assert followed.json()["id"] == image and followed.json()["self_uri"].endswith(f"/{image}")
    for hidden in (clinic.images["clinic-private"], clinic.images["clinic-liver"], "img-nothing0here"):
        assert httpx.get(f"{atlas.url}/pid/{hidden}").status_code == 404  # the peer says nothing of them
        assert httpx.get(f"{atlas.url}/ga4gh/drs/v1/objects/{hidden}").status_code == 404
    forwarded = httpx.get(f"{atlas.url}/pid/{image}", headers={"Fairimage-Forwarded": "1"})
    assert forwarded.status_code == 404  # a peer's question is answered from this node's own records

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


def _peer(node: Node, other: Node) -> None:
    if not any(p["name"] == other.name for p in node.json("peer", "list")):
        node.json("peer", "add", other.url)


def _rewrite_history(node: Node, seq: int) -> None:
    """What an operator hiding something would do to their own catalog: change an old entry and recompute
    every hash after it, and the head, so that the chain itself still verifies; and drop the checkpoints."""
    from fairimage.services.governance.audit import entry_hash

    engine = create_engine(load_settings(node.repo).db)
    with engine.begin() as connection:
        rows = [
            dict(row._mapping) for row in connection.execute(text("select * from audit_log order by seq"))
        ]
        previous = rows[seq - 2]["entry_hash"]
        rows[seq - 1]["details"] = json.dumps({"note": "nothing happened here"})
        for row in rows[seq - 1 :]:
            row["prev_hash"] = previous
            row["entry_hash"] = previous = entry_hash(row)
            connection.execute(
                text(
                    "update audit_log set details=:details, prev_hash=:prev_hash, entry_hash=:entry_hash "
                    "where seq=:seq"
                ),
                row,
            )
        connection.execute(text("update audit_head set entry_hash=:hash"), {"hash": previous})
        connection.execute(text("delete from audit_checkpoints"))
    engine.dispose()


def test_witnesses_catch_a_node_that_rewrites_its_history(network: Network) -> None:
    atlas, clinic, archive = network.atlas, network.clinic, network.archive
    for witness in (atlas, archive):
        _peer(witness, clinic)
        _peer(clinic, witness)
    first = {o["peer"]: o for o in atlas.json("witness", "clinic")}["clinic"]
    assert first["status"] == "cosigned" and first["size"] > 3
    assert archive.json("witness", "clinic")[0]["status"] == "cosigned"
    assert atlas.json("witness", "clinic")[0]["status"] == "unchanged"
    assert clinic.cli("study", "describe", "clinic-liver", "Liver lobes, widefield").returncode == 0
    grown = atlas.json("witness", "clinic")[0]
    assert grown["status"] == "cosigned" and grown["size"] > first["size"]  # a consistency proof checked
    checked = clinic.json("audit", "verify", "--witnesses")
    assert checked["ok"], checked
    assert {w["peer"]: w["checkpoints"] for w in checked["witnesses"]} == {"atlas": 2, "archive": 1}

    _rewrite_history(clinic, 3)
    assert clinic.cli("audit", "verify").returncode == 0  # the chain alone cannot tell
    caught = clinic.cli("audit", "verify", "--witnesses")
    assert caught.returncode == 6, caught.stdout + caught.stderr
    assert (
        f"the first {first['size']} entries no longer hash to the checkpoint atlas cosigned" in caught.stderr
    )
    assert "archive: INCONSISTENT" in caught.stderr
    refused = atlas.cli("witness", "clinic")
    assert refused.returncode == 6 and "REFUSED" in refused.stderr and "rewritten" in refused.stderr
    (entry,) = atlas.json("audit", "log", "--action", "witness.refuse", "--limit", "1")
    assert entry["target"] == "peer:clinic" and entry["decision"] == "refused"


class Proxy:
    """A peer's node seen through a proxy in the test process (its own address, so the node names its
    records with it), which can corrupt chunks on their way (the first time each is asked for, or every
    time) or stall after some chunks, as a failing network or disk would."""

    def __init__(self, origin: str) -> None:
        self.origin, self.corrupt, self.stall_after = origin, "", -1
        self.chunks, self.corrupted, self.released = 0, set[str](), threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                answer = httpx.get(proxy.origin + self.path, headers={"host": self.headers["host"]})
                body = answer.content
                if "/zarr/" in self.path and answer.status_code == 200:
                    body = proxy.chunk(self.path, body)
                self.send_response(answer.status_code)
                for name in ("content-type", "fairimage-signature"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def chunk(self, path: str, body: bytes) -> bytes:
        self.chunks += 1
        if self.stall_after >= 0 and self.chunks > self.stall_after:
            self.released.wait(60)
        if self.corrupt == "always" or (self.corrupt == "once" and path not in self.corrupted):
            self.corrupted.add(path)
            return bytes([body[0] ^ 0xFF]) + body[1:]
        return body

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()


@pytest.fixture
def copy(network: Network, tmp_path: Path) -> Iterator[tuple[Node, Proxy]]:
    """A new node (not served) with the archive, seen through a proxy, as its peer."""
    proxy = Proxy(network.archive.url)
    node = Node("copy", tmp_path / "copy")
    init_repository(load_settings(node.repo)).close()
    node.json("peer", "add", proxy.url, "--name", "archive")
    yield node, proxy
    proxy.close()


def _mirror(node: Node, study: str) -> dict[str, Any]:
    outcomes = node.cli("mirror", study, "--from", "archive", "--json")
    (outcome,) = json.loads(outcomes.stdout)
    return dict(outcome, returncode=outcomes.returncode)


def test_a_public_study_is_mirrored_checked_and_served_read_only(network: Network) -> None:
    atlas, archive = network.atlas, network.archive
    _peer(atlas, archive)
    study = archive.studies["archive-zebrafish"]
    (outcome,) = atlas.json("mirror", f"{archive.url}/pid/{study}", "--from", "archive")
    assert outcome["status"] == "mirrored" and outcome["fetched"] == outcome["objects"] > 0, outcome
    image = outcome["image"]
    here = zarr.open_group(f"{atlas.url}/zarr/{image}.ome.zarr", mode="r")["0"][...]
    there = zarr.open_group(f"{archive.url}/zarr/{image}.ome.zarr", mode="r")["0"][...]
    assert here.shape == (32, 32) and np.array_equal(here, there)  # pixel-exact, from S3 to a folder
    shown = httpx.get(f"{atlas.url}/api/studies/{study}").json()
    assert shown["mirror_of"] == f"{archive.url}/pid/{study}" and shown["name"] == "archive-zebrafish"
    assert (
        f'Mirror of</dt><dd><a href="{archive.url}/pid/{study}"'
        in httpx.get(f"{atlas.url}/studies/{study}").text
    )
    assert atlas.json("mirror", study, "--from", "archive")[0]["status"] == "already_present"
    refused = atlas.cli("study", "describe", study, "changed here")
    assert refused.returncode != 0 and f"is a mirror of {archive.url}/pid/{study}" in refused.stderr
    assert atlas.cli("fixity").returncode == 0  # every mirrored object against the origin's manifest
    hits = [hit for hit in _federated(atlas, "zebrafish", "--live")["studies"] if hit["pid"].endswith(study)]
    assert [(hit["node"], hit["source"]) for hit in hits] == [("atlas", "local")]  # the mirror stands for it


def test_a_chunk_that_fails_its_checksum_is_fetched_again_and_never_kept(
    network: Network, copy: tuple[Node, Proxy]
) -> None:
    node, proxy = copy
    study = network.archive.studies["archive-em"]
    proxy.corrupt = "always"
    failed = _mirror(node, study)
    assert failed["returncode"] == 5 and "failed its checksum 3 times" in failed["error"]
    assert node.json("images") == []  # nothing published
    proxy.corrupt, proxy.corrupted = "once", set()
    done = _mirror(node, study)
    assert (done["status"], done["returncode"]) == ("mirrored", 0)
    assert done["refetched"] == done["fetched"] > 80  # each object once bad, then good


def test_a_mirror_killed_half_way_goes_on_from_what_it_has(
    network: Network, copy: tuple[Node, Proxy]
) -> None:
    node, proxy = copy
    study = network.archive.studies["archive-em"]
    proxy.stall_after = 40
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRIMAGE_")}
    command = [FAIRIMAGE, "mirror", study, "--from", "archive", "--repo", str(node.repo), "--json"]
    running = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    while proxy.chunks <= 40 + 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the chunks before the stall are written
    running.kill()
    running.wait()
    proxy.stall_after, proxy.chunks = -1, 0
    proxy.released.set()
    assert node.json("images") == []
    resumed = _mirror(node, study)
    assert resumed["status"] == "mirrored", resumed
    assert resumed["reused"] >= 30 and resumed["reused"] + resumed["fetched"] == resumed["objects"]


def test_serve_harvests_and_witnesses_its_peers_on_a_schedule(network: Network, tmp_path: Path) -> None:
    watcher = Node("watcher", tmp_path / "watcher")
    init_repository(load_settings(watcher.repo)).close()
    watcher.json("peer", "add", network.clinic.url)
    settings = load_settings(watcher.repo, federation_hours=0.5 / 3600)
    with LiveServer(settings):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            peers = watcher.json("peer", "list")
            cosigned = watcher.json("audit", "log", "--action", "witness.cosign")
            if peers[0]["records"] and cosigned:
                break
            time.sleep(0.5)
    assert peers[0]["records"] >= 1 and peers[0]["harvested_at"], peers
    assert cosigned and cosigned[0]["actor"] == "operator:federation-schedule"

"""Federated learning between real nodes, as a researcher and a data steward meet it: 'fairimage train' on
the coordinating node (SQLite) trains a pixel classifier with Flower on its own labelled images and on a
restricted study of another node (a served repository on PostgreSQL), where only an approved plan runs.
What crosses between them passes a TCP proxy that keeps every byte: weights go, pixels never do. The
federated model is compared with the same model trained on the pooled data."""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tifffile
import yaml
from sqlalchemy import create_engine, text

from fairimage.model.federation import pixels
from fairimage.model.governance.policy import Role, Scope, operator
from fairimage.model.labels import MadeBy
from fairimage.services.datasets.datasets import DatasetRequest, create_dataset, get_dataset
from fairimage.services.federation.analyses import Item, labelled_pixels
from fairimage.services.governance import accounts, audit, policies
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.labels.labels import add_label
from fairimage.services.recovery import open_repository
from fairimage.services.repository import init_repository
from fairimage.settings import Settings, load_settings
from tests.conftest import LiveServer, _free_port, run_cli

ADMIN = operator("test")
SIDE = 96
ROUNDS, EPOCHS = 4, 25


def _cells(seed: int, gain: float) -> tuple[np.ndarray, np.ndarray]:
    """A noisy plane of bright round cells, and its label (one id per cell)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIDE, :SIDE]
    mask = np.zeros((SIDE, SIDE), np.uint16)
    for cell in range(10):
        y, x, r = rng.integers(8, SIDE - 8), rng.integers(8, SIDE - 8), rng.integers(4, 9)
        mask[(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = cell + 1
    plane = (300 + rng.normal(0, 150, mask.shape) + (mask > 0) * 300) * gain
    return np.clip(plane, 0, 65535).astype(np.uint16), mask


class CountingProxy:
    """A TCP proxy in front of the coordinator that keeps every byte the nodes send it."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.upstream = bytearray()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        try:
            while data := source.recv(65536):
                if upstream:
                    with self.lock:
                        self.upstream.extend(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)


@dataclass
class Nodes:
    atlas: Path  # coordinates; holds a public study
    clinic: Path  # served, PostgreSQL; holds a restricted study
    clinic_settings: Settings
    clinic_url: str
    atlas_url: str
    tokens: Path  # the researcher's token at the clinic
    visitor_tokens: Path  # another granted reader's, for whom no plan is approved
    proxy: CountingProxy
    planes: list[np.ndarray]  # every image's pixels, on both nodes


def _study(settings: Settings, root: Path, study: str, seeds: range, gain: float) -> list[np.ndarray]:
    """A study of labelled cell images, and a dataset of them (train 60%, test 40%)."""
    repository = open_repository(settings)
    planes = []
    try:
        paths, masks = [], []
        for seed in seeds:
            plane, mask = _cells(seed, gain)
            paths.append(root / f"{study}-{seed}.tif")
            masks.append(root / f"{study}-{seed}-mask.tif")
            tifffile.imwrite(paths[-1], plane)
            tifffile.imwrite(masks[-1], mask)
            planes.append(plane)
        outcomes = ingest_paths(repository, paths, study=study)
        for outcome, mask_path in zip(outcomes, masks, strict=True):
            add_label(repository, ADMIN, outcome.images[0], mask_path, "cells", MadeBy("person", "Ada"))
        create_dataset(repository, ADMIN, DatasetRequest(f"{study}-cells", (study,), "60/40", label="cells"))
    finally:
        repository.close()
    return planes


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, postgres_server: str) -> Iterator[Nodes]:
    root = tmp_path_factory.mktemp("learning")
    schema = f"fi_fl_{secrets.token_hex(4)}"
    engine = create_engine(postgres_server)
    with engine.begin() as connection:
        connection.execute(text(f"create schema {schema}"))
    atlas, clinic = root / "atlas", root / "clinic"
    coordinator = _free_port()
    proxy = CountingProxy(coordinator)
    init_repository(load_settings(atlas)).close()
    (atlas / "fairimage.toml").write_text(
        (atlas / "fairimage.toml").read_text()
        + f'coordinator_listen = "127.0.0.1:{coordinator}"\ncoordinator_address = "127.0.0.1:{proxy.port}"\n'
    )
    clinic_settings = load_settings(clinic, db=f"{postgres_server}?options=-csearch_path%3D{schema}")
    repository = init_repository(clinic_settings)
    tokens = {}
    for user in ("researcher", "visitor"):  # both granted the restricted study; the plan approved for one
        accounts.add_user(repository, ADMIN, user, Role.VIEWER)
        tokens[user] = accounts.create_token(repository, ADMIN, user, Scope.WRITE).secret
    repository.close()
    planes = _study(load_settings(atlas), root, "atlas-cells", range(0, 14), 1.0)
    planes += _study(clinic_settings, root, "clinic-cells", range(100, 114), 2.5)
    repository = open_repository(clinic_settings)
    policies.set_policy(repository, ADMIN, "clinic-cells", "restricted")
    for user in tokens:
        policies.add_grant(repository, ADMIN, "clinic-cells", user)
    repository.close()
    for user, token in tokens.items():
        (root / f"{user}.yaml").write_text(yaml.safe_dump({"clinic": token}))
    try:
        with LiveServer(clinic_settings) as clinic_server, LiveServer(load_settings(atlas)) as atlas_server:
            assert (
                run_cli("peer", "add", clinic_server.url, "--name", "clinic", "--repo", atlas).returncode == 0
            )
            assert (
                run_cli("peer", "add", atlas_server.url, "--name", "atlas", "--repo", clinic).returncode == 0
            )
            yield Nodes(
                atlas,
                clinic,
                clinic_settings,
                clinic_server.url,
                atlas_server.url,
                root / "researcher.yaml",
                root / "visitor.yaml",
                proxy,
                planes,
            )
    finally:
        proxy.listener.close()
        with engine.begin() as connection:
            connection.execute(text(f"drop schema {schema} cascade"))
        engine.dispose()


def _approve(nodes: Nodes) -> None:
    """The clinic's steward approves the plan (approving again is the same approval)."""
    approved = run_cli(
        "analysis", "approve", "train_pixel_classifier", "clinic-cells-cells:1", "--for", "researcher",
        "--repo", nodes.clinic,
    )  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    assert "researcher may run train_pixel_classifier" in approved.stdout


def _train(nodes: Nodes, version: str, *more: str, tokens: Path | None = None) -> Any:
    return run_cli(
        "train", "cells-fl", "--version", version, "--on", "here=atlas-cells-cells:1",
        "--on", "clinic=clinic-cells-cells:1", "--tokens", tokens or nodes.tokens, "--rounds", str(ROUNDS),
        "--param", f"epochs={EPOCHS}", *more, "--repo", nodes.atlas,
    )  # fmt: skip


def test_a_restricted_dataset_takes_part_only_in_an_approved_plan(nodes: Nodes) -> None:
    refused = _train(nodes, "0", tokens=nodes.visitor_tokens)
    assert refused.returncode != 0
    assert "node clinic: dataset clinic-cells-cells:1 holds restricted studies" in refused.stderr
    assert "fairimage analysis approve train_pixel_classifier clinic-cells-cells:1 --for visitor" in (
        refused.stderr
    )
    assert "Traceback" not in refused.stderr
    listed = run_cli("model", "list", "--json", "--repo", nodes.atlas)
    assert "cells-fl" not in listed.stdout  # nothing registered of a run that did not happen
    token = yaml.safe_load(nodes.tokens.read_text())["clinic"]
    elsewhere = httpx.post(
        f"{nodes.clinic_url}/api/analyses/train_pixel_classifier/runs",
        json={"dataset": "clinic-cells-cells:1", "parameters": {"coordinator": "10.9.9.9:9", "session": "s"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert elsewhere.status_code == 400
    assert "10.9.9.9 is not the host of a peer of this node" in elsewhere.json()["error"]["message"]
    stranger = run_cli(
        "train", "x", "--on", "here=atlas-cells-cells:1", "--on", "nowhere=a:1", "--repo", nodes.atlas
    )
    assert stranger.returncode != 0 and "peer 'nowhere' not found" in stranger.stderr


def test_federated_training_matches_pooled_training_and_only_weights_cross(nodes: Nodes) -> None:
    _approve(nodes)
    before = len(nodes.proxy.upstream)
    trained = _train(nodes, "1", "--json")
    assert trained.returncode == 0, trained.stderr
    result = json.loads(trained.stdout)
    assert [r["round"] for r in result["rounds"]] == list(range(1, ROUNDS + 1))
    assert all(r["nodes"] == 2 for r in result["rounds"])
    parts = {part["node"]: part for part in result["nodes"]}
    assert set(parts) == {"here", "clinic"} and parts["clinic"]["images"] >= 5

    # The card names each node's dataset by PID; the clinic's data stayed there.
    model = result["model"]
    peer = model["card"]["trained_on_peers"][0]
    assert peer["url"] == f"{nodes.clinic_url}/pid/{parts['clinic']['dataset']}"
    assert peer["node"] == "clinic" and peer["run"] == parts["clinic"]["run"]
    assert [link["dataset_id"] for link in model["data"]] == [parts["here"]["dataset"]]
    assert not model["trained_on_public_data"]
    assert "only weights did" in model["training_data"]
    page = httpx.get(f"{nodes.atlas_url}/models/{model['id']}").text
    assert "Trained at node <strong>clinic</strong>" in page and parts["clinic"]["dataset"] in page

    # Federated against pooled: the same model, the same pixels, trained in one place.
    federated = _weights(nodes, result)
    pooled_x, pooled_y, test = _pooled(nodes)
    pooled = np.zeros(pixels.WEIGHTS)
    for _ in range(ROUNDS):
        pooled = pixels.train(pooled, pooled_x, pooled_y, EPOCHS, 1.0)
    on_test = {
        name: sum((pixels.score(w, x, y) for x, y in test), pixels.Score(0, 0, 0.0)).accuracy
        for name, w in (("federated", federated), ("pooled", pooled))
    }
    assert on_test["pooled"] > 0.85, on_test
    assert abs(on_test["federated"] - on_test["pooled"]) <= 0.03, on_test
    assert abs(result["accuracy"] - on_test["federated"]) < 1e-3  # the nodes' own scores agree

    # What the nodes sent the coordinator: a few kilobytes a round, not one image's pixels.
    sent = bytes(nodes.proxy.upstream[before:])
    assert 0 < len(sent) < 64 * 1024 * ROUNDS
    assert sum(plane.nbytes for plane in nodes.planes) > 10 * len(sent)
    for plane in nodes.planes:
        raw = plane.tobytes()
        assert not any(raw[i : i + 32] in sent for i in range(0, len(raw) - 32, 997))

    # The clinic's audit log says who ran what on which data, and that it was approved.
    repository = open_repository(nodes.clinic_settings)
    try:
        entries = [e for e in audit.entries(repository, 200) if e.action.startswith("analysis.")]
    finally:
        repository.close()
    assert [e.action for e in entries][:2] == ["analysis.run", "analysis.approve"]  # newest first
    run = entries[0]
    assert run.actor == "researcher" and run.decision == "released"
    assert (
        run.details["run"] == parts["clinic"]["run"] and run.details["analysis"] == "train_pixel_classifier"
    )
    page = httpx.get(f"{nodes.clinic_url}/api/analysis-runs/{parts['clinic']['run']}")
    assert page.status_code in (401, 403, 404) and "weights" not in page.text  # the researcher's run


def _weights(nodes: Nodes, result: dict[str, Any]) -> np.ndarray:
    """The model's weights as its registered weights.json gives them, to anyone (a model is public)."""
    model = result["model"]
    assert model["files"] == ["card.yaml", "weights.json"]
    stored = httpx.get(f"{nodes.atlas_url}/api/models/{model['id']}/files/weights.json").json()
    assert stored["features"] == list(pixels.FEATURES)
    weights = np.asarray([*stored["weights"], stored["bias"]])
    assert np.allclose(weights, result["weights"])
    return weights


def _pooled(nodes: Nodes) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Both nodes' train pixels, sampled as the nodes sample them, and their test planes."""
    xs, ys, test = [], [], []
    for settings, name in (
        (load_settings(nodes.atlas), "atlas-cells-cells"),
        (nodes.clinic_settings, "clinic-cells-cells"),
    ):
        repository = open_repository(settings)
        try:
            items = [
                Item(i.image_id, i.split, i.label_id) for i in get_dataset(repository, ADMIN, name, 1).items
            ]
            rng = np.random.default_rng(0)
            for x, y in labelled_pixels(repository, [i for i in items if i.split == "train"], 0):
                chosen = pixels.sample(4096, len(y), rng)
                xs.append(x[chosen])
                ys.append(y[chosen])
            test += list(labelled_pixels(repository, [i for i in items if i.split == "test"], 0))
        finally:
            repository.close()
    return np.vstack(xs), np.concatenate(ys), test


def test_a_node_whose_weights_may_not_leave_ends_the_run_and_says_so(nodes: Nodes) -> None:
    _approve(nodes)
    config = nodes.atlas / "fairimage.toml"
    kept = config.read_text()
    config.write_text(kept + "min_cell = 50\n")  # more images than the atlas's train split has
    try:
        failed = _train(nodes, "2")
    finally:
        config.write_text(kept)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert "node here: analysis train_pixel_classifier failed" in failed.stderr
    assert "a model trained on fewer than 50 images does not leave this node" in failed.stderr
    shown = run_cli("model", "show", "cells-fl@2", "--repo", nodes.atlas)
    assert shown.returncode != 0  # nothing registered

"""Analyses that go to the data, as a researcher meets them over HTTP and an operator at the command line:
only the node's allow-listed analyses run, on datasets the caller may read, in a process of their own
within limits; only aggregates leave, small cells suppressed; outputs over a restricted study wait for its
owner; every run is audited."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from fairimage.model.governance.policy import Role, Scope, operator
from fairimage.services.datasets.datasets import DatasetRequest, create_dataset
from fairimage.services.governance import accounts, audit, policies
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer, run_cli

ADMIN = operator("test")


@dataclass
class Node:
    url: str
    repo: Path
    tokens: dict[str, str]

    def client(self, who: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.tokens[who]}"}, timeout=60
        )


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A public study of 6 uint16 and 2 uint8 images and a restricted one of 6, a dataset over each; a
    researcher granted the restricted study, a stranger, and the restricted study's owner."""
    root = tmp_path_factory.mktemp("analyses")
    settings = load_settings(root / "repo")
    repository = init_repository(settings)
    tokens = {}
    for name, role in (("researcher", Role.VIEWER), ("stranger", Role.VIEWER), ("owner", Role.SUBMITTER)):
        accounts.add_user(repository, ADMIN, name, role)
        tokens[name] = accounts.create_token(repository, ADMIN, name, Scope.WRITE).secret
    for study, count, dtype, offset in (
        ("cells", 6, "uint16", 0),
        ("cells", 2, "uint8", 50),
        ("patients", 6, "uint16", 100),
    ):
        for index in range(count):
            pixels = np.full((24, 24), offset + 10 * index + 1, dtype)
            ingest_paths(
                repository, [samples.png(root / f"{study}-{dtype}-{index}.png", pixels)], study=study
            )
    policies.set_owner(repository, ADMIN, "patients", "owner")
    policies.set_policy(repository, ADMIN, "patients", "restricted")
    policies.add_grant(repository, ADMIN, "patients", "researcher")
    for name, study in (("cells-all", "cells"), ("patients-all", "patients")):
        create_dataset(repository, ADMIN, DatasetRequest(name, (study,), "100/0/0"))
    repository.close()
    with LiveServer(settings) as server:
        yield Node(server.url, root / "repo", tokens)


def _run(client: httpx.Client, analysis: str, dataset: str, **parameters: str) -> dict[str, Any]:
    """Start a run, follow its job to the end, and return the run as the caller sees it then."""
    started = client.post(
        f"/api/analyses/{analysis}/runs", json={"dataset": dataset, "parameters": parameters}
    )
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 120
    while (job := client.get(started.headers["location"]).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["status"] == "done", job
    run: dict[str, Any] = client.get(job["result"]["url"]).json()
    return run


def test_aggregates_leave_small_cells_do_not(node: Node) -> None:
    with node.client("stranger") as client:
        assert [a["name"] for a in client.get("/api/analyses").json()] == [
            "intensity_statistics",
            "image_counts",
            "train_pixel_classifier",
        ]
        run = _run(client, "intensity_statistics", "cells-all")
        assert run["status"] == "released" and run["images"] == 8
        (row,) = run["outputs"]["table"]  # one row per channel, never one per image
        assert row["n"] == 8 and row["min"] == 1 and row["max"] == 61
        assert row["mean"] == pytest.approx(np.mean([1, 11, 21, 31, 41, 51, 50 + 1, 50 + 11]))
        counts = _run(client, "image_counts", "cells-all", by="dtype")["outputs"]
        assert counts["min_cell"] == 5
        assert counts["table"] == [
            {"dtype": "uint16", "n": 6},
            {"dtype": "uint8", "n": "suppressed", "note": "fewer than 5 images"},  # 2 images: suppressed
        ]


def test_only_the_allow_list_runs_and_only_on_data_the_caller_may_read(node: Node) -> None:
    with node.client("stranger") as client:
        unknown = client.post("/api/analyses/shell/runs", json={"dataset": "cells-all"})
        assert (
            unknown.status_code == 404
            and "intensity_statistics, image_counts" in unknown.json()["error"]["message"]
        )
        bad = client.post(
            "/api/analyses/image_counts/runs", json={"dataset": "cells-all", "parameters": {"by": "name"}}
        )
        assert (
            bad.status_code == 400
            and "dtype, dimensionality, channels or split" in bad.json()["error"]["message"]
        )
        extra = client.post(
            "/api/analyses/image_counts/runs", json={"dataset": "cells-all", "parameters": {"code": "x"}}
        )
        assert extra.status_code == 400 and "no parameter 'code'" in extra.json()["error"]["message"]
        hidden = client.post("/api/analyses/intensity_statistics/runs", json={"dataset": "patients-all"})
        assert hidden.status_code == 404  # a restricted study the stranger was not granted
    anonymous = httpx.post(
        f"{node.url}/api/analyses/intensity_statistics/runs", json={"dataset": "cells-all"}
    )
    assert anonymous.status_code in (401, 403)


def test_outputs_over_a_restricted_study_wait_for_its_owner(node: Node) -> None:
    with node.client("researcher") as researcher, node.client("owner") as owner:
        run = _run(researcher, "intensity_statistics", "patients-all")
        assert (run["status"], run["outputs"]) == ("pending_review", None)
        assert (
            owner.get(f"/api/analysis-runs/{run['id']}").json()["outputs"]["table"][0]["n"] == 6
        )  # to review
        with node.client("stranger") as stranger:
            assert stranger.get(f"/api/analysis-runs/{run['id']}").status_code == 404
            assert stranger.post(f"/api/analysis-runs/{run['id']}/release").status_code == 404
        assert researcher.post(f"/api/analysis-runs/{run['id']}/release").status_code == 404  # not their call
        released = owner.post(f"/api/analysis-runs/{run['id']}/release")
        assert released.status_code == 200 and released.json()["status"] == "released"
        shown = researcher.get(f"/api/analysis-runs/{run['id']}").json()
        assert shown["outputs"]["table"][0]["n"] == 6
    entries = audit.entries(_repository(node), 20)
    actions = [(e.action, e.actor, e.details.get("run")) for e in entries if e.action.startswith("analysis.")]
    assert ("analysis.release", "owner", run["id"]) in actions and (
        "analysis.run",
        "researcher",
        run["id"],
    ) in actions


def _repository(node: Node) -> Any:
    from fairimage.services.recovery import open_repository

    return open_repository(load_settings(node.repo))


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("analysis_seconds = 0.3", "ran out of time (0.3 s, analysis_seconds)"),
        ("analysis_memory_mb = 48", "(the limit is 48 MB, analysis_memory_mb)"),
    ],
)
def test_a_run_that_exceeds_its_limits_is_stopped_and_recorded(
    node: Node, tmp_path: Path, setting: str, words: str
) -> None:
    repo = tmp_path / "limited"
    run_cli("init", repo, check=True)
    (repo / "fairimage.toml").write_text((repo / "fairimage.toml").read_text() + setting + "\n")
    image = samples.png(tmp_path / "one.png", np.full((16, 16), 7, np.uint8))
    run_cli("ingest", image, "--study", "one", "--repo", repo, check=True)
    run_cli("dataset", "create", "one", "--from", "one", "--split", "100/0/0", "--repo", repo, check=True)
    result = run_cli("analysis", "run", "intensity_statistics", "--dataset", "one", "--repo", repo)
    assert result.returncode == 5 and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    logged = run_cli("audit", "log", "--action", "analysis.run", "--json", "--repo", repo, check=True)
    assert '"decision": "failed"' in logged.stdout


def test_a_federated_part_needs_labels_a_peer_coordinator_and_sane_parameters(node: Node) -> None:
    """The refusals of train_pixel_classifier, before anything runs (the runs themselves:
    tests/test_federated_learning.py)."""
    with node.client("researcher") as client:

        def refused(dataset: str, **parameters: str) -> str:
            answer = client.post(
                "/api/analyses/train_pixel_classifier/runs",
                json={"dataset": dataset, "parameters": parameters},
            )
            assert answer.status_code in (400, 403, 422), answer.text
            message: str = answer.json()["error"]["message"]
            return message

        assert "dataset cells-all:1 has none" in refused("cells-all", coordinator="127.0.0.1:1", session="s")
        assert "learning_rate='-1': the step size" in refused("cells-all", learning_rate="-1")
        assert "epochs='0'" in refused("cells-all", epochs="0")

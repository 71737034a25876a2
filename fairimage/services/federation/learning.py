"""Federated learning: a model trained where the data are, across nodes, with Flower. This node
coordinates: it starts a Flower server (FedAvg, in a process of its own), asks each node taking part to
run its allow-listed ``train_pixel_classifier`` on a dataset there as the researcher (with their token
at that node, or as the operator here), and waits while every round's weights come back and are averaged.
No pixel moves: each node reads its own data in its sandbox and sends weights only, checked by its own
rules (from at least ``min_cell`` images; over restricted studies only with the plan approved). The
final model is registered here with a card that names, by PID, each node's dataset version it learnt
from, its accuracy on each node's test split and the run's parameters."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from fairimage.model.errors import ConflictError, FairimageError, InvalidInputError, ProviderUnavailableError
from fairimage.model.federation import pixels
from fairimage.model.governance.policy import Principal, Scope
from fairimage.model.models import Author, Model, ModelCard, PeerDataset, Training
from fairimage.services.federation import compute, peers
from fairimage.services.governance import access, audit
from fairimage.services.models import models
from fairimage.services.repository import Repository

ANALYSIS = "train_pixel_classifier"
HERE = "here"  # a participant that is this node
POLL_SECONDS = 0.5
MAX_ROUNDS = 100


@dataclass(frozen=True)
class Participant:
    node: str  # a peer's name, or "here"
    dataset: str  # NAME, NAME:VERSION or the dataset version's id at that node
    token: str | None = None  # the researcher's API token at that node


@dataclass(frozen=True)
class Plan:
    name: str  # the model's name, registered here
    version: str
    participants: list[Participant]
    rounds: int = 5
    parameters: dict[str, str] = field(default_factory=dict)  # of train_pixel_classifier: epochs, ...


@dataclass(frozen=True)
class NodePart:
    node: str
    url: str  # the node's base URL ("" for this node)
    run: str  # the analysis run there
    dataset: str  # the dataset version's id there
    images: int
    evaluation: list[dict[str, Any]]  # its test-split row (suppressed under min_cell)


@dataclass(frozen=True)
class TrainingResult:
    model: Model
    weights: list[float]  # as its weights.json has them: one per feature, then the bias
    rounds: list[dict[str, Any]]
    nodes: list[NodePart]
    accuracy: float | None  # over every node's test pixels that may be reported


def train(
    repository: Repository,
    principal: Principal,
    plan: Plan,
    progress: Callable[[str], None] = lambda line: None,
) -> TrainingResult:
    """Run the plan and register its model; ConflictError naming the node and its reason if a part fails
    (nothing is registered then)."""
    access.require(principal, Scope.WRITE)
    _check_plan(repository, plan)
    urls = {p.node: "" if p.node == HERE else peers.pinned(repository, p.node).url for p in plan.participants}
    listen, address = _addresses(
        repository.settings.coordinator_listen, repository.settings.coordinator_address
    )
    session = secrets.token_urlsafe(24)
    parameters = {**plan.parameters, "coordinator": address, "session": session}
    compute.check_parameters(ANALYSIS, parameters)  # a bad one said once, before any node is asked
    seconds = repository.settings.analysis_seconds
    coordinator = _start_coordinator(listen, plan, session, seconds)
    rounds: list[dict[str, Any]] = []
    final: dict[str, Any] = {}
    reader = threading.Thread(target=_read_rounds, args=(coordinator, rounds, final, progress), daemon=True)
    reader.start()
    stopped = threading.Event()
    pool = ThreadPoolExecutor(len(plan.participants))
    progress(f"coordinator listening at {address}; asking {len(plan.participants)} nodes")
    try:
        # Every node checks the plan before any starts: a refusal ends the run before a round.
        started = {
            p.node: _prepare_here(repository, principal, p, parameters)
            if p.node == HERE
            else _start_remote(repository, p, urls[p.node], parameters, progress)
            for p in plan.participants
        }
        parts = {
            node: pool.submit(_follow, repository, principal, node, start, stopped, progress)
            for node, start in started.items()
        }
        _wait(coordinator, parts, seconds)
        done = [parts[p.node].result(timeout=60) for p in plan.participants]
    except BaseException:
        stopped.set()
        raise
    finally:
        if coordinator.poll() is None:
            coordinator.kill()
        coordinator.wait()
        pool.shutdown(wait=True)  # a node's client gives up soon once the coordinator is gone
        reader.join(timeout=5)
    if coordinator.returncode != 0 or "weights" not in final:
        raise ConflictError(f"the federated run failed at the coordinator: {_last_line(coordinator)}")
    return _register(repository, principal, plan, parameters, final, rounds, done)


def _check_plan(repository: Repository, plan: Plan) -> None:
    nodes = [p.node for p in plan.participants]
    if len(nodes) < 2:
        raise InvalidInputError("a federated run needs at least two nodes: give --on NODE=DATASET for each")
    if len(set(nodes)) != len(nodes):
        raise InvalidInputError(f"--on: each node takes part once ({', '.join(nodes)})")
    if not 1 <= plan.rounds <= MAX_ROUNDS:
        raise InvalidInputError(f"--rounds {plan.rounds}: give a whole number from 1 to {MAX_ROUNDS}")
    if models.find_model_id(repository, f"{plan.name}@{plan.version}") is not None:
        raise ConflictError(
            f"model {plan.name!r} version {plan.version} is already registered; give another --version"
        )


def _addresses(listen: str, advertised: str) -> tuple[str, str]:
    """Where the coordinator listens, and the address the nodes are given (the same unless a proxy or a
    NAT stands between); port 0 picks a free one."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise InvalidInputError(f"coordinator_listen = {listen!r}: give HOST:PORT, e.g. 0.0.0.0:9092")
    if port == "0":
        with socket.socket() as probe:
            probe.bind((host.strip("[]"), 0))
            port = str(probe.getsockname()[1])
    chosen = f"{host}:{port}"
    return chosen, advertised or chosen


def _start_coordinator(listen: str, plan: Plan, session: str, seconds: float) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "fairimage.services.federation.coordinator"]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdin is not None
    process.stdin.write(
        json.dumps(
            {
                "listen": listen,
                "nodes": len(plan.participants),
                "rounds": plan.rounds,
                "session": session,
                "weights": [0.0] * pixels.WEIGHTS,
                "round_seconds": seconds,
            }
        )
    )
    process.stdin.close()
    return process


def _read_rounds(
    process: subprocess.Popen[str],
    rounds: list[dict[str, Any]],
    final: dict[str, Any],
    progress: Callable[[str], None],
) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        try:
            said = json.loads(line)
        except ValueError:
            continue
        if "round" in said:
            rounds.append(said)
            progress(f"round {said['round']}: weights of {said['nodes']} nodes averaged")
        elif "weights" in said:
            final.update(said)


def _wait(coordinator: subprocess.Popen[str], parts: dict[str, Future[NodePart]], seconds: float) -> None:
    """Until the coordinator is done; a node's part that fails first ends the run with its reason."""
    deadline = time.monotonic() + seconds
    while coordinator.poll() is None:
        for future in parts.values():
            if future.done() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        if time.monotonic() > deadline:
            raise ConflictError(f"the federated run ran out of time ({seconds:g} s, analysis_seconds)")
        time.sleep(POLL_SECONDS)
    if coordinator.returncode != 0:  # a node's own reason says more than the coordinator's
        for future in parts.values():
            try:
                future.result(timeout=40)
            except FairimageError:
                raise
            except Exception:  # noqa: BLE001, S112 - the coordinator's reason is said instead
                continue


@dataclass(frozen=True)
class _Remote:
    url: str  # the node's base URL
    job: str  # the job of its part there
    headers: dict[str, str]


def _prepare_here(
    repository: Repository, principal: Principal, participant: Participant, parameters: dict[str, str]
) -> compute.Request:
    return compute.prepare(repository, principal, ANALYSIS, participant.dataset, parameters)


def _start_remote(
    repository: Repository,
    participant: Participant,
    url: str,
    parameters: dict[str, str],
    progress: Callable[[str], None],
) -> _Remote:
    """Ask the node to take part: it checks the plan (the dataset, its access, approval) and starts."""
    headers = {"Authorization": f"Bearer {participant.token}"} if participant.token else {}
    body = {"dataset": participant.dataset, "parameters": parameters}
    post = repository.http_client().post
    started = _ask(post, f"{url}/api/analyses/{ANALYSIS}/runs", participant.node, headers, json=body)
    progress(f"node {participant.node}: its part started ({started['id']})")
    return _Remote(url, url + started["url"], headers)


def _follow(
    repository: Repository,
    principal: Principal,
    node: str,
    start: compute.Request | _Remote,
    stopped: threading.Event,
    progress: Callable[[str], None],
) -> NodePart:
    """One node's part to its end: run here, or followed at the peer over its API."""
    if isinstance(start, compute.Request):
        run = compute.execute(repository, principal, start)
        if run.status == compute.FAILED or run.outputs is None:
            raise ConflictError(f"node {node}: {run.error or 'its run failed'}")
        progress(f"node {node}: done")
        return NodePart(node, "", run.id, run.dataset, run.images, run.outputs.get("table", []))
    get = repository.http_client().get
    while (job := _ask(get, start.job, node, start.headers))["status"] not in ("done", "failed"):
        if stopped.is_set():
            raise ConflictError(f"node {node}: stopped while its part was running")
        time.sleep(POLL_SECONDS)
    result = job.get("result") or {}
    if job["status"] == "failed" or result.get("status") == compute.FAILED:
        raise ConflictError(f"node {node}: {result.get('error') or job.get('error') or 'its run failed'}")
    run = _ask(get, f"{start.url}/api/analysis-runs/{result['run']}", node, start.headers)
    progress(f"node {node}: done")
    outputs = run.get("outputs") or {}
    return NodePart(node, start.url, run["id"], run["dataset"], int(run["images"]), outputs.get("table", []))


def _ask(call: Callable[..., httpx.Response], url: str, node: str, headers: dict[str, str], **kw: Any) -> Any:
    try:
        response = call(url, headers=headers, timeout=30, **kw)
    except httpx.HTTPError as exc:
        raise ProviderUnavailableError(f"node {node}: no answer from {url} ({type(exc).__name__})") from None
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise ConflictError(f"node {node}: {message} ({response.status_code})")
    return response.json()


def _last_line(process: subprocess.Popen[str]) -> str:
    errors = process.stderr.read() if process.stderr is not None else ""
    lines = [line for line in errors.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else f"exit code {process.returncode}"


def _register(
    repository: Repository,
    principal: Principal,
    plan: Plan,
    parameters: dict[str, str],
    final: dict[str, Any],
    rounds: list[dict[str, Any]],
    parts: list[NodePart],
) -> TrainingResult:
    metrics: dict[str, float | str] = {}
    scored = [0, 0]
    for part in parts:
        for row in part.evaluation:
            if isinstance(row.get("accuracy"), float):
                metrics[f"accuracy at {part.node} ({row['split']}, {row['n']} images)"] = round(
                    row["accuracy"], 4
                )
                scored[0] += round(row["accuracy"] * row["pixels"])
                scored[1] += int(row["pixels"])
    accuracy = scored[0] / scored[1] if scored[1] else None
    if accuracy is not None:
        metrics["accuracy, all nodes' test pixels"] = round(accuracy, 4)
    shown = {key: value for key, value in parameters.items() if key not in ("session", "coordinator")}
    card = ModelCard(
        name=plan.name,
        version=plan.version,
        description=(
            f"A pixel classifier (logistic regression on {len(pixels.FEATURES)} local features) trained by "
            f"federated learning across {len(parts)} nodes with Flower (FedAvg, {plan.rounds} rounds)."
        ),
        authors=[Author(name=principal.name)],
        task="pixel classification: a label's foreground against its background",
        intended_use="Classifying pixels of images like those it learnt from as in or out of the label.",
        training=Training(
            code=f"fairimage {ANALYSIS} (Flower FedAvg)",
            parameters={
                **shown,
                "rounds": plan.rounds,
                "strategy": "FedAvg",
                "features": list(pixels.FEATURES),
                "runs": {part.node: part.run for part in parts},
            },
        ),
        metrics=metrics,
        trained_on=[part.dataset for part in parts if part.node == HERE],
        trained_on_peers=[
            PeerDataset(
                node=part.node,
                url=f"{part.url}/pid/{part.dataset}",
                dataset=part.dataset,
                images=part.images,
                run=part.run,
            )
            for part in parts
            if part.node != HERE
        ],
        weights=["weights.json"],
        inputs=["one plane (y, x) of the channel learnt from"],
        outputs=["the probability that each pixel is foreground (y, x)"],
    )
    weights = final["weights"]
    with tempfile.TemporaryDirectory(prefix="fairimage-model-") as folder:
        card_file, weights_file = Path(folder, "card.yaml"), Path(folder, "weights.json")
        card_file.write_text(yaml.safe_dump(card.model_dump(mode="json"), sort_keys=False))
        weights_file.write_text(
            json.dumps(
                {
                    "features": list(pixels.FEATURES),
                    "weights": weights[:-1],
                    "bias": weights[-1],
                    "scaling": "each plane by its own 1st and 99th percentiles",
                    "channel": int(parameters.get("channel", 0)),
                },
                indent=1,
            )
        )
        model = models.register_model(
            repository, principal, card_file, attachments={"weights.json": weights_file}
        )
    with repository.transaction() as session:
        audit.record(
            session,
            principal.name,
            "model.train_federated",
            f"model:{model.id}",
            origin=principal.origin,
            nodes={part.node: {"run": part.run, "dataset": part.dataset, "url": part.url} for part in parts},
            rounds=len(rounds),
        )
    return TrainingResult(model, weights, rounds, parts, accuracy)

"""'fairimage peer' and 'fairimage harvest': the nodes this one federates with, and pulling their public
records; 'fairimage search --federated' searches them with this node's own."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from fairimage.cli.common import (
    JsonOption,
    RepoOption,
    _json,
    as_operator,
    err,
    out,
    print_listing,
    progress_bar,
)
from fairimage.services.federation import compute, learning, mirror, peers, witness
from fairimage.services.federation import harvest as harvest_service
from fairimage.services.models import models

peer_app = typer.Typer(
    help="Peers: other fairimage nodes whose public records this node harvests and searches.",
    no_args_is_help=True,
)


analysis_app = typer.Typer(
    help="Analyses that go to the data: run one of this node's allow-list on a dataset; aggregates only.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(peer_app, name="peer")
    app.add_typer(analysis_app, name="analysis")
    app.command("harvest")(harvest_command)
    app.command("witness")(witness_command)
    app.command("mirror")(mirror_command)
    app.command("train")(train_command)


@peer_app.command("add")
def peer_add(
    url: Annotated[str, typer.Argument(help="the node's base URL, e.g. https://images.example.org")],
    name: Annotated[str | None, typer.Option(help="a name for it here (default: the name it gives)")] = None,
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """Add a peer: fetch its node document and pin the signing key it publishes now; what it sends later
    must be signed by that key."""
    peer = as_operator(repo, peers.add_peer, url, name)
    if as_json:
        _json(asdict(peer))
        return
    out.print(f"peer {peer.name} at {peer.url}, key {peer.fingerprint} pinned", highlight=False)
    out.print(f"next: fairimage harvest {peer.name}", highlight=False)


@peer_app.command("list")
def peer_list(as_json: JsonOption = False, repo: RepoOption = None) -> None:
    """The peers, their pinned keys, when they were last harvested and how many records came from each."""
    found = as_operator(repo, peers.list_peers)
    if as_json:
        _json([asdict(peer) for peer in found])
        return
    table = Table("name", "url", "key", "records", "harvested", "last error", box=None)
    for peer in found:
        harvested = peer.harvested_at.strftime("%Y-%m-%d %H:%M") if peer.harvested_at else "never"
        table.add_row(peer.name, peer.url, peer.fingerprint, str(peer.records), harvested, peer.last_error)
    print_listing(table, "no peers; add one with 'fairimage peer add URL'")


@peer_app.command("remove")
def peer_remove(
    name: Annotated[str, typer.Argument(help="the peer's name here")], repo: RepoOption = None
) -> None:
    """Remove a peer and every record harvested from it."""
    as_operator(repo, peers.remove_peer, name)
    out.print(f"peer {name} removed, with its harvested records", highlight=False)


def harvest_command(
    peer: Annotated[str | None, typer.Argument(help="one peer's name (default: every peer)")] = None,
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """Pull the public records peers published since the last harvest (resumable: each page is kept with
    its cursor); a peer that fails is reported and the others still harvested."""
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=err, disable=as_json or not err.is_terminal
    ) as bar:
        task = bar.add_task("harvesting", total=None)
        seen: dict[str, int] = {}

        def on_page(name: str, changes: int) -> None:
            seen[name] = seen.get(name, 0) + changes
            bar.update(task, description=f"harvesting {name}: {seen[name]} changes")

        outcomes = as_operator(repo, harvest_service.harvest, peer, on_page)
    if as_json:
        _json([asdict(outcome) for outcome in outcomes])
    else:
        if not outcomes:
            out.print("no peers; add one with 'fairimage peer add URL'", highlight=False)
        for outcome in outcomes:
            line = f"{outcome.peer}: {outcome.kept} kept, {outcome.dropped} dropped, {outcome.pages} page(s)"
            out.print(line, highlight=False)
            if outcome.error:
                err.print(f"{outcome.peer}: {outcome.error}", highlight=False, markup=False)
    if any(outcome.error for outcome in outcomes):
        raise typer.Exit(5)


def witness_command(
    peer: Annotated[str | None, typer.Argument(help="one peer's name (default: every peer)")] = None,
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """Check each peer's audit checkpoint (signed by its pinned key, and extending the last one witnessed,
    by a consistency proof) and cosign it; a peer whose history was rewritten or truncated is refused."""
    outcomes = as_operator(repo, witness.witness, peer)
    if as_json:
        _json([asdict(outcome) for outcome in outcomes])
    else:
        for outcome in outcomes:
            if outcome.status in ("cosigned", "unchanged"):
                out.print(f"{outcome.peer}: {outcome.status} at {outcome.size} entries", highlight=False)
            else:
                err.print(f"{outcome.peer}: {outcome.status.upper()}: {outcome.message}", highlight=False)
    if any(outcome.status == "refused" for outcome in outcomes):
        raise typer.Exit(6)
    if any(outcome.status == "failed" for outcome in outcomes):
        raise typer.Exit(5)


def mirror_command(
    pid: Annotated[str, typer.Argument(help="the PID of a public study or image at the peer (or its id)")],
    peer: Annotated[str, typer.Option("--from", help="the peer that holds it")],
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """Copy a peer's public study or image here, every object checked against the manifest the peer
    signed; served read-only as a mirror of its origin. Run it again to go on after a failure or to pick
    up nothing new: what was downloaded and checked is kept."""
    with progress_bar(as_json) as bar:
        outcomes = as_operator(repo, mirror.mirror, pid, peer, bar)
    if as_json:
        _json([asdict(outcome) for outcome in outcomes])
    else:
        for outcome in outcomes:
            if outcome.status == "failed":
                err.print(f"{outcome.image}: {outcome.error}", highlight=False, markup=False)
                continue
            detail = (
                f", {outcome.fetched} fetched, {outcome.reused} kept from before"
                if outcome.fetched or outcome.reused
                else ""
            )
            out.print(
                f"{outcome.image}: {outcome.status} ({outcome.objects} objects{detail})", highlight=False
            )
    if any(outcome.status == "failed" for outcome in outcomes):
        raise typer.Exit(5)


@analysis_app.command("list")
def analysis_list(as_json: JsonOption = False) -> None:
    """The analyses this node runs where its data are: nothing else runs."""
    found = compute.analyses()
    if as_json:
        _json([{"name": a.name, "summary": a.summary, "returns": a.returns} for a in found])
        return
    table = Table("name", "returns", "parameters", "what it gives", box=None)
    for analysis in found:
        parameters = ", ".join(f"{key}={p.default}" for key, p in analysis.parameters.items())
        table.add_row(analysis.name, analysis.returns, parameters, analysis.summary)
    print_listing(table)


@analysis_app.command("run")
def analysis_run(
    name: Annotated[str, typer.Argument(help="an analysis of 'fairimage analysis list'")],
    dataset: Annotated[str, typer.Option(help="the dataset: NAME, NAME:VERSION or its id")],
    param: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable")] = None,
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """Run an analysis in a process of its own (within analysis_seconds and analysis_memory_mb); print
    what may leave: aggregates, rows of fewer than min_cell images suppressed."""
    run = as_operator(repo, compute.run_analysis, name, dataset, _pairs(param, "--param", "by=dtype"))
    if as_json:
        _json(asdict(run))
    else:
        out.print(f"run {run.id}: {run.status} ({run.images} images)", highlight=False)
        if run.outputs and "table" in run.outputs:
            rows = run.outputs["table"]
            columns = list(dict.fromkeys(key for row in rows for key in row))
            table = Table(*columns, box=None)
            for row in rows:
                table.add_row(*(str(row.get(column, "")) for column in columns))
            print_listing(table)
    if run.status == compute.FAILED:
        err.print(f"run {run.id}: {run.error}", highlight=False, markup=False)
        raise typer.Exit(5)


def _pairs(given: list[str] | None, option: str, example: str) -> dict[str, str]:
    pairs = [text.partition("=") for text in given or []]
    if any(not sep or not key or not value for key, sep, value in pairs):
        raise typer.BadParameter(f"write KEY=VALUE, e.g. {option} {example}", param_hint=option)
    return {key.strip(): value.strip() for key, _, value in pairs}


@analysis_app.command("approve")
def analysis_approve(
    name: Annotated[str, typer.Argument(help="an analysis of 'fairimage analysis list'")],
    dataset: Annotated[str, typer.Argument(help="the dataset: NAME:VERSION or its id")],
    requester: Annotated[str, typer.Option("--for", help="who may run it, by the name their token has")],
    repo: RepoOption = None,
) -> None:
    """Approve a plan before it runs (its studies' owner, a data steward or an admin): federated training
    over restricted studies sends weights each round, so it starts only once approved."""
    approval = as_operator(repo, compute.approve, name, dataset, requester)
    out.print(
        f"{approval.requester} may run {approval.analysis} on {approval.dataset} (approved by "
        f"{approval.approved_by})",
        highlight=False,
    )


def train_command(
    name: Annotated[str, typer.Argument(help="the model's name, as it will be registered here")],
    on: Annotated[
        list[str],
        typer.Option(help="NODE=DATASET: a peer's name (or 'here') and a dataset there; once per node"),
    ],
    version: Annotated[str, typer.Option(help="the model's version")] = "1",
    rounds: Annotated[int, typer.Option(help="rounds of training and averaging")] = 5,
    param: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE for train_pixel_classifier (epochs, learning_rate, channel, ...)"),
    ] = None,
    tokens: Annotated[
        Path | None,
        typer.Option(help="a YAML or JSON file of NODE: TOKEN, your API token at each peer", exists=True),
    ] = None,
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """Train a pixel classifier by federated learning (Flower, FedAvg): this node coordinates, each node
    learns on its own dataset and sends only weights; the model is registered here with a card naming
    every node's dataset by PID."""
    known = _tokens(tokens)
    participants = [
        learning.Participant(node, dataset, known.get(node))
        for node, dataset in _pairs(on, "--on", "clinic=cells:1").items()
    ]
    if len(participants) != len(on):
        raise typer.BadParameter("each node once", param_hint="--on")
    plan = learning.Plan(name, version, participants, rounds, _pairs(param, "--param", "epochs=20"))
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True, disable=as_json
    ) as bar:
        task = bar.add_task("starting", total=None)
        result = as_operator(repo, learning.train, plan, lambda line: bar.update(task, description=line))
    if as_json:
        _json(
            {
                "model": models.summary(result.model),
                "weights": result.weights,
                "rounds": result.rounds,
                "nodes": [asdict(part) for part in result.nodes],
                "accuracy": result.accuracy,
            }
        )
        return
    for part in result.nodes:
        out.print(f"{part.node}: {part.images} images of {part.dataset} (run {part.run})", highlight=False)
    said = f"{result.accuracy:.1%}" if result.accuracy is not None else "not reported (too few test images)"
    out.print(f"{len(result.rounds)} rounds; accuracy on the nodes' test splits: {said}", highlight=False)
    out.print(f"model {result.model.name} version {result.model.version}: {result.model.id}", highlight=False)


def _tokens(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        found = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"{path}: not a YAML or JSON file ({exc})", param_hint="--tokens") from None
    if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
        raise typer.BadParameter(f"{path}: give NODE: TOKEN lines", param_hint="--tokens")
    return {str(key): value for key, value in found.items()}


@analysis_app.command("release")
def analysis_release(
    run_id: Annotated[str, typer.Argument(help="the run, as 'analysis run' printed it")],
    repo: RepoOption = None,
) -> None:
    """Release the outputs of a run that waits for review (a study of its dataset is restricted)."""
    run = as_operator(repo, compute.release, run_id)
    out.print(f"run {run.id}: {run.status}", highlight=False)

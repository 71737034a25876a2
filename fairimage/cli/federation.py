"""'fairimage peer' and 'fairimage harvest': the nodes this one federates with, and pulling their public
records; 'fairimage search --federated' searches them with this node's own."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
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
from fairimage.services.federation import compute, mirror, peers, witness
from fairimage.services.federation import harvest as harvest_service

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
    pairs = [text.partition("=") for text in param or []]
    if any(not sep or not key for key, sep, _ in pairs):
        raise typer.BadParameter("write KEY=VALUE, e.g. --param by=dtype", param_hint="--param")
    run = as_operator(repo, compute.run_analysis, name, dataset, {key: value for key, _, value in pairs})
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


@analysis_app.command("release")
def analysis_release(
    run_id: Annotated[str, typer.Argument(help="the run, as 'analysis run' printed it")],
    repo: RepoOption = None,
) -> None:
    """Release the outputs of a run that waits for review (a study of its dataset is restricted)."""
    run = as_operator(repo, compute.release, run_id)
    out.print(f"run {run.id}: {run.status}", highlight=False)

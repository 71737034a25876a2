"""The search command: the same search service the API and the web page use."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fairimage.cli.common import (
    JsonOption,
    RepoOption,
    _json,
    as_operator,
    opened,
    operator_principal,
    out,
    print_listing,
)
from fairimage.model.discovery.search import FACETS
from fairimage.services.discovery import search as search_service
from fairimage.services.federation import search as federated


def register(app: typer.Typer) -> None:
    app.command("search")(search_command)


def search_command(
    query: Annotated[str, typer.Argument(help="words to find, e.g. 'confocal HeLa'")] = "",
    facet: Annotated[
        list[str] | None,
        typer.Option(help=f"FACET=VALUE filters, repeatable; facets: {', '.join(FACETS)}"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=search_service.MAX_LIMIT)] = 20,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    facet_values: Annotated[
        int,
        typer.Option(
            min=1,
            max=search_service.MAX_FACET_VALUES,
            help="values counted out per facet, the most frequent first (the text shows the first 8)",
        ),
    ] = search_service.FACET_VALUES,
    federated: Annotated[
        bool, typer.Option("--federated", help="find studies here and at the peers (their harvested records)")
    ] = False,
    live: Annotated[
        bool, typer.Option("--live", help="with --federated: ask the peers too, each within peer_timeout")
    ] = False,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find images by what they show and how they were made, with facet counts; with --federated, the
    studies that match on this node and its peers."""
    filters = search_service.parse_filters(facet or [])
    if federated or live:
        _federated(repo, query, filters, live, limit, as_json)
        return
    results = as_operator(repo, search_service.search, query, filters, limit, offset, facet_values)
    if as_json:
        _json(results.to_dict())
        return
    table = Table("image", "name", "study", "axes", "shape", "dtype", box=None)
    for hit in results.hits:
        image = hit.image
        table.add_row(
            image.id,
            image.name,
            image.study_name,
            image.axis_names,
            "x".join(map(str, image.shape)),
            image.dtype,
        )
    shown = f"{offset + 1}-{offset + len(results.hits)} of " if results.hits else ""
    out.print(f"{shown}{results.total} images match", highlight=False)
    if results.hits:
        print_listing(table)
    for name, counts in results.facets.items():
        if counts:
            values = ", ".join(f"{count.label} ({count.count})" for count in counts[:8])
            more = max(0, len(counts) - 8) + results.facets_left_off.get(name, 0)
            values += f" and {more} more" if more else ""
            out.print(f"  {name}: {values}", highlight=False, markup=False)


def _federated(
    repo: Path | None, query: str, filters: dict[str, list[str]], live: bool, limit: int, as_json: bool
) -> None:
    with opened(repo) as repository:
        base = repository.settings.public_url
        results = federated.federated_search(
            repository, operator_principal(), base, query, filters, live, min(limit, federated.MAX_STUDIES)
        )
    if as_json:
        _json(results.to_dict())
        return
    table = Table("node", "study", "images", "access", "url", box=None)
    for hit in results.studies:
        table.add_row(hit.node, hit.title, str(hit.images), hit.access, hit.url)
    out.print(f"{len(results.studies)} studies, {results.total} images match", highlight=False)
    if results.studies:
        print_listing(table)
    for peer in results.peers:
        detail = f" ({peer.detail})" if peer.detail else ""
        out.print(f"  peer {peer.name}: {peer.status}, {peer.ms} ms{detail}", highlight=False, markup=False)

"""'fairimage register': catalogue OME-Zarr images and plates where they are, without copying them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fairimage.cli.common import (
    JsonOption,
    RepoOption,
    _json,
    err,
    opened,
    operator_principal,
    out,
    progress_bar,
)
from fairimage.services.ingest.conversion import DEFAULT_STUDY
from fairimage.services.ingest.register import (
    RegisterOutcome,
    RegisterRequest,
    VerifyOutcome,
    register,
    registered_images,
    verify_registered,
)


def register_command(
    locations: Annotated[
        list[str],
        typer.Argument(
            help="OME-Zarr images or plates (0.4 or 0.5): folders, .ozx files, http(s):// or s3:// URLs"
        ),
    ],
    repo: RepoOption = None,
    study: Annotated[str, typer.Option(help="study to add them to (created if new)")] = DEFAULT_STUDY,
    name: Annotated[str | None, typer.Option(help="the name (else the plate's own, or the folder's)")] = None,
    platemap: Annotated[
        Path | None,
        typer.Option(
            help="a platemap (CSV or XLSX: well, compound, concentration, unit, control, replicate)"
        ),
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="then read and checksum every chunk, so fixity checks pixels too")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Catalogue OME-Zarr images and plates where they are: only their metadata is read and checksummed,
    no pixel is copied; they are served through the same access check as ingested images. fairimage
    never writes to a registered location."""
    outcomes: list[RegisterOutcome] = []
    checked: list[VerifyOutcome] = []
    actor = operator_principal().name
    with opened(repo) as repository:
        with progress_bar(as_json, "fields") as bar:
            for location in locations:
                request = RegisterRequest(location, study, name, platemap)
                outcomes.append(register(repository, request, bar, actor=actor))
        if verify:
            with progress_bar(as_json, "chunks") as bar:
                for outcome in outcomes:
                    if outcome.status != "failed":
                        for image_id in outcome.images:
                            checked.append(verify_registered(repository, image_id, bar, actor=actor))
    if as_json:
        _json(
            [
                {
                    **outcome.__dict__,
                    "verified": [v.__dict__ for v in checked if v.image_id in outcome.images],
                }
                for outcome in outcomes
            ]
        )
    else:
        for outcome in outcomes:
            _print(outcome)
        _print_verified(checked)
    if any(o.status == "failed" for o in outcomes) or any(v.error for v in checked):
        raise typer.Exit(1)


def verify_command(
    key: Annotated[str, typer.Argument(help="a registered image's id, or a registered plate's id")],
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Read and checksum every chunk of a registered image or plate, so that fixity checks its pixels too
    (its metadata must be what was registered)."""
    actor = operator_principal().name
    with opened(repo) as repository, progress_bar(as_json, "chunks") as bar:
        checked = [
            verify_registered(repository, image_id, bar, actor)
            for image_id in registered_images(repository, key)
        ]
    if as_json:
        _json([v.__dict__ for v in checked])
    else:
        _print_verified(checked)
    if any(v.error for v in checked):
        raise typer.Exit(1)


def _print(outcome: RegisterOutcome) -> None:
    if outcome.status == "failed":
        err.print(f"[red]failed[/] {outcome.error}", highlight=False)
        return
    if outcome.status == "already_present":
        what = outcome.plate_id or ", ".join(outcome.images)
        out.print(f"[cyan]already registered[/] {outcome.location} as {what}", highlight=False)
        return
    if outcome.kind == "plate":
        out.print(
            f"[green]registered[/] {outcome.location} -> {outcome.plate_id} (plate {outcome.name!r}, "
            f"{outcome.wells} wells, {outcome.fields} fields, {outcome.documents} metadata documents "
            "checksummed; pixels stay where they are)",
            highlight=False,
        )
        for line in outcome.missing:
            err.print(f"[yellow]missing[/] {line}", highlight=False)
        return
    out.print(
        f"[green]registered[/] {outcome.location} -> {outcome.images[0]} ({outcome.documents} metadata "
        "documents checksummed; pixels stay where they are)",
        highlight=False,
    )


def _print_verified(checked: list[VerifyOutcome]) -> None:
    failed = [v for v in checked if v.error]
    for v in failed:
        err.print(f"[red]not verified[/] {v.error}", highlight=False)
    done = [v for v in checked if not v.error]
    if done:
        chunks = sum(v.chunks for v in done)
        absent = sum(v.absent for v in done)
        size = sum(v.bytes for v in done)
        images = "1 image" if len(done) == 1 else f"{len(done)} images"
        note = f", {absent} never written (read as the fill value)" if absent else ""
        out.print(
            f"[green]verified[/] {images}: {chunks} chunks, {size:,} bytes checksummed{note}", highlight=False
        )

"""Commands for annotations: key=value pairs and tags on studies and images."""

from __future__ import annotations

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
from fairimage.model.errors import InvalidInputError
from fairimage.services.curation import annotations as annotation_service
from fairimage.services.curation.annotations import Change

TargetArgument = Annotated[str, typer.Argument(help="a study (id or name) or an image (id)")]


def register(app: typer.Typer) -> None:
    app.command("annotate")(annotate_command)
    app.command("annotations")(annotations_command)


def annotate_command(
    target: TargetArgument,
    pairs: Annotated[list[str] | None, typer.Argument(help="KEY=VALUE annotations")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="a tag, repeatable")] = None,
    remove: Annotated[
        list[str] | None, typer.Option(help="remove the annotation with this id, repeatable")
    ] = None,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add key=value annotations and tags to a study or an image (or --remove them)."""
    change = Change(tuple(annotation_service.parse_pairs(pairs or [])), tuple(tag or []))
    if not (change.pairs or change.tags or remove):
        raise InvalidInputError("give KEY=VALUE pairs, --tag TAG or --remove ID")
    with opened(repo) as repository:
        for annotation_id in remove or []:
            annotation_service.remove(repository, operator_principal(), annotation_id)
        added = (
            annotation_service.annotate(repository, operator_principal(), target, change)
            if change.pairs or change.tags
            else []
        )
    if as_json:
        _json([annotation.__dict__ for annotation in added])
        return
    for annotation in added:
        what = annotation.value if annotation.kind == "tag" else f"{annotation.key}={annotation.value}"
        out.print(
            f"{annotation.id}  {'tag ' if annotation.kind == 'tag' else ''}{what}",
            highlight=False,
            markup=False,
        )
    for annotation_id in remove or []:
        out.print(f"removed {annotation_id}", highlight=False)


def annotations_command(target: TargetArgument, repo: RepoOption = None, as_json: JsonOption = False) -> None:
    """List the annotations and tags of a study or an image."""
    found = as_operator(repo, annotation_service.annotations_of, target)
    if as_json:
        _json([annotation.__dict__ for annotation in found])
        return
    table = Table("id", "kind", "key", "value", "by", box=None)
    for annotation in found:
        table.add_row(annotation.id, annotation.kind, annotation.key, annotation.value, annotation.created_by)
    print_listing(table, f"{target}: no annotations")

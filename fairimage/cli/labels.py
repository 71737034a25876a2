"""'fairimage label': segmentation masks and instance labels added to images as OME-NGFF labels."""

from __future__ import annotations

from dataclasses import asdict
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
    progress_bar,
)
from fairimage.model.errors import InvalidInputError
from fairimage.services.labels import labels

label_app = typer.Typer(
    help="Label images (masks, instance labels) of images: add, list.", no_args_is_help=True
)


@label_app.command("add")
def label_add(
    image: Annotated[str, typer.Argument(help="the image's id")],
    mask: Annotated[Path, typer.Argument(help="the label image: TIFF, PNG or OME-Zarr of integer ids")],
    name: Annotated[str, typer.Option(help="the label's name, e.g. nuclei (once per image)")],
    annotator: Annotated[str | None, typer.Option(help="the person who drew it (or --model)")] = None,
    model: Annotated[
        str | None,
        typer.Option(help="the model that predicted it, e.g. a model's PID or name@version: AI-generated"),
    ] = None,
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """Add a mask to an image as its label NAME, on the image's pixel grid; stored with a mode pyramid,
    verified and checksummed, and served at /zarr/IMAGE.ome.zarr/labels/NAME."""
    if (annotator is None) == (model is None):
        raise InvalidInputError(f"label {name!r}: say who made it: --annotator NAME or --model MODEL (one)")
    made_by = labels.MadeBy("model", model) if model is not None else labels.MadeBy("person", annotator or "")
    with opened(repo) as repository, progress_bar(as_json) as bar:
        label = labels.add_label(repository, operator_principal(), image, mask, name, made_by, bar)
    if as_json:
        _json(asdict(label) | {"ai_generated": label.ai_generated})
        return
    mark = " (AI-generated)" if label.ai_generated else ""
    out.print(
        f"[green]added[/] label {label.name!r} ({label.id}) to {label.image_id}: {label.values} objects, "
        f"made by {label.made_by.kind} {label.made_by.name}{mark}",
        highlight=False,
    )


@label_app.command("list")
def label_list(
    image: Annotated[str, typer.Argument(help="the image's id")],
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """An image's labels: name, objects, who or what made them."""
    found = as_operator(repo, labels.list_labels, image)
    if as_json:
        _json([asdict(label) | {"ai_generated": label.ai_generated} for label in found])
        return
    table = Table("name", "id", "objects", "made by", "AI-generated", "from", box=None)
    for label in found:
        table.add_row(
            label.name,
            label.id,
            str(label.values),
            f"{label.made_by.kind}: {label.made_by.name}",
            "yes" if label.ai_generated else "",
            label.source_name,
        )
    print_listing(table, f"No labels for {image}.")

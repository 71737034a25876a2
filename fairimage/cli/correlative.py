"""'fairimage correlate': correlative sets, images of one sample from several modalities registered into
one reference image's space."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.table import Table

from fairimage.cli.common import JsonOption, RepoOption, _json, as_operator, out, print_listing
from fairimage.formats.landmarks import read_landmarks
from fairimage.model.errors import InvalidInputError
from fairimage.model.viewing.correlative import SetSpec
from fairimage.services.viewing import correlative
from fairimage.services.viewing.correlative import CorrelativeSet

correlate_app = typer.Typer(
    help="Correlative sets (e.g. light and electron microscopy of one sample): create, list, show.",
    no_args_is_help=True,
)


def read_spec(path: Path) -> SetSpec:
    """A set's YAML file: name, reference, members each with a matrix or landmarks (a CSV file beside
    the YAML, or inline pairs); one line naming the file and field otherwise."""
    try:
        found: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path}: not a readable YAML file ({exc})") from None
    if not isinstance(found, dict):
        raise InvalidInputError(f"{path}: expected a mapping with name, reference and members")
    for member in found.get("members") or []:
        if isinstance(member, dict) and isinstance(member.get("landmarks"), str):
            member["landmarks"] = [
                pair.model_dump() for pair in read_landmarks(path.parent / member["landmarks"])
            ]
    try:
        return SetSpec.model_validate(found)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise InvalidInputError(f"{path}: {where}: {error['msg']}") from None


def _summary(found: CorrelativeSet) -> None:
    out.print(
        f"[bold]{found.name}[/] ({found.id}) in study {found.study_name}: reference {found.reference_name} "
        f"({found.reference_image_id}, {found.reference_modality})",
        highlight=False,
    )
    table = Table("member", "image", "modality", "transform", "residual (px)", box=None)
    for member in found.members:
        how = f"{member.landmarks} landmarks" if member.method == "landmarks" else "matrix"
        residual = f"{member.residual:.3f}" if member.residual is not None else "-"
        table.add_row(member.image_name, member.image_id, member.modality, how, residual)
    print_listing(table)


@correlate_app.command("create")
def create(
    spec: Annotated[
        Path, typer.Argument(help="the set's YAML: name, reference, members (matrix or landmarks)")
    ],
    study: Annotated[str, typer.Option(help="the study whose images these are")],
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """Register each member into the reference's space (a matrix, or an affine fitted to landmark pairs
    with its residual), check it, and store the set with a new version of the study."""
    found = as_operator(repo, correlative.create_set, study, read_spec(spec))
    if as_json:
        _json(found.described())
        return
    out.print("[green]created[/] correlative set", highlight=False)
    _summary(found)


@correlate_app.command("list")
def list_sets(
    study: Annotated[str, typer.Argument(help="the study (id or name)")],
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """A study's correlative sets."""
    found = as_operator(repo, correlative.list_sets, study)
    if as_json:
        _json([item.described() for item in found])
        return
    table = Table("name", "id", "reference", "members", box=None)
    for item in found:
        table.add_row(item.name, item.id, item.reference_name, str(len(item.members)))
    print_listing(table)


@correlate_app.command("show")
def show(
    set_id: Annotated[str, typer.Argument(help="the set's id")],
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """A set: its reference and members, with their transforms and residuals."""
    found = as_operator(repo, correlative.get_set, set_id)
    if as_json:
        _json(found.described())
        return
    _summary(found)

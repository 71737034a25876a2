"""Commands that protect patients: the DICOM quarantine of images whose pixels may show identifying text,
and what the PHI scanner found in a study's text."""

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
    out,
    print_listing,
)
from fairimage.services.ingest import originals
from fairimage.services.privacy import deid, phi

dicom_app = typer.Typer(
    help="DICOM: the quarantine of images that may show burned-in identifying text.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(dicom_app, name="dicom")
    app.add_typer(originals_app, name="originals")


@dicom_app.command("quarantine")
def quarantine_command(
    repo: RepoOption = None,
    include_cleared: Annotated[bool, typer.Option("--all", help="also the images cleared already")] = False,
    as_json: JsonOption = False,
) -> None:
    """List the images held back because their pixels may show identifying text (Burned In Annotation,
    ultrasound, secondary captures): their studies are readable by their owners and stewards only."""
    found = as_operator(repo, deid.quarantined, include_cleared)
    if as_json:
        _json([entry.to_dict() for entry in found])
        return
    if not found:
        out.print("No image is in quarantine.")
        return
    table = Table("image", "study", "name", "why", "cleared by", box=None)
    for entry in found:
        table.add_row(
            entry.image_id, entry.study, entry.name, "; ".join(entry.reasons), entry.cleared_by or ""
        )
    print_listing(table)


@dicom_app.command("clear")
def clear_command(
    image: Annotated[str, typer.Argument(help="the image's id")],
    note: Annotated[str, typer.Option("--note", help="what you checked, e.g. 'no text in any frame'")] = "",
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Release an image from quarantine after looking at every frame for burned-in text (audited)."""
    cleared = as_operator(repo, deid.clear, image, note)
    if as_json:
        _json(cleared.to_dict())
        return
    out.print(f"{cleared.image_id} ({cleared.study}): cleared by {cleared.cleared_by}", highlight=False)


def register_study(study_app: typer.Typer) -> None:
    study_app.command("phi")(phi_command)
    study_app.command("acknowledge-phi")(acknowledge_phi_command)


def phi_command(
    study: Annotated[str, typer.Argument(help="study id or name")],
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """What the PHI scanner found in a study's metadata, annotations and file names (names, dates of
    birth, record numbers, phone numbers, e-mail and postal addresses), and who acknowledged it."""
    found = as_operator(repo, phi.study_phi, study)
    if as_json:
        _json(found.to_dict())
        return
    if not found.findings:
        out.print(f"{found.study}: the PHI scanner found nothing.", highlight=False)
        return
    for finding in found.findings:
        out.print(f"{finding['field']}: {finding['finding']}", highlight=False, markup=False)
    state = (
        f"acknowledged by {found.acknowledged['by']}: {found.acknowledged['note']}"
        if found.acknowledged
        else "not acknowledged: the study cannot be published yet"
    )
    out.print(f"{found.study}: {len(found.findings)} finding(s), {state}", highlight=False, markup=False)


def acknowledge_phi_command(
    study: Annotated[str, typer.Argument(help="study id or name")],
    note: Annotated[
        str, typer.Option("--note", help="what you judged, e.g. 'the names are the authors'")
    ] = "",
    repo: RepoOption = None,
) -> None:
    """As a steward, acknowledge what the PHI scanner found so that the study may be published (audited)."""
    found = as_operator(repo, phi.acknowledge, study, note)
    out.print(f"{found.study}: {len(found.findings)} finding(s) acknowledged", highlight=False)


originals_app = typer.Typer(
    help="Originals kept encrypted (Crypt4GH), never shared in the clear.", no_args_is_help=True
)


@originals_app.command("export")
def export_originals_command(
    file_id: Annotated[
        str, typer.Argument(help="the ingested file's id (file-...), as 'ingest --json' gives it")
    ],
    recipient: Annotated[Path, typer.Option("--recipient", help="the recipient's Crypt4GH public key")],
    to: Annotated[Path, typer.Option("--to", help="the folder to write the re-encrypted files into")],
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-encrypt a file's kept originals for an approved recipient's public key (audited); only they can
    open them, with 'crypt4gh decrypt --sk THEIR.sec'."""
    written = as_operator(repo, originals.export, file_id, recipient, to)
    if as_json:
        _json([str(path) for path in written])
        return
    out.print(f"{len(written)} original(s) re-encrypted for {recipient.name} in {to}", highlight=False)

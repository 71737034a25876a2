"""Commands for curation: the REMBI template, validating and saving study metadata, showing it with its
FAIR score, exporting it as JSON, YAML or spreadsheets, and looking terms up in the bundled ontologies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.table import Table

from fairimage import ontology as ontologies
from fairimage.cli.common import (
    JsonOption,
    RepoOption,
    _json,
    as_operator,
    err,
    opened,
    operator_principal,
    out,
    print_listing,
)
from fairimage.model.curation.checks import FairScore, Report
from fairimage.model.errors import InvalidInputError
from fairimage.services.curation import study_metadata
from fairimage.services.curation.spreadsheets import write_sheets

metadata_app = typer.Typer(
    help="A study's REMBI metadata: validate, set, show, score, export.", no_args_is_help=True
)
ontology_app = typer.Typer(help="The bundled ontologies (FBbi, NCBITaxon, DUO).", no_args_is_help=True)
FileArgument = Annotated[
    Path, typer.Argument(help="a study file: YAML, JSON, XLSX or a folder of CSV sheets")
]


def register(app: typer.Typer) -> None:
    app.command("template")(template_command)
    app.add_typer(metadata_app, name="metadata")
    app.add_typer(ontology_app, name="ontology")


def template_command(
    kind: Annotated[str, typer.Argument(help="the template: rembi")] = "rembi",
    from_study: Annotated[
        str | None,
        typer.Option("--from", help="a study: its metadata so far, pre-filled with what its files say"),
    ] = None,
    repo: RepoOption = None,
) -> None:
    """Print a commented study file to fill in: fairimage template rembi > study.yaml"""
    if kind != "rembi":
        raise InvalidInputError(f"template {kind!r}: the templates are: rembi")
    if from_study is None:
        out.print(study_metadata.template(), end="", highlight=False, markup=False, soft_wrap=True)
        return
    text = as_operator(repo, study_metadata.prefilled, from_study)
    out.print(text, end="", highlight=False, markup=False, soft_wrap=True)


def print_report(report: Report, source: str) -> None:
    """Every problem on its own line, then a summary."""
    for problem in report.problems:
        label = {"error": "error", "missing": "missing", "hint": "hint", "phi": "phi warning"}[
            problem.severity
        ]
        err.print(f"{label}: {problem}", highlight=False, markup=False)
    summary = (
        f"{source}: {len(report.errors)} errors, {len(report.missing)} required attributes missing, "
        f"{len(report.hints)} recommended attributes missing"
        + (f", {len(report.phi)} possible personal identifiers" if report.phi else "")
    )
    err.print(summary, highlight=False, markup=False)


@metadata_app.command("validate")
def validate_command(file: FileArgument, as_json: JsonOption = False) -> None:
    """Check a study file: every problem is one line with the field, what is wrong and how to fix it. Exits
    2 if a value is wrong or a required attribute is missing."""
    report = study_metadata.validate(study_metadata.read_study_file(file))
    if as_json:
        _json(report.to_dict())
    else:
        print_report(report, str(file))
    if not report.complete:
        raise typer.Exit(2)


@metadata_app.command("set")
def set_command(
    study: Annotated[str, typer.Argument(help="study id or name")],
    file: FileArgument,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Save a study's REMBI metadata (a new version of the study). Wrong values are refused; missing
    attributes are listed, and the study can be completed later."""
    data = study_metadata.read_study_file(file)
    checked = study_metadata.validate(data)
    if checked.errors:
        print_report(checked, str(file))
        raise typer.Exit(2)
    with opened(repo) as repository:
        report = study_metadata.set_metadata(repository, operator_principal(), study, data)
        saved = study_metadata.get_metadata(repository, operator_principal(), study)
    if as_json:
        _json({**report.to_dict(), "fair_score": saved.score.score})
        return
    print_report(report, str(file))
    out.print(f"{study}: metadata saved; FAIR score {saved.score.score}/100", highlight=False)


@metadata_app.command("show")
def show_command(
    study: Annotated[str, typer.Argument(help="study id or name")],
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """A study's REMBI metadata, the image data its files gave (marked extracted) and its FAIR score."""
    found = as_operator(repo, study_metadata.get_metadata, study)
    if as_json:
        _json(found.to_dict())
        return
    out.print(yaml.safe_dump(found.rembi.dump(), sort_keys=False, allow_unicode=True), end="", markup=False)
    out.print("image_data:  # extracted from the files", highlight=False, markup=False)
    for image in found.images:
        sizes = ", ".join(
            f"{axis} {value['size']} {value['unit']}" for axis, value in image.physical_sizes.items()
        )
        dims = " x ".join(f"{axis}={size}" for axis, size in image.dimensions.items())
        out.print(f"  - {image.name} ({image.format}): {dims}; {sizes or 'no physical sizes'}", markup=False)
        for key, value in image.acquisition.items():
            out.print(f"      {key}: {value}", highlight=False, markup=False)
    _print_score(found.score)


@metadata_app.command("score")
def score_command(
    study: Annotated[str, typer.Argument(help="study id or name")],
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """A study's FAIR completeness score (0-100) and what would raise it."""
    found = as_operator(repo, study_metadata.get_metadata, study)
    if as_json:
        _json(found.score.to_dict())
    else:
        _print_score(found.score)


@metadata_app.command("export")
def export_command(
    study: Annotated[str, typer.Argument(help="study id or name")],
    to: Annotated[
        Path, typer.Option("--to", help="a .json, .yaml or .xlsx file, or a folder for CSV sheets")
    ],
    repo: RepoOption = None,
) -> None:
    """Write a study's REMBI metadata as JSON, YAML, an XLSX workbook or CSV sheets (one per section)."""
    with opened(repo) as repository:
        document = study_metadata.get_metadata(repository, operator_principal(), study).rembi.dump()
    suffix = to.suffix.lower()
    if suffix == ".json":
        to.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    elif suffix in (".yaml", ".yml"):
        to.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    else:
        write_sheets(document, to)
    out.print(f"wrote {to}", highlight=False)


@ontology_app.command("list")
def ontology_list(as_json: JsonOption = False) -> None:
    """The bundled ontologies with their releases and licences."""
    rows = [(key, ontologies.ontology(key)) for key in ontologies.NAMES]
    if as_json:
        _json(
            [
                {
                    "name": k,
                    "title": o.title,
                    "version": o.version,
                    "license": o.license,
                    "terms": len(o.terms),
                }
                for k, o in rows
            ]
        )
        return
    table = Table("name", "title", "release", "licence", "terms", box=None)
    for key, bundle in rows:
        table.add_row(
            key, bundle.title, bundle.version, bundle.license.split(" (")[0], str(len(bundle.terms))
        )
    duo = ontologies.duo()
    table.add_row("duo", "Data Use Ontology", duo.version, duo.license.split(" (")[0], str(len(duo.terms)))
    print_listing(table)


@ontology_app.command("search")
def ontology_search(
    name: Annotated[str, typer.Argument(help="fbbi or ncbitaxon")],
    words: Annotated[list[str], typer.Argument(help="words of a label or synonym, a CURIE or an IRI")],
    limit: Annotated[int, typer.Option(min=1, max=200)] = 10,
    as_json: JsonOption = False,
) -> None:
    """Find terms to write in a study file."""
    found = ontologies.ontology(name).complete(" ".join(words), limit)
    if as_json:
        _json([{"id": t.id, "label": t.label, "synonyms": list(t.synonyms), "iri": t.iri} for t in found])
        return
    for term in found:
        synonyms = f"  ({', '.join(term.synonyms)})" if term.synonyms else ""
        out.print(f"{term.id}  {term.label}{synonyms}", highlight=False, markup=False)
    if not found:
        err.print(f"no {name} term matches {' '.join(words)!r}", highlight=False)


def _print_score(score: FairScore) -> None:
    parts = ", ".join(
        f"{key} {earned:.0f}/{total:.0f}" for key, (earned, total) in score.by_principle.items()
    )
    levels = ", ".join(f"{count.level} {count.present}/{count.total}" for count in score.levels)
    out.print(f"FAIR score {score.score}/100 ({parts}); REMBI attributes: {levels}", highlight=False)
    for check in score.to_raise:
        out.print(f"  +{check.points - check.earned:.0f} ({check.principle}): {check.hint}", highlight=False)

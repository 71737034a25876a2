"""'fairimage model': trained models, registered from bioimage.io packages or model cards, with their data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fairimage.cli.common import JsonOption, RepoOption, _json, as_operator, out, print_listing
from fairimage.model.errors import InvalidInputError
from fairimage.services.models import models

model_app = typer.Typer(
    help="Trained models: register a bioimage.io package or a model card, list, show.", no_args_is_help=True
)


@model_app.command("register")
def model_register(
    path: Annotated[
        Path,
        typer.Argument(
            help="a bioimage.io model package (rdf.yaml or bioimageio.yaml, its folder or its .zip), "
            "or a model card of your own (YAML or JSON: name, version, description, authors, license, "
            "task, intended_use, limitations, training, metrics, trained_on, evaluated_on)"
        ),
    ],
    trained_on: Annotated[
        list[str] | None,
        typer.Option(help="a dataset version it was trained on: NAME:VERSION, NAME or its id; repeat it"),
    ] = None,
    evaluated_on: Annotated[
        list[str] | None, typer.Option(help="a dataset version it was evaluated on; repeat it")
    ] = None,
    intended_use: Annotated[str | None, typer.Option(help="what it is for, and for whom")] = None,
    limitations: Annotated[
        str | None, typer.Option(help="where it fails: risks, biases, data it never saw")
    ] = None,
    metric: Annotated[
        list[str] | None, typer.Option(help="a metric as NAME=VALUE, e.g. dice=0.91; repeat it")
    ] = None,
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """Register a trained model (validated by bioimageio.spec where it is a package); it never changes."""
    changes: dict[str, Any] = {"intended_use": intended_use, "limitations": limitations}
    if metric:
        changes["metrics"] = dict(_metric(text) for text in metric)
    model = as_operator(repo, models.register_model, path, trained_on or (), evaluated_on or (), changes)
    if as_json:
        _json(models.summary(model))
        return
    out.print(
        f"[green]registered[/] model {model.name} version {model.version} ({model.id}), from a "
        f"{'bioimage.io package' if model.kind == 'bioimageio' else 'model card'}",
        highlight=False,
    )
    out.print(f"  {model.training_data_statement}", highlight=False)


def _metric(text: str) -> tuple[str, float | str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise InvalidInputError(f"--metric {text!r}: give NAME=VALUE, e.g. dice=0.91")
    try:
        return name.strip(), float(value)
    except ValueError:
        return name.strip(), value.strip()


@model_app.command("list")
def model_list(as_json: JsonOption = False, repo: RepoOption = None) -> None:
    """Every registered model, newest first."""
    found = as_operator(repo, models.list_models)
    if as_json:
        _json([models.summary(model) for model in found])
        return
    table = Table("name", "version", "id", "from", "trained on", "registered by", box=None)
    for model in found:
        trained = [link for link in model.data if link.role == "trained"]
        table.add_row(
            model.name,
            model.version,
            model.id,
            model.kind,
            ", ".join(
                f"{link.name}:{link.version}" if link.name else "(not yours to read)" for link in trained
            )
            or "-",
            model.registered_by,
        )
    print_listing(table, "No models yet: fairimage model register PACKAGE_OR_CARD")


@model_app.command("show")
def model_show(
    model_id: Annotated[str, typer.Argument(help="the model's id, NAME@VERSION or NAME (its newest)")],
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """A model's card: what it is for, its limits, metrics, and the data it learnt from."""
    model = as_operator(repo, models.get_model, model_id)
    if as_json:
        _json(models.summary(model))
        return
    card = model.card
    out.print(f"model {model.name} version {model.version} ({model.id}), by {model.registered_by}")
    for label, value in (
        ("description", card.description),
        ("authors", ", ".join(a.name for a in card.authors)),
        ("license", card.license),
        ("task", card.task),
        ("intended use", card.intended_use),
        ("limitations", card.limitations),
        ("metrics", ", ".join(f"{k} {v}" for k, v in card.metrics.items())),
        ("weights", ", ".join(card.weights)),
        ("training code", card.training.code),
    ):
        if value:
            out.print(f"  {label}: {value}", highlight=False)
    for link in model.data:
        named = (
            f"{link.name}:{link.version} ({link.dataset_id})" if link.name else "a dataset you may not read"
        )
        out.print(f"  {link.role} on {named}", highlight=False)
    out.print(f"  {model.training_data_statement}", highlight=False)

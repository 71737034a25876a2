"""'fairimage dataset': datasets for machine learning, with splits that do not leak, and their checks."""

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
    err,
    opened,
    operator_principal,
    out,
    print_listing,
    progress_bar,
)
from fairimage.model.errors import InvalidInputError
from fairimage.services.datasets import datasets, exports
from fairimage.services.datasets.datasets import Dataset, DatasetRequest

dataset_app = typer.Typer(
    help="Datasets for machine learning: create (leak-free splits), list, show, check.", no_args_is_help=True
)

VersionOption = Annotated[int | None, typer.Option(min=1, help="a version (the latest without it)")]


@dataset_app.command("create")
def dataset_create(
    name: Annotated[str, typer.Argument(help="the dataset's name; made again, it gets the next version")],
    studies: Annotated[
        list[str], typer.Option("--from", help="a study (id or name) to draw from; repeat it")
    ],
    split: Annotated[
        str, typer.Option(help="train/validation/test (or train/test) in percent, e.g. 70/15/15 or 80/20")
    ] = "70/15/15",
    group_by: Annotated[
        str,
        typer.Option(
            help="what must never be on two sides of a split: image, study, plate, well, patient, or "
            "annotation:KEY (e.g. annotation:donor)"
        ),
    ] = "image",
    stratify: Annotated[
        str | None,
        typer.Option(
            help="keep the balance of this in every split: control, compound, study, annotation:KEY"
        ),
    ] = None,
    label: Annotated[
        str | None, typer.Option(help="only images with a label of this name (e.g. nuclei), each with it")
    ] = None,
    seed: Annotated[int, typer.Option(help="the same seed gives the same splits")] = 0,
    include_generated: Annotated[
        bool, typer.Option("--include-generated", help="keep items whose label a model made (AI-generated)")
    ] = False,
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """Make a new, immutable version of a dataset from the studies' images, each in a split."""
    request = DatasetRequest(name, tuple(studies), split, group_by, stratify, label, seed, include_generated)
    made = as_operator(repo, datasets.create_dataset, request)
    if as_json:
        _json(_summary(made))
        return
    counts = ", ".join(f"{split}: {count}" for split, count in made.counts.items())
    out.print(
        f"[green]created[/] dataset {made.name} version {made.version} ({made.id}): {counts}", highlight=False
    )
    for reason, count in made.excluded.items():
        err.print(f"[yellow]left out[/] {count} image{'s' if count != 1 else ''}: {reason}", highlight=False)


@dataset_app.command("list")
def dataset_list(as_json: JsonOption = False, repo: RepoOption = None) -> None:
    """Every dataset version you may read."""
    found = as_operator(repo, datasets.list_datasets)
    if as_json:
        _json([_summary(dataset) for dataset in found])
        return
    table = Table("name", "version", "id", "items", "splits", "group by", "made by", box=None)
    for dataset in found:
        splits = ", ".join(f"{split} {count}" for split, count in dataset.counts.items())
        table.add_row(
            dataset.name,
            str(dataset.version),
            dataset.id,
            str(sum(dataset.counts.values())),
            splits,
            str(dataset.parameters.get("group_by")),
            dataset.created_by,
        )
    print_listing(table, "No datasets yet: fairimage dataset create NAME --from STUDY")


@dataset_app.command("show")
def dataset_show(
    name: Annotated[str, typer.Argument(help="the dataset's name")],
    version: VersionOption = None,
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """A dataset version: how it was made, and (with --json) every item with its split."""
    dataset = as_operator(repo, datasets.get_dataset, name, version)
    if as_json:
        _json(_summary(dataset) | {"items": [asdict(item) for item in dataset.items]})
        return
    out.print(f"dataset {dataset.name} version {dataset.version} ({dataset.id}), by {dataset.created_by}")
    for key, value in dataset.parameters.items():
        out.print(f"  {key}: {value}", highlight=False)
    out.print("  items: " + ", ".join(f"{split} {count}" for split, count in dataset.counts.items()))


@dataset_app.command("describe")
def dataset_describe(
    name: Annotated[str, typer.Argument(help="the dataset's name")],
    version: VersionOption = None,
    description: Annotated[str | None, typer.Option(help="what it is, in a few sentences")] = None,
    intended_uses: Annotated[str | None, typer.Option(help="what it is for (and what not)")] = None,
    limitations: Annotated[str | None, typer.Option(help="what it cannot show or support")] = None,
    biases: Annotated[
        str | None, typer.Option(help="who or what is over- or under-represented, and how it was chosen")
    ] = None,
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """Write on a dataset version's card (README.md, card.json, Croissant's RAI fields); "" clears a field.
    The rest of the card is drawn from the catalog; the items never change."""
    changes = {"description": description, "intended_uses": intended_uses, "limitations": limitations}
    changes["biases"] = biases
    given = {key: value for key, value in changes.items() if value is not None}
    if not given:
        raise InvalidInputError(
            "dataset describe: say what to write: --description, --intended-uses, --limitations or --biases"
        )
    dataset = as_operator(repo, datasets.describe_dataset, name, version, given)
    if as_json:
        _json(_summary(dataset))
        return
    out.print(
        f"[green]described[/] dataset {dataset.name} version {dataset.version}: {', '.join(sorted(given))}",
        highlight=False,
    )


@dataset_app.command("check")
def dataset_check(
    name: Annotated[str, typer.Argument(help="the dataset's name")],
    version: VersionOption = None,
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """Prove a dataset version leak-free: no group and no pixels in two splits; show the balance of
    strata in each split. Exits 1 if it leaks."""
    dataset, report = as_operator(repo, datasets.check_dataset, name, version)
    if as_json:
        _json(
            {
                "dataset": dataset.id,
                "name": dataset.name,
                "version": dataset.version,
                **asdict(report),
                "ok": report.ok,
            }
        )
    else:
        verdict = "[green]no leaks[/]" if report.ok else "[red]leaks[/]"
        out.print(
            f"{verdict}: dataset {dataset.name} version {dataset.version}, {len(dataset.items)} items",
            highlight=False,
        )
        for line in report.leaks + report.duplicates:
            out.print(f"  [red]-[/] {line}", highlight=False)
        strata = sorted({stratum for counts in report.balance.values() for stratum in counts})
        table = Table("split", *(stratum or "items" for stratum in strata), box=None)
        for split in dataset.counts:  # in the dataset's split order
            counts = report.balance.get(split, {})
            table.add_row(split, *(str(counts.get(stratum, 0)) for stratum in strata))
        out.print(table)
    if not report.ok:
        raise typer.Exit(1)


@dataset_app.command("export")
def dataset_export(
    name: Annotated[str, typer.Argument(help="the dataset's name")],
    to: Annotated[
        Path, typer.Option(help="a new folder to write: items.csv, croissant.json, README.md, card.json")
    ],
    version: VersionOption = None,
    with_pixels: Annotated[
        bool,
        typer.Option(
            "--with-pixels",
            help="also every plane of every image and label, as lossless PNGs in pixels.parquet and "
            "labels.parquet, which mlcroissant's records give as images (8- and 16-bit images only)",
        ),
    ] = False,
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """Write a dataset version for machine-learning tools: its items, a Croissant 1.1 description with the
    Responsible-AI fields (mlcroissant loads it), and its dataset card."""
    with progress_bar(as_json, counting="images") as bar, opened(repo) as repository:

        def counted(done: int, of: int) -> None:
            if done == 1:
                bar.start_file(Path(name), of)
            bar.advance(1)

        exported = exports.export_dataset(
            repository,
            operator_principal(),
            name,
            version,
            to,
            repository.settings.public_url,
            pixels=with_pixels,
            progress=counted,
        )
    if as_json:
        _json({"folder": str(exported.folder), "files": exported.files})
        return
    out.print(f"[green]exported[/] {name} to {exported.folder}: {', '.join(exported.files)}", highlight=False)


def _summary(dataset: Dataset) -> dict[str, object]:
    summary = asdict(dataset)
    summary.pop("items")
    return summary

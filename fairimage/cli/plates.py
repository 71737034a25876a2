"""Commands for high-content screening plates: ingest a vendor's plate folder, list plates, show one."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fairimage.cli.common import (
    GeneratedByOption,
    GeneratedFromOption,
    GeneratedWithOption,
    JsonOption,
    RepoOption,
    _json,
    as_operator,
    err,
    generated_mark,
    linked_to_model,
    opened,
    operator_principal,
    out,
    print_listing,
    progress_bar,
)
from fairimage.model.errors import InvalidInputError
from fairimage.model.plates.layout import PLATE_ID_PREFIX
from fairimage.services.ingest.cluster import ClusterSpec
from fairimage.services.ingest.conversion import DEFAULT_STUDY
from fairimage.services.plates import plates as plate_service
from fairimage.services.plates.ingest import PlateOutcome, PlateRequest, ingest_plate, is_remote
from fairimage.services.qc import datasets
from fairimage.services.qc import plates as qc
from fairimage.services.qc import thresholds as qc_thresholds
from fairimage.storage.sources import source_url

plate_app = typer.Typer(help="High-content screening plates: ingest, list, show.", no_args_is_help=True)

PatternOption = Annotated[
    str | None,
    typer.Option(
        help="the file-name pattern, e.g. '{well}_f{field}_c{channel}.tif' (fields: plate, well, row, "
        "column, field, channel, z, t); without it: Harmony's Index.idx.xml, ImageXpress or Operetta names"
    ),
]
WellsOption = Annotated[
    int | None, typer.Option(help="the plate format (96, 384, 1536 ...) where file names cannot tell it")
]
WorkersOption = Annotated[
    int, typer.Option(min=0, help="convert fields in parallel on a dask LocalCluster of N worker processes")
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        envvar="FAIRIMAGE_SCHEDULER",
        help="convert fields on a running dask.distributed cluster, e.g. tcp://host:8786; its workers "
        "must see the plate folder and the repository's storage",
    ),
]
PlatemapOption = Annotated[
    Path | None,
    typer.Option(help="a platemap (CSV or XLSX: well, compound, concentration, unit, control, replicate)"),
]


@plate_app.command("ingest")
def plate_ingest(
    folders: Annotated[
        list[str],
        typer.Argument(
            help="plates, one each: vendor folders, OME-Zarr plates in folders, at http(s):// or s3:// URLs "
            "or in .ozx files (read where they are, copied here)",
            show_default=False,
        ),
    ],
    repo: RepoOption = None,
    study: Annotated[str, typer.Option(help="study to add the plates to (created if new)")] = DEFAULT_STUDY,
    pattern: PatternOption = None,
    platemap: PlatemapOption = None,
    name: Annotated[
        str | None, typer.Option(help="the plate's name (else the vendor's, or the folder's)")
    ] = None,
    wells: WellsOption = None,
    workers: WorkersOption = 0,
    scheduler: SchedulerOption = None,
    generated_by: GeneratedByOption = None,
    generated_from: GeneratedFromOption = None,
    generated_with: GeneratedWithOption = None,
    as_json: JsonOption = False,
) -> None:
    """Convert plate folders to OME-NGFF plates and add them to the repository, each all or nothing."""
    generated = generated_mark(generated_by, generated_from, generated_with)
    how = PlateRequest(Path(), study, pattern, platemap, name, wells, generated=generated)
    ingest_folders(folders, repo, how, as_json, workers, scheduler=scheduler)


def ingest_folders(
    folders: list[str],
    repo: Path | None,
    how: PlateRequest,
    as_json: bool,
    workers: int = 0,
    **settings: Any,
) -> None:
    """Ingest each folder as a plate (read as ``how`` says) and report each outcome; exit 1 if any failed.
    Fields are converted by ``workers`` processes of a local dask cluster, or by the repository's
    ``scheduler``, when either is set. ``settings`` override the repository's (the codec, the scheduler)."""
    outcomes: list[PlateOutcome] = []
    with opened(repo, **settings) as repository, progress_bar(as_json) as bar:
        how = replace(how, generated=linked_to_model(repository, how.generated))
        configured = repository.settings
        cluster = (
            ClusterSpec(configured.scheduler, workers, configured.cluster_split_bytes)
            if configured.scheduler or workers
            else None
        )
        for given in folders:
            remote = is_remote(given)
            request = replace(how, folder=Path(given), url=source_url(given) if remote else None)
            outcomes.append(ingest_plate(repository, request, bar, operator_principal().name, cluster))
    if as_json:
        _json([outcome.__dict__ for outcome in outcomes])
    else:
        for outcome in outcomes:
            print_outcome(outcome)
    if any(outcome.status == "failed" for outcome in outcomes):
        raise typer.Exit(1)


def print_outcome(outcome: PlateOutcome) -> None:
    """One plate's outcome in a line, and what it lacked on stderr."""
    if outcome.status == "failed":
        err.print(f"[red]failed[/] {outcome.error}", highlight=False)
        return
    if outcome.status == "already_present":
        out.print(f"[cyan]already present[/] {outcome.path} as {outcome.plate_id}", highlight=False)
        return
    out.print(
        f"[green]ingested[/] {outcome.path} -> {outcome.plate_id} ({outcome.layout}: plate {outcome.name!r}, "
        f"{outcome.wells} wells, {outcome.fields} fields)",
        highlight=False,
    )
    for line in outcome.missing:
        err.print(f"[yellow]missing[/] {line}", highlight=False)


@plate_app.command("list")
def plate_list(
    study: Annotated[str | None, typer.Option(help="only this study (id or name)")] = None,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """List plates."""
    found = as_operator(repo, plate_service.list_plates, study)
    if as_json:
        _json([plate.model_dump(mode="json") for plate in found])
        return
    table = Table("id", "name", "study", "wells", "fields", "channels", "layout", box=None)
    for plate in found:
        wells = f"{len(plate.rows) * len(plate.columns)}"
        channels = ", ".join(str(channel["name"]) for channel in plate.channels)
        table.add_row(
            plate.id, plate.name, plate.study_name, wells, str(plate.field_count), channels, plate.layout
        )
    print_listing(table, "No plates yet: add one with 'fairimage plate ingest FOLDER'.")


@plate_app.command("show")
def plate_show(
    plate_id: Annotated[str, typer.Argument(help="the plate's id")],
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """A plate's wells: treatments from the platemap and field images."""
    plate = as_operator(repo, plate_service.get_plate, plate_id)
    if as_json:
        _json(plate.model_dump(mode="json"))
        return
    out.print(
        f"{plate.name} ({plate.id}): {len(plate.rows)} x {len(plate.columns)} wells, study {plate.study_name}"
    )
    for line in plate.missing:
        out.print(f"  missing: {line}", highlight=False)
    table = Table("well", "compound", "concentration", "control", "fields", box=None)
    for well in plate.wells:
        dose = f"{well.concentration:g} {well.concentration_unit or ''}".strip() if well.concentration else ""
        table.add_row(well.name, well.compound or "", dose, well.control or "", str(len(well.images)))
    print_listing(table)


def qc_command(
    target: Annotated[str, typer.Argument(help="a plate's id (see 'fairimage plate list'), or a study")],
    readout_channel: Annotated[
        int, typer.Option(min=0, help="the channel whose field means are each well's readout (0: the first)")
    ] = 0,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="also write per-field measures here")] = None,
    parquet_path: Annotated[
        Path | None, typer.Option("--parquet", help="also write per-field measures here as Parquet")
    ] = None,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Quality control of a plate: focus, saturation, intensity and flags of every field and channel,
    outliers, Z'-factor of the controls, edge and row/column effects; the report is kept (see it at
    /plates/PLATE/qc). Of a study: images that differ in shape or pixel size, duplicates, missing wells
    and fields, metadata errors and the FAIR score."""
    if not target.startswith(PLATE_ID_PREFIX):
        _dataset_qc(target, repo, as_json)
        return
    plate_id = target
    with opened(repo) as repository, progress_bar(as_json, "fields") as bar:
        report = qc.run_plate_qc(repository, operator_principal(), plate_id, readout_channel, progress=bar)
    if csv_path is not None:
        csv_path.write_text(qc.report_csv(report))
    if parquet_path is not None:
        parquet_path.write_bytes(qc.report_parquet(report))
    if as_json:
        _json(report)
        return
    z_prime = report["statistics"]["z_prime"]
    separation = (
        f"{z_prime:.2f}" if z_prime is not None else "n/a (needs 2+ positive and 2+ negative controls)"
    )
    flags = ", ".join(report["plate_flags"]) or "none"
    out.print(f"QC of {plate_id} ({report['id']}): Z' {separation}; plate flags: {flags}", highlight=False)
    table = Table("image", "well", "field", "channel", "flags", box=None)
    for field in report["fields"]:
        reasons = [*field["flags"], *(f"{o['metric']} z {o['z']:.1f}" for o in field["outliers"])]
        if reasons:
            table.add_row(
                field["image"], field["well"], str(field["field"]), field["channel"], ", ".join(reasons)
            )
    print_listing(table, f"No field is flagged ({len(report['fields'])} field channels measured).")


def _dataset_qc(study: str, repo: Path | None, as_json: bool) -> None:
    report = as_operator(repo, datasets.run_dataset_qc, study)
    if as_json:
        _json(report)
        return
    score = report["fair_score"]
    out.print(
        f"QC of study {study}: {report['images']} images, FAIR score {score['score']}/100", highlight=False
    )
    lines = [f"{f['subject']}: {f['message']}" for f in report["findings"]]
    lines += report["plates_missing"] + [f"metadata {line}" for line in report["metadata_errors"]]
    for line in lines:
        out.print(f"  {line}", highlight=False)
    if not lines:
        out.print("  no findings", highlight=False)


def qc_thresholds_command(
    study: Annotated[str, typer.Argument(help="study id or name")],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="NAME=VALUE, e.g. saturated_percent=1.0 (repeat it); the rest keep defaults"
        ),
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="back to the defaults")] = False,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the QC thresholds of a study's plates, or set what it changes of the defaults (each default
    and its reason: fairimage/model/qc/thresholds.py). Setting replaces the study's earlier changes."""
    with opened(repo) as repository:
        if set_ or reset:
            changes = dict(_assignment(item) for item in set_ or [])
            found = qc_thresholds.set_thresholds(repository, operator_principal(), study, changes)
        else:
            found = qc_thresholds.study_thresholds(repository, operator_principal(), study)
    changed = found.changed()
    if as_json:
        _json({"thresholds": asdict(found), "changed": changed})
        return
    table = Table("threshold", "value", "", box=None)
    for name, value in asdict(found).items():
        shown = ", ".join(value) if isinstance(value, tuple | list) else f"{value:g}"
        table.add_row(name, shown, "set by the study" if name in changed else "default")
    print_listing(table)


def _assignment(text: str) -> tuple[str, str]:
    name, sign, value = text.partition("=")
    if not sign or not name.strip():
        raise InvalidInputError(f"--set {text!r}: write NAME=VALUE, e.g. --set saturated_percent=1.0")
    return name.strip(), value.strip()

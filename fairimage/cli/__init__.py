"""The fairimage command line. Errors become one line on stderr and the exit code of their class."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
)
from rich.table import Table

from fairimage import __version__, web
from fairimage.cli import (
    access,
    annotating,
    correlative,
    datasets,
    dicom,
    federation,
    governance,
    labels,
    metadata,
    models,
    plates,
    register,
    sharing,
    versions,
)
from fairimage.cli import search as search_cli
from fairimage.cli.common import (
    GeneratedByOption,
    GeneratedFromOption,
    GeneratedWithOption,
    IngestBar,
    JsonOption,
    RepoOption,
    _json,
    _open,
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
from fairimage.cli.metadata import print_report
from fairimage.model.errors import FairimageError, InvalidInputError
from fairimage.model.labels import MadeBy
from fairimage.model.units import Length, parse_length
from fairimage.services.curation import study_metadata
from fairimage.services.discovery import images as image_service
from fairimage.services.federation import identity
from fairimage.services.ingest.cluster import ClusterSpec
from fairimage.services.ingest.conversion import DEFAULT_STUDY, FileOutcome
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.ingest.sections import SectionsRequest, ingest_sections
from fairimage.services.labels import labels as label_service
from fairimage.services.plates.ingest import PlateRequest, ingest_plate
from fairimage.services.qc.plates import run_plate_qc
from fairimage.services.recovery import open_repository
from fairimage.services.repository import Repository, init_repository
from fairimage.settings import load_settings, parse_codec

app = typer.Typer(
    help="fairimage: turn raw images into FAIR OME-Zarr data and serve them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
governance.register(app)
access.register(app)
versions.register(app, governance.study_app)
metadata.register(app)
search_cli.register(app)
federation.register(app)
annotating.register(app)
dicom.register(app)
dicom.register_study(governance.study_app)


@app.command()
def init(
    repo: Annotated[Path, typer.Argument(help="folder to create the repository in")],
    db: Annotated[
        str | None,
        typer.Option(
            help="catalog URL (default: sqlite file in the repository), e.g. postgresql://user@host/db"
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="where images are stored: a folder (default: REPO/objects) or s3://bucket/prefix; "
            "S3 credentials come from the AWS environment variables or profile and are never stored"
        ),
    ] = None,
    s3_endpoint: Annotated[
        str | None,
        typer.Option(help="URL of an S3-compatible service other than AWS, e.g. http://minio:9000"),
    ] = None,
    shard_chunks: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="store N x N chunks per object (zarr v3 sharding), so huge images are not millions of "
            "files; 0 (the default) keeps one object per chunk",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a repository: catalog database, object store, and the node's signing key (which other nodes
    pin when they add it as a peer)."""
    settings = load_settings(repo, db=db, storage=storage, s3_endpoint=s3_endpoint, shard_chunks=shard_chunks)
    init_repository(settings).close()
    node = identity.describe(settings, settings.public_url)
    if as_json:
        _json({"repo": str(settings.repo), "storage": settings.storage, "node": node.name})
    else:
        key = identity.fingerprint(node.public_key)
        out.print(f"Created repository {settings.repo}, node {node.name} (key {key})")


@app.command()
def ingest(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="files and folders (walked recursively); with --plate also OME-Zarr plates at http(s):// "
            "or s3:// URLs or in .ozx files, copied here",
            show_default=False,
        ),
    ],
    repo: RepoOption = None,
    study: Annotated[str, typer.Option(help="study to add the images to (created if new)")] = DEFAULT_STUDY,
    workers: Annotated[
        int,
        typer.Option(help="convert files in parallel on a dask LocalCluster of N worker processes", min=0),
    ] = 0,
    scheduler: Annotated[
        str | None,
        typer.Option(
            envvar="FAIRIMAGE_SCHEDULER",
            help="convert on a running dask.distributed cluster, e.g. tcp://host:8786; its workers must "
            "see the input files and the repository's storage",
        ),
    ] = None,
    metadata: Annotated[
        Path | None,
        typer.Option(
            help="the study's REMBI metadata (YAML, JSON, XLSX or CSV sheets), checked before anything is "
            "ingested and saved with the images; see 'fairimage template rembi'"
        ),
    ] = None,
    plate: Annotated[
        bool,
        typer.Option("--plate", help="each folder is a high-content screening plate (see 'plate ingest')"),
    ] = False,
    pattern: plates.PatternOption = None,
    platemap: plates.PlatemapOption = None,
    wells: plates.WellsOption = None,
    sections: Annotated[
        bool,
        typer.Option(
            "--sections",
            help="each folder is one 3D image: its section images (TIFF or PNG, one per z, numbered in "
            "their names: section_1.tif ... section_200.tif; or multi-page TIFFs of consecutive sections), "
            "stacked in the order of their numbers",
        ),
    ] = False,
    z_spacing: Annotated[
        str | None,
        typer.Option(
            "--z-spacing",
            help="with --sections: the distance between sections, e.g. 30nm, where the files record none "
            "(ImageJ's spacing, OME's PhysicalSizeZ; when given, it is used instead of theirs)",
        ),
    ] = None,
    pixel_size: Annotated[
        str | None,
        typer.Option(
            "--pixel-size",
            help="with --sections: the pixel size in x and y, e.g. 4nm, where the files record none "
            "(when given, it is used instead of theirs)",
        ),
    ] = None,
    codec: Annotated[
        str | None,
        typer.Option(
            help="Blosc codec of the chunks, NAME[:LEVEL]: zstd (the default, level 5; smaller), lz4 "
            "(faster), lz4hc, blosclz, zlib; e.g. zstd:3. The repository's 'cname'/'clevel' settings "
            "otherwise",
        ),
    ] = None,
    generated_by: GeneratedByOption = None,
    labels_by: Annotated[
        str | None,
        typer.Option(
            "--labels-by",
            help="who made the labels an OME-Zarr input holds (copied with it): person:NAME or model:NAME "
            "(AI-generated); unknown otherwise",
        ),
    ] = None,
    generated_from: GeneratedFromOption = None,
    generated_with: GeneratedWithOption = None,
    as_json: JsonOption = False,
) -> None:
    """Convert image files to OME-Zarr 0.5 and add them to the repository.

    A PNG, JPEG or TIFF whose C2PA manifest (Content Credentials) declares AI generation is marked
    AI-generated by the generator it names; --generated-by, when given, wins.

    With --sections, each folder of section images becomes one 3D image (z, y, x), spaced as the files
    record or --z-spacing apart: fairimage ingest ./volume --sections [--z-spacing 30nm] [--pixel-size 4nm].
    Missing, duplicate or misshapen sections are one error line, told before anything is converted."""
    cname, clevel = parse_codec(codec) if codec else (None, None)
    generated = generated_mark(generated_by, generated_from, generated_with)
    maker = _made_by(labels_by)
    spacing = _section_lengths(sections, z_spacing, pixel_size, plate or generated is not None)
    if plate:
        how = PlateRequest(Path(), study, pattern, platemap, wells=wells, generated=generated)
        plates.ingest_folders(
            paths, repo, how, as_json, workers, cname=cname, clevel=clevel, scheduler=scheduler
        )
        return
    study_file = study_metadata.read_study_file(metadata) if metadata is not None else None
    if study_file is not None:
        report = study_metadata.validate(study_file)
        if report.errors:
            print_report(report, str(metadata))
            raise typer.Exit(2)
    repository = _open(repo, scheduler=scheduler, cname=cname, clevel=clevel)
    generated = linked_to_model(repository, generated)
    settings = repository.settings
    cluster = (
        ClusterSpec(settings.scheduler, workers, settings.cluster_split_bytes)
        if settings.scheduler or workers
        else None
    )
    try:
        with progress_bar(as_json) as bar:
            if spacing is not None:
                outcomes = [
                    ingest_sections(
                        repository,
                        SectionsRequest(Path(p), *spacing, study=study),
                        bar,
                        actor=operator_principal().name,
                        cluster=cluster,
                    )
                    for p in paths
                ]
            else:
                outcomes = ingest_paths(
                    repository,
                    [Path(p) for p in paths],
                    study,
                    bar,
                    cluster,
                    actor=operator_principal().name,
                    generated=generated,
                )
                _copy_input_labels(repository, outcomes, maker, bar)
        if study_file is not None and any(o.status in ("ingested", "already_present") for o in outcomes):
            study_metadata.set_metadata(repository, operator_principal(), study, study_file)
    finally:
        repository.close()
    _report(outcomes, as_json)


dicomweb_app = typer.Typer(
    help="Pull studies from a PACS over DICOMweb (QIDO-RS, WADO-RS).", no_args_is_help=True
)
app.add_typer(dicomweb_app, name="dicomweb")
app.add_typer(plates.plate_app, name="plate")
app.command("qc")(plates.qc_command)
governance.study_app.command("qc-thresholds")(plates.qc_thresholds_command)
app.command("register")(register.register_command)
app.add_typer(sharing.share_app, name="share")
app.add_typer(labels.label_app, name="label")
app.add_typer(correlative.correlate_app, name="correlate")
app.add_typer(datasets.dataset_app, name="dataset")
app.add_typer(models.model_app, name="model")
app.command("verify-registered")(register.verify_command)


@dicomweb_app.command("pull")
def dicomweb_pull(
    url: Annotated[str, typer.Argument(help="the DICOMweb service, e.g. http://pacs:8042/dicom-web")],
    study_uid: Annotated[str, typer.Option("--study", help="the Study Instance UID to retrieve")],
    series: Annotated[
        list[str] | None, typer.Option("--series", help="only these Series Instance UIDs (repeat it)")
    ] = None,
    into: Annotated[
        str, typer.Option("--into", help="the fairimage study to add the images to")
    ] = DEFAULT_STUDY,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Retrieve a study from a PACS and ingest it: each series becomes one de-identified image."""
    from fairimage.services.ingest import dicomweb

    with opened(repo) as repository:
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} instances"),
            console=err,
            disable=as_json or not err.is_terminal,
            transient=True,
        )
        with progress:
            task = progress.add_task("retrieving", total=None)
            outcomes = dicomweb.pull_study(
                repository,
                url,
                study_uid,
                series or None,
                into,
                actor=operator_principal().name,
                on_instance=lambda done, total: progress.update(task, completed=done, total=total),
            )
    _report(outcomes, as_json)


def _copy_input_labels(
    repository: Repository, outcomes: list[FileOutcome], maker: MadeBy | None, progress: IngestBar
) -> None:
    """Each ingested OME-Zarr's labels, stored as its image's labels; one that cannot be is a warning (the
    image stands: add the label with 'fairimage label add')."""
    for outcome in outcomes:
        source = Path(outcome.path)
        if outcome.status != "ingested" or len(outcome.images) != 1 or not source.is_dir():
            continue
        for name in label_service.input_label_names(source):
            try:
                copied = label_service.copy_input_label(
                    repository, operator_principal(), outcome.images[0], source, name, maker, progress
                )
            except FairimageError as exc:
                outcome.warnings.append(f"label {name!r} not copied ({exc}): use 'fairimage label add'")
                continue
            made = f"{copied.made_by.kind}: {copied.made_by.name}"
            outcome.labels.append(f"{copied.name} ({copied.id}, made by {made})")


def _section_lengths(
    sections: bool, z_spacing: str | None, pixel_size: str | None, unsupported: bool
) -> tuple[Length | None, Length | None] | None:
    """With --sections: the z spacing and the pixel size, each if given (else the files' own); None
    without --sections.
    ``unsupported``: options given that a folder of sections does not take."""
    if not sections:
        if z_spacing is not None or pixel_size is not None:
            option = "--z-spacing" if z_spacing is not None else "--pixel-size"
            raise InvalidInputError(f"{option}: only for a folder of sections; add --sections")
        return None
    if unsupported:
        raise InvalidInputError("--sections: one folder is one image; leave out --plate and --generated-by")
    given = parse_length(pixel_size, "--pixel-size") if pixel_size is not None else None
    return (parse_length(z_spacing, "--z-spacing") if z_spacing is not None else None), given


def _made_by(given: str | None) -> MadeBy | None:
    if given is None:
        return None
    kind, _, name = given.partition(":")
    if kind not in ("person", "model") or not name.strip():
        raise InvalidInputError(
            f"--labels-by {given}: say person:NAME (an annotator) or model:NAME (a model)"
        )
    return MadeBy(kind, name.strip())  # type: ignore[arg-type]


def _report(outcomes: list[FileOutcome], as_json: bool) -> None:
    """What happened to each input, as JSON or lines; exit 1 if any failed."""
    if as_json:
        _json([outcome.__dict__ for outcome in outcomes])
    else:
        _print_outcomes(outcomes)
    if any(outcome.status == "failed" for outcome in outcomes):
        raise typer.Exit(1)


def _print_outcomes(outcomes: list[FileOutcome]) -> None:
    for outcome in outcomes:
        if outcome.status == "ingested":
            out.print(
                f"[green]ingested[/] {outcome.path} -> {', '.join(outcome.images)} ({outcome.format}"
                + (f", written by {outcome.parts} cluster tasks)" if outcome.parts > 1 else ")"),
                highlight=False,
            )
            for label in outcome.labels:
                out.print(f"  with its label {label}", highlight=False)
            for warning in outcome.warnings:
                err.print(f"[yellow]warning[/] {warning}", highlight=False)
        elif outcome.status == "already_present":
            out.print(
                f"[cyan]already present[/] {outcome.path} as {', '.join(outcome.images)}", highlight=False
            )
        elif outcome.status == "skipped":
            out.print(f"[yellow]skipped[/] {outcome.error}", highlight=False)
        else:
            err.print(f"[red]failed[/] {outcome.error}", highlight=False)
    counts = {
        status: sum(o.status == status for o in outcomes)
        for status in ("ingested", "already_present", "skipped", "failed")
    }
    out.print(", ".join(f"{n} {status.replace('_', ' ')}" for status, n in counts.items()), highlight=False)


@app.command()
def images(
    repo: RepoOption = None,
    study: Annotated[str | None, typer.Option(help="only this study (id or name)")] = None,
    as_json: JsonOption = False,
) -> None:
    """List the images in the repository."""
    with opened(repo) as repository:
        found, cursor = [], None
        while True:
            page = image_service.list_images(
                repository, operator_principal(), study=study, limit=image_service.MAX_PAGE, cursor=cursor
            )
            found.extend(page.items)
            if page.next is None:
                break
            cursor = page.next
    if as_json:
        _json([image.model_dump(mode="json") for image in found])
        return
    table = Table("id", "name", "study", "axes", "shape", "dtype", "levels", box=None)
    for image in found:
        table.add_row(
            image.id,
            image.name,
            image.study_name,
            "".join(a.name for a in image.axes),
            " x ".join(map(str, image.shape)),
            image.dtype,
            str(len(image.levels)),
        )
    print_listing(table, "No images yet: add some with 'fairimage ingest'.")


@app.command()
def studies(repo: RepoOption = None, as_json: JsonOption = False) -> None:
    """List the studies in the repository."""
    found = as_operator(repo, image_service.list_studies)
    if as_json:
        _json([study.model_dump(mode="json") for study in found])
        return
    table = Table("id", "name", "images", box=None)
    for study in found:
        table.add_row(study.id, study.name, str(study.image_count))
    print_listing(table, "No studies yet.")


@app.command()
def serve(
    repo: RepoOption = None,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="server processes; in production one per core (they share the port, the catalog and the "
            "store)",
        ),
    ] = 1,
) -> None:
    """Serve the HTTP API, the OME-Zarr images and the web pages."""
    _serve(load_settings(repo), host, port, workers)


def _serve(settings: Any, host: str, port: int, workers: int = 1) -> None:
    """Serve with Granian (its HTTP/1.1 and socket work is Rust; benchmarks/serve.py measured it at 1.3x
    uvicorn's requests/s on chunks). Each worker process builds the app from the settings resolved here."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    from fairimage.api.app import SETTINGS_VARIABLE

    open_repository(settings).close()  # fail here, with one line, rather than inside the server
    missing = web.missing_viewer_files()
    if missing:
        err.print(f"warning: {web.viewer_not_built(missing)}", highlight=False, markup=False)
    processes = f", {workers} worker processes" if workers > 1 else ""
    err.print(f"Serving {settings.repo} at http://{host}:{port}/{processes}  (Ctrl+C stops)", highlight=False)
    os.environ[SETTINGS_VARIABLE] = settings.model_dump_json()
    Granian(
        "fairimage.api.app:app_from_environment",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        respawn_failed_workers=True,  # a worker that dies (killed, out of memory) is replaced
        # A stop (Ctrl+C, SIGTERM) waits this long for a worker to finish; a worker respawned after a crash
        # can miss the stop signal (seen with granian 2.x), and then it is killed rather than waited for.
        workers_kill_timeout=10,
        log_level=LogLevels.warning,
    ).serve()


def _command_hint() -> str | None:
    """How to reach the ``fairimage`` command when the environment it is installed in is not on PATH (as
    after ``make run``, which installs it into .venv)."""
    bin_dir = Path(sys.executable).parent
    found = shutil.which("fairimage")
    if found and Path(found).parent == bin_dir:
        return None
    relative = os.path.relpath(bin_dir)
    where = bin_dir if relative.startswith("..") else Path(relative)
    return (
        f"To use the command line: 'source {where / 'activate'}', then 'fairimage --help' "
        f"(or call {where / 'fairimage'})"
    )


DEMO_STUDY = "Demo: generated samples"
DEMO_CT_STUDY = "Demo CT (DICOM, de-identified)"
DEMO_PLATE_STUDY = "Demo screen (a high-content screening plate)"


@app.command()
def mcp(
    repo: RepoOption = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="FAIRIMAGE_TOKEN",
            show_envvar=True,
            help="act as this API token's user (or this share link's holder); without one, as anonymous",
        ),
    ] = None,
) -> None:
    """Serve the repository to an AI agent over the Model Context Protocol (stdio): search, studies, images,
    thumbnails, plate QC, consent checks and access requests, each through the same access check and audit
    log as the HTTP API, as the token's user."""
    from fairimage.agents.server import build_server, caller_for

    with opened(repo) as repository:
        build_server(repository, caller_for(repository, token)).run("stdio")


@app.command()
def demo(
    repo: Annotated[Path, typer.Option("--repo", "-r", help="where to build the demo repository")] = Path(
        "demo-repo"
    ),
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="build the repository only")] = False,
) -> None:
    """Build a demo repository from generated sample images and serve it."""
    from fairimage.services.ingest.samples import (
        demo_metadata,
        write_dicom_samples,
        write_plate_sample,
        write_samples,
    )

    settings = load_settings(repo)
    repository = open_repository(settings) if settings.config_path.exists() else init_repository(settings)
    try:
        inputs = write_samples(settings.repo / "sample-inputs")
        outcomes = ingest_paths(repository, inputs, DEMO_STUDY)
        study_metadata.set_metadata(repository, operator_principal(), DEMO_STUDY, demo_metadata())
        series = write_dicom_samples(settings.repo / "sample-inputs" / "dicom")
        outcomes += ingest_paths(repository, [series[0].parent], DEMO_CT_STUDY)
        folder, platemap = write_plate_sample(settings.repo / "sample-inputs" / "plate")
        plate = ingest_plate(repository, PlateRequest(folder, DEMO_PLATE_STUDY, platemap=platemap))
        if plate.status == "ingested" and plate.plate_id:  # its QC report, on the stain the compound dims
            run_plate_qc(repository, operator_principal(), plate.plate_id, readout_channel=1)
    finally:
        repository.close()
    _print_outcomes(outcomes)
    plates.print_outcome(plate)
    if any(outcome.status == "failed" for outcome in outcomes) or plate.status == "failed":
        raise typer.Exit(1)
    hint = _command_hint()
    if hint:
        err.print(hint, highlight=False)
    if not no_serve:
        _serve(settings, host, port)


def _version(value: bool) -> None:
    if value:
        out.print(f"fairimage {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")
    ] = False,
) -> None:
    """fairimage: turn raw images into FAIR OME-Zarr data and serve them."""


def main() -> None:
    """Entry point: every FairimageError becomes one line and its exit code, never a traceback."""
    try:
        code = app(standalone_mode=False)  # returns the exit code of typer.Exit instead of raising it
    except FairimageError as exc:
        err.print(f"error: {exc.message}", highlight=False, markup=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # usage errors: typer vendors its own click, so recognise them by shape
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            sys.exit(exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)

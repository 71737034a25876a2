"""Plate ingest: a vendor's plate folder (and its platemap) in, an OME-NGFF plate out.

Each field becomes an image of its own (converted, verified and checksummed as any image is); the plate's
group documents (plate -> row -> well) are written beside them, and the whole plate is published in one
catalog transaction: a plate is either there with every field, or not there at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import zarr
from sqlalchemy.orm import Session

from fairimage.catalog import queries
from fairimage.catalog.tables import OriginalFileRow, PlateRow, WellRow
from fairimage.formats import ImageSource, is_zarr_dir
from fairimage.formats.omezarr import open_zarr_plate, read_zarr_plate
from fairimage.formats.plate_fields import PlateFieldSource, check_planes
from fairimage.formats.platemap import read_platemap
from fairimage.formats.plates import read_plate_folder
from fairimage.model.plates.layout import PLATE_ID_PREFIX, Field, PlateLayout
from fairimage.model.plates.platemap import Treatment
from fairimage.model.study import Generated, new_id
from fairimage.ngff.plate import PlacedField, group_document, plate_attributes, well_attributes
from fairimage.services.discovery import search
from fairimage.services.governance import audit
from fairimage.services.ingest.cluster import ClusterSpec, stage_on_cluster
from fairimage.services.ingest.conversion import (
    DEFAULT_STUDY,
    Progress,
    Staged,
    content_sha256,
    ensure_study,
    failure,
    image_row,
    stage_concurrently,
)
from fairimage.services.ingest.intake import check_generated, conversion_for
from fairimage.services.ingest.register import metadata_documents
from fairimage.services.ingest.runs import Run, ingest_run
from fairimage.services.repository import Repository
from fairimage.services.viewing import tiles
from fairimage.storage import layout
from fairimage.storage.sources import open_source

_log = logging.getLogger("fairimage.plates")


@dataclass
class PlateOutcome:
    """What happened to one plate folder, as the CLI and API report it."""

    path: str
    status: str  # "ingested", "already_present" or "failed"
    plate_id: str | None = None
    name: str | None = None
    layout: str | None = None
    wells: int = 0
    fields: int = 0
    images: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class PlateRequest:
    """A plate folder to ingest, and how to read it."""

    folder: Path
    study: str = DEFAULT_STUDY
    pattern: str | None = None
    platemap: Path | None = None
    name: str | None = None
    wells: int | None = None  # the plate format, where file names cannot tell it
    url: str | None = None  # an OME-Zarr plate elsewhere (http(s)://, s3://, a .ozx file): read, copied here
    generated: Generated | None = None  # a model made its images: every field is marked AI-generated

    @property
    def location(self) -> str:
        """The plate as the user named it: its URL, or its folder."""
        return self.url or str(self.folder)


def is_remote(given: str) -> bool:
    """Whether a plate given on the command line is an OME-Zarr elsewhere rather than a folder here."""
    return given.startswith(("http://", "https://", "s3://")) or (
        Path(given).is_file() and zipfile.is_zipfile(given)
    )


def ingest_plate(
    repository: Repository,
    request: PlateRequest,
    progress: Progress | None = None,
    actor: str = "operator",
    cluster: ClusterSpec | None = None,
) -> PlateOutcome:
    """Read, convert and publish one plate, its fields converted here several at once or, with
    ``cluster``, by the cluster's workers; a failure is one line and publishes nothing."""
    progress = progress or Progress()
    where = request.location
    if request.generated is not None:
        check_generated(repository, request.generated)
    try:
        if request.url is not None:
            plate, source_of, (files, files_sha256, total) = _read_elsewhere(
                repository, request.url, request.name
            )
        else:
            plate, source_of, originals = _read(request)
            files, files_sha256, total = _file_list(request.folder, originals)
        treatments = read_platemap(request.platemap, plate.geometry) if request.platemap else []
        with repository.reading() as session:
            known = queries.original_file_by_sha256(session, files_sha256)
            if known is not None:
                return _already_present(session, request, known)
        with ingest_run(repository, actor) as run:
            conversion = conversion_for(repository, run)
            if request.generated is not None:
                run.generated = request.generated.model_dump(mode="json")
            if cluster is not None:
                sources = [source_of(item) for item in plate.fields]  # not read here: sent to workers
                progress.start_file(Path(where), sum(source.metadata.nbytes for source in sources))
                images = stage_on_cluster(cluster, conversion, sources, progress)
            else:
                fields = ((Path(item.well), source_of(item)) for item in plate.fields)
                images = stage_concurrently(repository.store, conversion, fields, progress)
            staged = list(zip(plate.fields, images, strict=True))
            listed = (files, files_sha256, total)
            outcome = _publish(repository, run, request, plate, staged, treatments, listed)
        _keep_overview(repository, outcome)
        return outcome
    except Exception as exc:  # noqa: BLE001 - one line for the user, whatever failed; never a traceback
        message = failure(where, exc).error or ""
        if request.url is not None and not message.startswith(where):
            message = f"{where}: {message}"  # a message about one of its objects, e.g. a well's
        return PlateOutcome(where, "failed", error=message)


def _keep_overview(repository: Repository, outcome: PlateOutcome) -> None:
    """A dense plate's page overview, drawn now that the plate is published, so that its first visitor does
    not wait for it. The plate stands whatever happens here: a picture that could not be drawn now is drawn
    when the page first asks for it."""
    if outcome.plate_id is None:
        return
    try:
        tiles.keep_page_overview(repository, outcome.plate_id)
    except Exception as exc:  # noqa: BLE001 - the plate is published; its picture can wait
        _log.warning("plate %s: overview not drawn now (%s); drawn on its first view", outcome.plate_id, exc)


def _read(request: PlateRequest) -> tuple[PlateLayout, Callable[[Field], ImageSource], list[Path]]:
    """The plate's layout, each field's image source and the original files: an existing OME-Zarr plate
    (0.4 or 0.5) as it is, else a vendor's folder read by its index or its file names."""
    if is_zarr_dir(request.folder):
        zarr_plate = read_zarr_plate(request.folder, request.name)
        files = sorted(path for path in request.folder.rglob("*") if path.is_file())
        return zarr_plate.layout, lambda item: zarr_plate.sources[(item.row, item.column, item.index)], files
    plate = read_plate_folder(request.folder, request.pattern, request.name, request.wells)
    plane_shape, dtype = check_planes(plate)
    files = sorted({plane.path for item in plate.fields for plane in item.planes.values()})
    return plate, lambda item: PlateFieldSource(plate, item, plane_shape, dtype), files


def _read_elsewhere(
    repository: Repository, url: str, name: str | None
) -> tuple[PlateLayout, Callable[[Field], ImageSource], tuple[bytes, str, int]]:
    """An OME-Zarr plate over HTTP(S), in S3 or zipped (.ozx), read where it is, to be copied here.

    Its identity is its metadata documents (plate, wells, fields, their level 0) by key and sha256, wherever
    it is served from: hashing every remote object would read the plate twice. The pixels it gives are
    checksummed in the copy's own manifests, as every ingested image's are."""
    store = open_source(url, repository.settings.s3_endpoint)
    documents = metadata_documents(store, url, [""])  # what is there, said plainly, before zarr looks
    root = zarr.open_group(store.zarr_store("", read_only=True), mode="r")
    zarr_plate = open_zarr_plate(root, url, name)
    documents |= metadata_documents(store, url, list(zarr_plate.nodes[1:]))
    entries = {
        key: {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        for key, body in sorted(documents.items())
    }
    body = json.dumps({"documents": entries}, indent=1).encode()
    identity = (body, hashlib.sha256(body).hexdigest(), sum(len(b) for b in documents.values()))
    return zarr_plate.layout, lambda item: zarr_plate.sources[(item.row, item.column, item.index)], identity


def _file_list(folder: Path, files: list[Path]) -> tuple[bytes, str, int]:
    """The plate's original files (relative path, size, sha256), as one document and its own sha256: the
    plate's identity by content, so the same folder is never stored twice."""
    entries: dict[str, dict[str, str | int]] = {}
    total = 0
    for path in files:
        sha256, size = content_sha256(path)
        entries[str(path.relative_to(folder))] = {"size": size, "sha256": sha256}
        total += size
    body = json.dumps({"files": dict(sorted(entries.items()))}, indent=1).encode()
    return body, hashlib.sha256(body).hexdigest(), total


def _already_present(session: Session, request: PlateRequest, known: OriginalFileRow) -> PlateOutcome:
    plate = queries.plate_of_file(session, known.id)
    return PlateOutcome(
        request.location,
        "already_present",
        plate_id=plate.id if plate else None,
        name=plate.name if plate else None,
    )


def _publish(
    repository: Repository,
    run: Run,
    request: PlateRequest,
    plate: PlateLayout,
    staged: list[tuple[Field, Staged]],
    treatments: list[Treatment],
    files: tuple[bytes, str, int],
) -> PlateOutcome:
    plate_id = new_id(PLATE_ID_PREFIX.rstrip("-"))
    geometry = plate.geometry
    placed = [
        PlacedField(geometry.row_names[f.row], geometry.column_names[f.column], f.index) for f, _ in staged
    ]
    documents = _group_documents(plate, placed)
    prefix = layout.plate_prefix(plate_id)
    written: list[str] = []
    moved: list[str] = []
    try:
        for key, body in documents.items():
            repository.store.write(f"{prefix}/{key}", body)
            written.append(f"{prefix}/{key}")
        repository.store.write(layout.plate_files_key(plate_id), files[0])
        written.append(layout.plate_files_key(plate_id))
        with repository.transaction() as session:
            study = ensure_study(repository, session, run, request.study)
            run.record(session)
            file_id = new_id("file")
            session.add(
                OriginalFileRow(
                    id=file_id,
                    study_id=study.id,
                    name=request.location.rstrip("/").rsplit("/", 1)[-1],
                    source_path=request.location,
                    format=f"plate/{plate.kind}",
                    size=files[2],
                    sha256=files[1],
                )
            )
            session.add(_plate_row(plate_id, study.id, run.id, plate, request, documents))
            session.flush()
            session.add_all(_well_rows(plate_id, plate, treatments))
            rows = []
            for (item, image), where in zip(staged, placed, strict=True):
                run.intend(image.image_id)
                repository.store.move(
                    layout.staged_image_prefix(run.id, image.image_id), layout.image_prefix(image.image_id)
                )
                moved.append(image.image_id)
                repository.store.move(
                    layout.staged_manifest_key(run.id, image.image_id), layout.manifest_key(image.image_id)
                )
                row = image_row(image, item.index, study.id, file_id, run.id, run.generated)
                row.plate_id, row.well_row, row.well_column, row.field = (
                    plate_id,
                    where.row,
                    where.column,
                    item.index,
                )
                rows.append(row)
            session.add_all(rows)
            session.flush()
            search.index_images(session, study, rows)
            audit.record(
                session,
                run.actor,
                "ingest.plate",
                f"study:{study.id}",
                plate=plate_id,
                name=plate.name,
                file=file_id,
                sha256=files[1],
                fields=len(rows),
            )
    except BaseException:
        for image_id in moved:
            repository.store.delete(layout.image_prefix(image_id))
            repository.store.delete(layout.manifest_key(image_id))
        for key in written:
            repository.store.delete(key)
        raise
    run.published(study.id)
    return PlateOutcome(
        request.location,
        "ingested",
        plate_id=plate_id,
        name=plate.name,
        layout=plate.kind,
        wells=len(plate.wells),
        fields=len(staged),
        images=[image.image_id for _, image in staged],
        missing=list(plate.missing),
    )


def _group_documents(plate: PlateLayout, placed: list[PlacedField]) -> dict[str, bytes]:
    """The plate's own zarr.json documents: the plate group, a group per row, a group per well."""
    geometry = plate.geometry
    attributes = plate_attributes(plate.name, geometry.row_names, geometry.column_names, placed)
    documents = {"zarr.json": group_document(attributes)}
    wells: dict[str, list[PlacedField]] = {}
    for where in placed:
        wells.setdefault(where.well_path, []).append(where)
    for row in sorted({where.row for where in placed}):
        documents[f"{row}/zarr.json"] = group_document()
    for path, fields in wells.items():
        documents[f"{path}/zarr.json"] = group_document(well_attributes(fields))
    return documents


def _plate_row(
    plate_id: str,
    study_id: str,
    run_id: str,
    plate: PlateLayout,
    request: PlateRequest,
    documents: dict[str, bytes],
) -> PlateRow:
    manifest = {key: hashlib.sha256(body).hexdigest() for key, body in sorted(documents.items())}
    return PlateRow(
        id=plate_id,
        study_id=study_id,
        run_id=run_id,
        name=plate.name,
        rows=plate.geometry.row_names,
        columns=plate.geometry.column_names,
        acquisitions=[{"id": index, "name": name} for index, name in enumerate(plate.acquisitions)],
        channels=[
            {"name": c.name, "emission_nm": c.emission_nm, "excitation_nm": c.excitation_nm}
            for c in plate.channels
        ],
        field_count=max((f.index + 1 for f in plate.fields), default=1),
        source={
            "layout": plate.kind,
            "folder": request.location,
            "pattern": request.pattern,
            "platemap": str(request.platemap) if request.platemap else None,
        },
        missing=list(plate.missing),
        storage_key=layout.plate_prefix(plate_id),
        manifest_sha256=hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest(),
    )


def _well_rows(plate_id: str, plate: PlateLayout, treatments: list[Treatment]) -> list[WellRow]:
    """A row per well that has images or a platemap entry."""
    names_r, names_c = plate.geometry.row_names, plate.geometry.column_names
    by_well = {(t.row, t.column): t for t in treatments}
    return [
        WellRow.treated(plate_id, names_r[r], names_c[c], by_well.get((r, c)))
        for r, c in sorted(set(plate.wells) | set(by_well))
    ]

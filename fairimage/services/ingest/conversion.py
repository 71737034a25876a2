"""Converting one input into the run's staging area, verifying it, and publishing it in one catalog
transaction; the same steps run here and on cluster workers."""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr
from sqlalchemy.orm import Session

from fairimage.catalog import queries
from fairimage.catalog.tables import ImageRow, OriginalFileRow, StudyRow
from fairimage.formats import ImageSource, open_file
from fairimage.formats.base import OpenedFile
from fairimage.formats.dicom import Instance
from fairimage.model.errors import ConflictError, CorruptFileError, FairimageError, NotFoundError
from fairimage.model.image import ImageMetadata
from fairimage.model.study import new_id
from fairimage.ngff.chunks import StoredObject, thread_count
from fairimage.ngff.metadata import parse_multiscale
from fairimage.ngff.writer import (
    ImagePlan,
    WriteOptions,
    WrittenImage,
    WrittenPart,
    create_image,
    finish_image,
    plan_image,
    write_planes,
)
from fairimage.services.discovery import search
from fairimage.services.governance import audit
from fairimage.services.ingest.credentials import file_mark
from fairimage.services.ingest.runs import Run
from fairimage.services.privacy import phi
from fairimage.services.progress import Progress
from fairimage.services.repository import Repository
from fairimage.storage import ImagePrefix, Store, layout

Status = Literal["ingested", "already_present", "failed", "skipped"]
DEFAULT_STUDY = "default"
_HASH_BLOCK = 4 << 20
IN_FLIGHT_BYTES = 256 << 20
"""Pixels of the images staged at once by ``stage_concurrently`` (the memory bound of a plate's ingest)."""


@dataclass
class FileOutcome:
    """What happened to one input, as the CLI and API report it."""

    path: str
    status: Status
    format: str | None = None
    file_id: str | None = None
    images: list[str] = field(default_factory=list)
    error: str | None = None
    parts: int = 1  # conversion tasks; more than one when a cluster split a large image between workers
    warnings: list[str] = field(default_factory=list)  # e.g. a file name that may identify a person
    labels: list[str] = field(default_factory=list)  # copied from the input: "NAME (ID, made by ...)"


@dataclass(frozen=True)
class Conversion:
    """Everything a conversion needs besides the file, small enough to send to a cluster worker: where the
    store is (credentials stay in each machine's environment), how to write, and the run's staging area."""

    storage: str
    s3_endpoint: str | None
    options: WriteOptions
    run_id: str


@dataclass
class ConvertedFile:
    """A file converted into the run's staging area, ready to publish."""

    format: str
    staged: list[Staged]


@dataclass(frozen=True)
class InputFile:
    """One input: a file, an OME-Zarr folder, the files of one DICOM series (``series``: their headers,
    read once when ingest grouped them), or a multi-file OME-TIFF (``path`` and its ``companions``)."""

    path: Path
    named: bool  # given by the user (an unsupported file is then an error) rather than found in a folder
    order: int  # its place among the inputs: outcomes are reported in this order, a path given twice twice
    series: tuple[Instance, ...] = ()
    companions: tuple[Path, ...] = ()

    @property
    def members(self) -> tuple[Path, ...]:
        """Every file the input is made of (none for a plain file or folder)."""
        if self.companions:
            return (self.path, *self.companions)
        return tuple(instance.path for instance in self.series)

    @property
    def name(self) -> str:
        """How the input is named in the catalog and in messages."""
        if len(self.members) > 1:
            kind = "multi-file OME-TIFF" if self.companions else "DICOM series"
            return f"{self.path.name} (+{len(self.members) - 1} files of its {kind})"
        return self.path.name


def already_present(repository: Repository, path: Path, sha256: str) -> FileOutcome | None:
    """The outcome for a file whose content is stored already, or None."""
    with repository.reading() as session:
        present = queries.file_by_sha256(session, sha256)
        if present is None:
            return None
        return FileOutcome(
            str(path), "already_present", present.format, present.id, [image.id for image in present.images]
        )


def failure(path: Path | str, exc: BaseException) -> FileOutcome:
    """What the user is told about a file (or URL: given as text) that could not be ingested: one line
    naming it."""
    if isinstance(exc, FairimageError):
        status: Status = "skipped" if exc.code == "unsupported" else "failed"
        message = exc.message
        if exc.code == "storage" and Path(path).name not in message:
            message = f"{path}: {message}"  # the store names its disk or key; the user needs the input too
        return FileOutcome(str(path), status, error=message)
    if isinstance(exc, MemoryError):
        return FileOutcome(str(path), "failed", error=f"{path}: out of memory while converting")
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return FileOutcome(
        str(path),
        "failed",
        error=f"{path}: unexpected {type(exc).__name__}: {first_line}; please report this",
    )


def convert_file(store: Store, conversion: Conversion, path: Path, progress: Progress) -> ConvertedFile:
    """Convert every image in one file into the run's staging area. Touches no catalog, so it runs here or
    on a cluster worker alike."""
    with open_file(path) as opened:
        return convert_opened(store, conversion, path, opened, progress)


def convert_opened(
    store: Store, conversion: Conversion, path: Path, opened: OpenedFile, progress: Progress
) -> ConvertedFile:
    progress.start_file(path, sum(source.metadata.nbytes for source in opened.images))
    staged = [stage_image(store, conversion, source, progress) for source in opened.images]
    return ConvertedFile(opened.format, staged)


@dataclass
class Staged:
    image_id: str
    source_dtype: str
    metadata_name: str
    written: WrittenImage
    axes: list[dict[str, str | None]]
    scale: tuple[float, ...]
    manifest_sha256: str
    stored_bytes: int
    object_count: int
    acquisition: dict[str, str] = field(default_factory=dict)
    dicom: dict[str, Any] | None = None
    quarantine: dict[str, Any] | None = None


def stage_image(store: Store, conversion: Conversion, source: ImageSource, progress: Progress) -> Staged:
    staging = begin_staging(store, conversion, source.metadata)
    part = write_planes(staging.plan, source, staging.target(store), on_progress=progress.advance)
    return finish_staging(store, conversion, staging, [part])


def stage_concurrently(
    store: Store,
    conversion: Conversion,
    sources: Iterable[tuple[Path, ImageSource]],
    progress: Progress,
    in_flight_bytes: int = IN_FLIGHT_BYTES,
) -> list[Staged]:
    """Stage many small images (a plate's fields), several at once, in the order given.

    One field at a time leaves cores idle: its reading, zarr metadata and verification run on one thread,
    and only its chunks on all of them. So up to a core's count of images are staged together, as long as
    their pixels stay within ``in_flight_bytes`` (one image is always let through, whatever its size).
    ``sources`` is consumed as images are started, so that a source is only made when it is needed.
    """
    limit = thread_count(conversion.options.threads)
    staged: list[Staged] = []
    pending: deque[tuple[Future[Staged], int]] = deque()
    held = 0
    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="fairimage-stage") as pool:
        try:
            for path, source in sources:
                nbytes = source.metadata.nbytes
                while pending and (len(pending) >= limit or held + nbytes > in_flight_bytes):
                    future, size = pending.popleft()
                    staged.append(future.result())
                    held -= size
                progress.start_file(path, nbytes)
                pending.append((pool.submit(stage_image, store, conversion, source, progress), nbytes))
                held += nbytes
            staged.extend(future.result() for future, _ in pending)
        except BaseException:
            for future, _ in pending:
                future.cancel()  # those not started; the run removes whatever was staged
            raise
    return staged


@dataclass(frozen=True)
class Staging:
    """An image being written into the run's staging area, maybe in parts by several cluster workers."""

    image_id: str
    prefix: str
    plan: ImagePlan

    def target(self, store: Store) -> ImagePrefix:
        return ImagePrefix(store, self.prefix)


def begin_staging(store: Store, conversion: Conversion, meta: ImageMetadata) -> Staging:
    """Plan an image and write its arrays' metadata under a new id in the staging area."""
    image_id = new_id("img")
    staging = Staging(
        image_id,
        layout.staged_image_prefix(conversion.run_id, image_id),
        plan_image(meta, conversion.options),
    )
    create_image(staging.plan, staging.target(store))
    return staging


def finish_staging(
    store: Store,
    conversion: Conversion,
    staging: Staging,
    parts: list[WrittenPart],
    attributes: dict[str, Any] | None = None,
    volume_written: bool = False,
) -> Staged:
    """After every part is written: OME attributes (and ``attributes`` beside them), verification and the
    manifest. ``volume_written``: a volume's levels that halve z are in ``parts`` already."""
    meta = staging.plan.meta
    written = finish_image(
        staging.plan, staging.target(store), parts, attributes=attributes, volume_written=volume_written
    )
    verify_staged(store, staging.prefix, meta.name, written)
    manifest = build_manifest(store, staging.prefix, written.chunks)
    body = json.dumps(manifest, indent=1, sort_keys=True).encode()
    store.write(layout.staged_manifest_key(conversion.run_id, staging.image_id), body)
    return Staged(
        image_id=staging.image_id,
        source_dtype=meta.dtype,
        metadata_name=meta.name,
        written=replace(written, chunks={}),  # in the manifest now; no need to carry them back
        axes=[axis.model_dump() for axis in meta.axes],
        scale=meta.scale,
        manifest_sha256=hashlib.sha256(body).hexdigest(),
        stored_bytes=sum(entry["size"] for entry in manifest["objects"].values()),
        object_count=len(manifest["objects"]),
        acquisition=dict(meta.acquisition),
        dicom=meta.dicom,
    )


def verify_staged(store: Store, prefix: str, name: str, written: WrittenImage) -> None:
    """Re-open what was staged: valid OME-NGFF metadata, every level present with the planned shape."""
    group = zarr.open_group(store.zarr_store(prefix, read_only=True), mode="r")
    multiscale = parse_multiscale(group.attrs.asdict(), name)
    if len(multiscale.datasets) != len(written.levels):
        raise CorruptFileError(
            f"{name}: staged image lists {len(multiscale.datasets)} levels, "
            f"{len(written.levels)} were written"
        )
    for level in written.levels:
        array = group.get(level.path)
        if (
            not isinstance(array, zarr.Array)
            or tuple(array.shape) != level.shape
            or np.dtype(array.dtype).name != written.dtype
        ):
            raise CorruptFileError(f"{name}: staged level {level.path} does not match what was written")


def build_manifest(store: Store, prefix: str, written: dict[str, StoredObject]) -> dict[str, Any]:
    """Every stored key of an image with its size and sha256, so a fixity check can find one flipped byte.

    Chunks were hashed as they were written; the listing must hold exactly those (same sizes) plus the
    zarr.json metadata files, which are read back and hashed here.
    """
    objects = {}
    for info in store.list(prefix):
        key = info.key[len(prefix) + 1 :]
        chunk = written.get(key)
        if chunk is None:
            objects[key] = {"size": info.size, "sha256": _object_sha256(store, info.key)}
        elif chunk.size == info.size:
            objects[key] = {"size": chunk.size, "sha256": chunk.sha256}
        else:
            raise CorruptFileError(f"{prefix}/{key}: stored {info.size} bytes, {chunk.size} were written")
    missing = written.keys() - objects.keys()
    if missing:
        raise CorruptFileError(f"{prefix}: {len(missing)} written chunks are missing, e.g. {min(missing)}")
    return {"format": "fairimage-manifest/1", "algorithm": "sha256", "objects": objects}


def _object_sha256(store: Store, key: str) -> str:
    digest = hashlib.sha256()
    with store.open(key) as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def publish(
    repository: Repository,
    run: Run,
    path: Path,
    study_name: str,
    sha256: str,
    size: int,
    converted: ConvertedFile,
    name: str | None = None,
    kept: list[str] | None = None,
) -> FileOutcome:
    """Move a file's staged images into place and record them in one transaction; undo the moves if it
    fails. Only the process holding the run does this."""
    fmt, staged = converted.format, converted.staged
    generated, noted = file_mark(path, fmt, run.generated)  # what --generated-by or the file itself says
    file_id = new_id("file")
    moved: list[str] = []
    try:
        with repository.transaction() as session:
            study = ensure_study(repository, session, run, study_name)
            run.record(session)
            session.add(
                OriginalFileRow(
                    id=file_id,
                    study_id=study.id,
                    name=name or path.name,
                    source_path=str(path),
                    format=fmt,
                    size=size,
                    sha256=sha256,
                    kept=kept or None,
                )
            )
            session.flush()
            rows = []
            for index, image in enumerate(staged):
                run.intend(image.image_id)
                repository.store.move(
                    layout.staged_image_prefix(run.id, image.image_id), layout.image_prefix(image.image_id)
                )
                moved.append(image.image_id)
                repository.store.move(
                    layout.staged_manifest_key(run.id, image.image_id), layout.manifest_key(image.image_id)
                )
                rows.append(image_row(image, index, study.id, file_id, run.id, generated))
                session.add(rows[-1])
            session.flush()
            study.quarantined = (study.quarantined or 0) + sum(1 for image in staged if image.quarantine)
            search.index_images(session, study, rows)
            headers = [(image.image_id, image.dicom) for image in staged if image.dicom]
            found = phi.note_file(session, study, name or path.name, headers)
            audit.record(
                session,
                run.actor,
                "ingest.file",
                f"study:{study.id}",
                file=file_id,
                name=name or path.name,
                sha256=sha256,
                size=size,
                images=[image.image_id for image in staged],
            )
    except BaseException:
        for image_id in moved:
            repository.store.delete(layout.image_prefix(image_id))
            repository.store.delete(layout.manifest_key(image_id))
        raise
    run.published(study.id)
    warnings = noted + [
        f"{path}: {_where(finding['field'])} {finding['finding']}; publication waits for a steward"
        for finding in found
    ]
    return FileOutcome(
        str(path), "ingested", fmt, file_id, [image.image_id for image in staged], warnings=warnings
    )


def ensure_study(repository: Repository, session: Session, run: Run, name: str) -> StudyRow:
    """The study named ``name``, made (with the repository's default policy, audited) if it is new."""
    study = queries.study_by_name(session, name)
    if study is not None and study.mirror_of is not None:
        raise ConflictError(f"study {name!r} is a mirror of {study.mirror_of}: add images at its origin")
    if study is not None:
        return study
    study = StudyRow(id=new_id("study"), name=name, description="", policy=repository.settings.default_policy)
    session.add(study)
    session.flush()  # the study row must exist before rows that refer to it
    audit.record(session, run.actor, "study.create", f"study:{study.id}", name=name, policy=study.policy)
    return study


def _where(field: str) -> str:
    return "its name" if field.startswith("file name ") else field


def image_row(
    image: Staged,
    index: int,
    study_id: str,
    file_id: str,
    run_id: str,
    generated: dict[str, Any] | None = None,
) -> ImageRow:
    written = image.written
    return ImageRow(
        id=image.image_id,
        run_id=run_id,
        generated=generated,
        acquisition=image.acquisition or None,
        dicom=image.dicom,
        quarantine=image.quarantine,
        study_id=study_id,
        file_id=file_id,
        name=image.metadata_name,
        series_index=index,
        axes=image.axes,
        shape=list(written.levels[0].shape),
        dtype=written.dtype,
        source_dtype=image.source_dtype,
        scale=list(image.scale),
        channels=[channel.model_dump() for channel in written.channels],
        levels=[
            {
                "path": level.path,
                "shape": list(level.shape),
                "chunks": list(level.chunks),
                "scale": list(level.scale),
            }
            for level in written.levels
        ],
        storage_key=layout.image_prefix(image.image_id),
        manifest_key=layout.manifest_key(image.image_id),
        manifest_sha256=image.manifest_sha256,
        stored_bytes=image.stored_bytes,
        object_count=image.object_count,
    )


def content_size(path: Path) -> int:
    """Bytes of a file, or of every file in a folder (OME-Zarr), as content_sha256 counts them."""
    try:
        if path.is_file():
            return path.stat().st_size
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    except OSError as exc:
        raise NotFoundError(f"{path}: cannot read ({exc.strerror})") from exc


def content_sha256(path: Path) -> tuple[str, int]:
    """sha256 and size of a file; for a folder (OME-Zarr), of its files' relative paths and contents."""
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    total = 0
    for directory, subdirs, files in os.walk(path):
        subdirs.sort()
        for name in sorted(files):
            file = Path(directory) / name
            file_hash, file_size = file_sha256(file)
            digest.update(f"{file.relative_to(path).as_posix()}\0{file_hash}\n".encode())
            total += file_size
    return digest.hexdigest(), total


def files_sha256(paths: Sequence[Path]) -> tuple[str, int]:
    """The identity of an input made of several files (a DICOM series, a multi-file OME-TIFF): the sha256
    of its files' sha256s, sorted (the same files give the same input, whatever their names), and their
    total size."""
    hashes = [file_sha256(path) for path in paths]
    sha256 = hashlib.sha256("\n".join(sorted(h for h, _ in hashes)).encode()).hexdigest()
    return sha256, sum(n for _, n in hashes)


def file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as f:
            while block := f.read(_HASH_BLOCK):
                digest.update(block)
                size += len(block)
    except OSError as exc:
        raise NotFoundError(f"{path}: cannot read ({exc.strerror})") from exc
    return digest.hexdigest(), size

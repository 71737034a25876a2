"""Ingest: files and folders in, checksummed OME-Zarr 0.5 images and catalog rows out.

Per input: hash the original, skip it if that content is already stored, convert each image it holds into the
run's staging area, verify what was written, then publish all of the file's images in one catalog transaction.
A failing input is reported and never stops the others.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fairimage.catalog import queries
from fairimage.formats import is_zarr_dir
from fairimage.formats.dicom import DICM_OFFSET, Instance, is_dicom, open_series, read_header
from fairimage.model.errors import FairimageError
from fairimage.ngff.writer import (
    WriteOptions,
)
from fairimage.services.ingest import originals
from fairimage.services.ingest.cluster import ClusterSpec, ingest_on_cluster
from fairimage.services.ingest.conversion import (
    DEFAULT_STUDY,
    Conversion,
    FileOutcome,
    InputFile,
    Progress,
    Status,
    already_present,
    content_sha256,
    content_size,
    convert_file,
    convert_opened,
    failure,
    file_sha256,
    publish,
)
from fairimage.services.ingest.runs import Run, ingest_run
from fairimage.services.privacy import deid
from fairimage.services.repository import Repository


def ingest_paths(
    repository: Repository,
    paths: list[Path],
    study: str = DEFAULT_STUDY,
    progress: Progress | None = None,
    cluster: ClusterSpec | None = None,
    actor: str = "operator",
) -> list[FileOutcome]:
    """Ingest every image file found in ``paths`` (folders are walked) into ``study``, here or, with
    ``cluster``, on a dask.distributed cluster; the catalog is written here either way."""
    progress = progress or Progress()
    outcomes: list[FileOutcome] = []
    inputs: list[InputFile] = []
    for path in paths:
        if not path.exists():
            outcomes.append(FileOutcome(str(path), "failed", error=f"{path}: no such file or folder"))
        elif path.is_file() or is_zarr_dir(path):
            inputs.append(InputFile(path, True, len(inputs)))
        else:
            for found in _walk(path):
                inputs.append(InputFile(found, False, len(inputs)))
    inputs = _series_inputs(inputs, outcomes)
    with ingest_run(repository, actor) as run:
        conversion = conversion_for(repository, run)
        run.parameters = _parameters(conversion.options, cluster)
        results: Iterator[tuple[InputFile, FileOutcome]]
        here = inputs if cluster is None else [item for item in inputs if item.series]
        results = (_ingest_here(repository, run, conversion, item, study, progress) for item in here)
        if cluster is not None:  # DICOM series are converted here: their de-identification key stays here
            elsewhere = [item for item in inputs if not item.series]
            results = itertools.chain(
                results, ingest_on_cluster(repository, run, conversion, elsewhere, study, progress, cluster)
            )
        done: dict[InputFile, FileOutcome] = {}
        for item, outcome in results:
            if outcome.status == "skipped" and item.named:
                outcome.status = "failed"  # a file the user named is an error; one found in a folder is not
            done[item] = outcome
    return outcomes + [done[item] for item in inputs]  # in input order, however a cluster finished them


def conversion_for(repository: Repository, run: Run) -> Conversion:
    """How ``run`` writes images: the repository's store and write options."""
    settings = repository.settings
    options = WriteOptions(
        chunk_bytes=settings.chunk_bytes,
        cname=settings.cname,
        clevel=settings.clevel,
        shuffle=settings.shuffle,
        threads=settings.threads,
        shard_chunks=settings.shard_chunks,
    )
    return Conversion(settings.storage, settings.s3_endpoint, options, run.id)


def _parameters(options: WriteOptions, cluster: ClusterSpec | None) -> dict[str, Any]:
    """How a run writes images, as its provenance records it."""
    parameters: dict[str, Any] = {
        "format": "OME-Zarr 0.5",
        "chunk_bytes": options.chunk_bytes,
        "compressor": f"blosc {options.cname} level {options.clevel} shuffle {options.shuffle}",
        "shard_chunks": options.shard_chunks,
        "pyramid": "2x mean, down to one chunk",
    }
    if cluster is not None:
        parameters["cluster"] = {
            "scheduler": cluster.scheduler or f"LocalCluster of {cluster.workers} workers",
            "split_bytes": cluster.split_bytes,
        }
    return parameters


def _walk(folder: Path) -> Iterator[Path]:
    """Files below ``folder`` in name order; an OME-Zarr folder is one input; hidden entries are ignored."""
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_file() or is_zarr_dir(child):
            yield child
        elif child.is_dir():
            yield from _walk(child)


def _series_inputs(inputs: list[InputFile], outcomes: list[FileOutcome]) -> list[InputFile]:
    """DICOM files become one input per series (by Study and Series Instance UID, and orientation: a
    localizer's three planes are three images), wherever their files were found; files without an image
    (DICOMDIR, reports, structure sets) are skipped, and are errors only if named."""
    others: list[InputFile] = []
    headers: list[tuple[InputFile, Instance]] = []
    for item in inputs:
        if item.path.is_file() and _is_dicom_file(item.path):
            try:
                headers.append((item, read_header(item.path)))
            except FairimageError as exc:
                outcomes.append(failure(item.path, exc))
        else:
            others.append(item)
    by_series: dict[tuple[Any, ...], list[tuple[InputFile, Instance]]] = {}
    for item, header in headers:
        if not header.has_pixels:
            status: Status = "failed" if item.named else "skipped"
            message = f"{item.path}: a DICOM file without an image (DICOMDIR, report, structure set)"
            outcomes.append(FileOutcome(str(item.path), status, "dicom", error=message))
            continue
        by_series.setdefault((header.study_uid, header.series_uid, header.plane), []).append((item, header))
    series = [
        InputFile(
            members[0][0].path,
            any(item.named for item, _ in members),
            members[0][0].order,
            tuple(sorted((header for _, header in members), key=lambda header: header.path)),
        )
        for members in by_series.values()
    ]
    return sorted([*others, *series], key=lambda item: item.order)


def _is_dicom_file(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return is_dicom(f.read(DICM_OFFSET + 4))
    except OSError:
        return False


def _ingest_here(
    repository: Repository, run: Run, conversion: Conversion, item: InputFile, study: str, progress: Progress
) -> tuple[InputFile, FileOutcome]:
    if item.series:
        return item, _ingest_series(repository, run, conversion, item, study, progress)
    path = item.path
    try:
        size = content_size(path)
        with repository.reading() as session:
            maybe_present = queries.file_of_size_exists(session, size)
        if maybe_present:  # hash first: a re-run over files already stored converts nothing
            sha256, size = content_sha256(path)
            present = already_present(repository, path, sha256)
            if present is not None:
                return item, present
            converted = convert_file(repository.store, conversion, path, progress)
        else:  # nothing stored has this size, so the content is new: hash it while converting
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fairimage-hash") as pool:
                hashing = pool.submit(content_sha256, path)
                converted = convert_file(repository.store, conversion, path, progress)
                sha256, size = hashing.result()
        return item, publish(repository, run, path, study, sha256, size, converted)
    except Exception as exc:  # noqa: BLE001 - every failure is reported per file, never stops the others
        return item, failure(path, exc)


def _ingest_series(
    repository: Repository, run: Run, conversion: Conversion, item: InputFile, study: str, progress: Progress
) -> FileOutcome:
    """A DICOM series: its files' checksum, then conversion of its de-identified image."""
    try:
        hashes = [file_sha256(member) for member in item.members]
        # The series' checksum: of its files' checksums, in order, so the same files give the same series.
        sha256 = hashlib.sha256("\n".join(sorted(h for h, _ in hashes)).encode()).hexdigest()
        size = sum(n for _, n in hashes)
        present = already_present(repository, item.path, sha256)
        if present is not None:
            return present
        reports: list[deid.Report] = []
        with open_series(item.series, prepare=deid.header_step(repository.settings, reports)) as opened:
            converted = convert_opened(repository.store, conversion, item.path, opened, progress)
        reasons = sorted({reason for report in reports for reason in report.burned_in})
        if reasons:  # the pixels may show what de-identification of the header cannot remove
            for image in converted.staged:
                image.quarantine = {"reasons": reasons}
        kept = (
            originals.keep(repository, sha256, item.members)
            if repository.settings.keep_dicom_originals
            else []
        )
        try:
            outcome = publish(
                repository, run, item.path, study, sha256, size, converted, name=item.name, kept=kept
            )
        except BaseException:
            for key in kept:
                repository.store.delete(key)
            raise
        if reasons:
            outcome.warnings.append(
                f"{item.path}: quarantined ({'; '.join(reasons)}): its study is held back until a "
                f"steward clears it with 'fairimage dicom clear {outcome.images[0]} --note ...'"
            )
        return outcome
    except Exception as exc:  # noqa: BLE001 - every failure is reported per input, never stops the others
        return failure(item.path, exc)

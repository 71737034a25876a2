"""Ingest spread over a dask.distributed cluster: workers hash and convert files, this process publishes.

Workers need to see the input paths (a shared folder) and the repository's store (a shared folder or S3, with
credentials in their own environment). A file is first hashed by a worker; if the catalog does not have that
content yet, it is converted into the run's staging area by one task or, when it holds a large image, by
several (runs of planes, or bands of rows), whose results this process assembles. Files are published here
as they complete, so one file's failure is reported for that file and never loses the others.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fairimage.formats import ImageSource, open_file
from fairimage.model.errors import FairimageError, InvalidInputError
from fairimage.ngff.writer import (
    ImagePlan,
    Part,
    WrittenPart,
    complete_pyramid,
    volume_levels,
    write_planes,
    write_volume_level,
    z_runs,
)
from fairimage.services.ingest.conversion import (
    Conversion,
    ConvertedFile,
    FileOutcome,
    InputFile,
    Progress,
    Staged,
    Staging,
    already_present,
    begin_staging,
    content_sha256,
    content_size,
    convert_file,
    failure,
    finish_staging,
    publish,
    stage_image,
)
from fairimage.services.ingest.runs import Run
from fairimage.services.repository import Repository
from fairimage.storage import Store, open_store


@dataclass(frozen=True)
class ClusterSpec:
    """A running scheduler to connect to (``tcp://host:8786``), or a LocalCluster of ``workers`` processes.

    An image larger than ``split_bytes`` is written by several workers at once, each taking some of its
    planes or some bands of rows, so one huge image does not wait for one machine.
    """

    scheduler: str | None = None
    workers: int = 0
    split_bytes: int = 1 << 30


@dataclass(frozen=True)
class _Hashed:
    sha256: str
    size: int


@dataclass
class _FileJob:
    """One new file on its way through the cluster: converted whole, or in parts."""

    item: InputFile
    hashed: _Hashed
    size: int
    format: str = ""
    stagings: list[Staging] = field(default_factory=list)
    parts: dict[int, list[WrittenPart]] = field(default_factory=dict)  # by image index
    completions: dict[int, int] = field(default_factory=dict)  # image index -> level written in row bands
    waiting: int = 0
    failed: FileOutcome | None = None


def ingest_on_cluster(
    repository: Repository,
    run: Run,
    conversion: Conversion,
    inputs: list[InputFile],
    study: str,
    progress: Progress,
    spec: ClusterSpec,
) -> Iterator[tuple[InputFile, FileOutcome]]:
    from distributed import as_completed

    with _client(spec) as client:
        sizes = {item.path: content_size(item.path) for item in inputs}
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        files = f"{len(inputs)} file" + ("s" if len(inputs) != 1 else "")
        progress.start_file(Path(f"{files} on {workers} dask workers"), sum(sizes.values()))
        tasks: dict[Any, tuple[str, Any]] = {
            client.submit(_hash, item.path, pure=False): ("hash", item) for item in inputs
        }
        pending = as_completed(list(tasks))
        for future in pending:
            kind, subject = tasks.pop(future)
            result = future.result()
            if kind == "hash":
                item = subject
                outcome = result if isinstance(result, FileOutcome) else None
                outcome = outcome or already_present(repository, item.path, result.sha256)
                if outcome is not None:
                    progress.advance(sizes[item.path])
                    yield item, outcome
                    continue
                job = _FileJob(item, result, sizes[item.path])
                try:
                    started = _start(client, repository, conversion, job, spec, workers)
                except Exception as exc:  # noqa: BLE001 - the client could not open the file: report it
                    progress.advance(job.size)
                    yield item, failure(item.path, exc)
                    continue
                for task, what in started:
                    tasks[task] = what
                    pending.add(task)
            elif kind == "whole":
                job = subject
                progress.advance(job.size)
                yield job.item, _publish_result(repository, run, job, study, result)
            else:
                job, image_index, share = subject
                progress.advance(share)
                job.waiting -= 1
                if isinstance(result, FileOutcome):
                    job.failed = job.failed or result
                else:
                    job.parts.setdefault(image_index, []).append(result)
                if job.waiting == 0:
                    yield job.item, _finish_parts(client, repository, run, conversion, job, study, workers)


def stage_on_cluster(
    spec: ClusterSpec, conversion: Conversion, sources: list[ImageSource], progress: Progress
) -> list[Staged]:
    """Stage ``sources`` (the fields of a plate, say) on the cluster, one task each, in their order; each
    worker process writes its images into the run's staging area. All or nothing: the first failure is
    raised, one line naming what failed, and what was staged is removed with the run."""
    from distributed import as_completed

    with _client(spec) as client:
        futures = {
            client.submit(_stage, conversion, source, pure=False): index
            for index, source in enumerate(sources)
        }
        staged: dict[int, Staged] = {}
        for future in as_completed(list(futures)):
            result = future.result()
            if isinstance(result, FileOutcome):
                for other in futures:
                    other.cancel()
                raise InvalidInputError(result.error or "a field could not be converted")
            index = futures[future]
            progress.advance(sources[index].metadata.nbytes)
            staged[index] = result
        return [staged[index] for index in range(len(sources))]


@dataclass(frozen=True)
class _FileImage:
    """Image ``index`` of the file at ``path``, as a worker opens it."""

    path: Path
    index: int

    @contextmanager
    def open(self) -> Iterator[ImageSource]:
        with open_file(self.path) as opened:
            yield opened.images[self.index]


class SourceOpener(Protocol):
    """How a worker opens an image source (a folder of sections, say): picklable, as it travels to the
    workers; ``path`` names the input in messages."""

    @property
    def path(self) -> Path: ...

    def open(self) -> AbstractContextManager[ImageSource]: ...


def write_split_on_cluster(
    spec: ClusterSpec,
    store: Store,
    conversion: Conversion,
    staging: Staging,
    opener: SourceOpener,
    progress: Progress,
) -> tuple[list[WrittenPart], int]:
    """Write a staged image (read by ``opener``) on the cluster: its plane groups or row bands by the
    workers, the planar levels below the bands here, its levels that halve z by the workers again. What
    was written (for ``finish_staging(..., volume_written=True)`` here), and how many parts the workers
    wrote. A worker's failure is raised, one line naming the input; what was staged goes with the run."""
    from distributed import as_completed

    with _client(spec) as client:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        parts = _split(staging.plan, 2 * workers)
        futures = [
            client.submit(_write_opened_part, conversion, opener, staging, part, pure=False) for part in parts
        ]
        written: list[WrittenPart] = []
        for future in as_completed(futures):
            result = future.result()
            if isinstance(result, FileOutcome):
                for other in futures:
                    other.cancel()
                raise _PartFailed(result)
            progress.advance(staging.plan.meta.nbytes // len(parts))
            written.append(result)
        if any(part.rows is not None for part in parts):
            depth = staging.plan.band_depth()
            written.append(complete_pyramid(staging.plan, staging.target(store), depth))
        levels = _volume_levels(client, conversion, opener.path, staging, 2 * workers)
        return written + levels, len(parts) + len(levels)


def _start(
    client: Any,
    repository: Repository,
    conversion: Conversion,
    job: _FileJob,
    spec: ClusterSpec,
    workers: int,
) -> list[tuple[Any, tuple[str, Any]]]:
    """Submit a new file's conversion: one task for the whole file, or, when it holds an image larger than
    ``split_bytes``, its images' metadata written here and their parts (see ``_split``) spread over the
    workers."""
    with open_file(job.item.path) as opened:
        metas = [source.metadata for source in opened.images]
        job.format = opened.format
    if all(meta.nbytes <= spec.split_bytes for meta in metas):
        return [(client.submit(_convert, conversion, job.item.path, pure=False), ("whole", job))]
    started = []
    for image_index, meta in enumerate(metas):
        staging = begin_staging(repository.store, conversion, meta)
        job.stagings.append(staging)
        parts = _split(staging.plan, 2 * workers)
        if any(part.rows is not None for part in parts):
            job.completions[image_index] = staging.plan.band_depth()
        for part in parts:
            opener = _FileImage(job.item.path, image_index)
            task = client.submit(_write_opened_part, conversion, opener, staging, part, pure=False)
            started.append((task, ("part", (job, image_index, job.size // (len(parts) * len(metas))))))
    job.waiting = len(started)
    return started


def _split(plan: ImagePlan, wanted: int) -> list[Part]:
    """About ``wanted`` parts of an image: runs of whole plane groups when it has enough of them, otherwise
    runs of row bands within each plane group (levels down to the band depth; the rest comes after)."""
    groups = len(plan.plane_groups)
    if groups >= wanted:
        return [Part(groups=range(i * groups // wanted, (i + 1) * groups // wanted)) for i in range(wanted)]
    depth = plan.band_depth()
    bands = plan.row_bands(depth)
    per_group = min(len(bands), -(-wanted // groups))
    if per_group < 2:
        return [Part(groups=range(group, group + 1)) for group in range(groups)]
    parts = []
    for group in range(groups):
        for i in range(per_group):
            first, last = bands[i * len(bands) // per_group], bands[(i + 1) * len(bands) // per_group - 1]
            rows = range(first.start, last.stop)
            parts.append(Part(groups=range(group, group + 1), rows=rows, levels=range(depth + 1)))
    return parts


def _finish_parts(
    client: Any,
    repository: Repository,
    run: Run,
    conversion: Conversion,
    job: _FileJob,
    study: str,
    workers: int,
) -> FileOutcome:
    """Once a split file's parts are written: the planar levels below the row bands' depth (here, from the
    stored level), a volume's levels that halve z (spread over the workers, a level at a time, as each is
    made from the one above), then verification and publication here."""
    if job.failed is not None:
        return job.failed
    parts = sum(len(found) for found in job.parts.values())  # the workers' parts
    try:
        for index, depth in job.completions.items():  # the levels below the row bands' depth, from it
            staging = job.stagings[index]
            job.parts[index].append(complete_pyramid(staging.plan, staging.target(repository.store), depth))
        for index, staging in enumerate(job.stagings):
            levels = _volume_levels(client, conversion, job.item.path, staging, 2 * workers)
            job.parts[index].extend(levels)
            parts += len(levels)
        staged = [
            finish_staging(repository.store, conversion, staging, job.parts[index], volume_written=True)
            for index, staging in enumerate(job.stagings)
        ]
    except _PartFailed as failed:
        return failed.outcome
    except Exception as exc:  # noqa: BLE001 - reported for this file; the others go on
        return failure(job.item.path, exc)
    outcome = _publish_result(repository, run, job, study, ConvertedFile(job.format, staged))
    outcome.parts = parts
    return outcome


def _volume_levels(
    client: Any, conversion: Conversion, path: Path, staging: Staging, wanted: int
) -> list[WrittenPart]:
    """A volume's levels that halve z, each in up to ``wanted`` runs of z written by the workers; the first
    failure is raised (``_PartFailed``)."""
    written: list[WrittenPart] = []
    for index in volume_levels(staging.plan):
        runs = z_runs(staging.plan, index, wanted)
        futures = [
            client.submit(_write_volume_level, conversion, path, staging, index, run, pure=False)
            for run in runs
        ]
        for result in client.gather(futures):
            if isinstance(result, FileOutcome):
                raise _PartFailed(result)
            written.append(result)
    return written


class _PartFailed(FairimageError):
    """A worker's part of an input failed: its outcome, naming the input, is the input's."""

    def __init__(self, outcome: FileOutcome) -> None:
        super().__init__(outcome.error or f"{outcome.path}: a cluster worker failed")
        self.outcome = outcome


def _publish_result(
    repository: Repository, run: Run, job: _FileJob, study: str, result: object
) -> FileOutcome:
    if isinstance(result, FileOutcome):
        return result
    assert isinstance(result, ConvertedFile)
    try:
        return publish(repository, run, job.item.path, study, job.hashed.sha256, job.hashed.size, result)
    except Exception as exc:  # noqa: BLE001 - reported for this file; the others go on
        return failure(job.item.path, exc)


@contextmanager
def _client(spec: ClusterSpec) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    if not spec.scheduler:
        with (
            LocalCluster(n_workers=spec.workers, threads_per_worker=1, dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(spec.scheduler, timeout=10)
    except OSError as exc:
        raise InvalidInputError(
            f"--scheduler {spec.scheduler}: no dask scheduler answers there ({exc}); start one with "
            "'dask scheduler', or use --workers N for a cluster on this machine"
        ) from exc
    with client:
        yield client


# On the workers ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _store(storage: str, s3_endpoint: str | None) -> Store:
    """One store per worker process and repository, reused by every task."""
    return open_store(storage, s3_endpoint)


def _hash(path: Path) -> _Hashed | FileOutcome:
    try:
        sha256, size = content_sha256(path)
        return _Hashed(sha256, size)
    except Exception as exc:  # noqa: BLE001 - returned, so the client reports it for this file
        return failure(path, exc)


def _write_volume_level(
    conversion: Conversion, path: Path, staging: Staging, index: int, z_cells: range
) -> WrittenPart | FileOutcome:
    try:
        store = _store(conversion.storage, conversion.s3_endpoint)
        return write_volume_level(staging.plan, staging.target(store), index, z_cells)
    except Exception as exc:  # noqa: BLE001 - returned, so the client reports it for this file
        return failure(path, exc)


def _write_opened_part(
    conversion: Conversion, opener: SourceOpener, staging: Staging, part: Part
) -> WrittenPart | FileOutcome:
    try:
        store = _store(conversion.storage, conversion.s3_endpoint)
        with opener.open() as source:
            return write_planes(staging.plan, source, staging.target(store), part)
    except Exception as exc:  # noqa: BLE001 - returned, so the client reports it for this input
        return failure(opener.path, exc)


def _stage(conversion: Conversion, source: ImageSource) -> Staged | FileOutcome:
    try:
        store = _store(conversion.storage, conversion.s3_endpoint)
        return stage_image(store, conversion, source, Progress())
    except Exception as exc:  # noqa: BLE001 - returned, so the client reports it for this image
        return failure(Path(source.metadata.name), exc)


def _convert(conversion: Conversion, path: Path) -> ConvertedFile | FileOutcome:
    try:
        store = _store(conversion.storage, conversion.s3_endpoint)
        return convert_file(store, conversion, path, Progress())
    except Exception as exc:  # noqa: BLE001 - returned, so the client reports it for this file
        return failure(path, exc)

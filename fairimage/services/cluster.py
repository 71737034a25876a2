"""Ingest spread over a dask.distributed cluster: workers hash and convert files, this process publishes.

Workers need to see the input paths (a shared folder) and the repository's store (a shared folder or S3, with
credentials in their own environment). Each file is two tasks: its hash, then, if the catalog does not have
that content yet, its conversion into the run's staging area. Results are published here as they arrive, so
one file's failure is reported for that file and never loses the others.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairimage.model.errors import InvalidInputError
from fairimage.services.ingest import (
    Conversion,
    ConvertedFile,
    FileOutcome,
    InputFile,
    Progress,
    already_present,
    content_sha256,
    convert_file,
    failure,
    publish,
)
from fairimage.services.repository import Repository
from fairimage.services.runs import Run
from fairimage.storage import Store, open_store


@dataclass(frozen=True)
class ClusterSpec:
    """A running scheduler to connect to (``tcp://host:8786``), or a LocalCluster of ``workers`` processes."""

    scheduler: str | None = None
    workers: int = 0


@dataclass(frozen=True)
class _Hashed:
    sha256: str
    size: int


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
        sizes = {item.path: _size(item.path) for item in inputs}
        progress.start_file(Path(f"{len(inputs)} files on {_describe(client)}"), sum(sizes.values()))
        hashes = {client.submit(_hash, item.path, pure=False): item for item in inputs}
        pending = as_completed(list(hashes))
        conversions: dict[Any, tuple[InputFile, _Hashed]] = {}
        for future in pending:
            if future in hashes:
                item = hashes[future]
                hashed = future.result()
                if isinstance(hashed, FileOutcome):
                    progress.advance(sizes[item.path])
                    yield item, hashed
                    continue
                present = already_present(repository, item.path, hashed.sha256)
                if present is not None:
                    progress.advance(sizes[item.path])
                    yield item, present
                    continue
                task = client.submit(_convert, conversion, item.path, pure=False)
                conversions[task] = (item, hashed)
                pending.add(task)
            else:
                item, hashed = conversions.pop(future)
                yield item, _publish_result(repository, run, item, study, hashed, future.result())
                progress.advance(sizes[item.path])


def _publish_result(
    repository: Repository, run: Run, item: InputFile, study: str, hashed: _Hashed, result: object
) -> FileOutcome:
    if isinstance(result, FileOutcome):
        return result
    assert isinstance(result, ConvertedFile)
    try:
        return publish(repository, run, item.path, study, hashed.sha256, hashed.size, result)
    except Exception as exc:  # noqa: BLE001 - reported for this file; the others go on
        return failure(item.path, exc)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


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


def _describe(client: Any) -> str:
    workers = len(client.scheduler_info().get("workers", {}))
    return f"{workers} dask workers"


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


def _convert(conversion: Conversion, path: Path) -> ConvertedFile | FileOutcome:
    try:
        store = _store(conversion.storage, conversion.s3_endpoint)
        return convert_file(store, conversion, path, Progress())
    except Exception as exc:  # noqa: BLE001 - returned, so the client reports it for this file
        return failure(path, exc)

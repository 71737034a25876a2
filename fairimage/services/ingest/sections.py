"""Ingest of a folder of section images (one per z) as one 3D image: checked from names and headers before a
pixel is converted, streamed a z-range of sections at a time, staged, verified and published atomically as
every ingest is.

The original is the folder: one original file in the catalog, whose sha256 is that of the list of its
sections in z order (name, size and sha256 of each, as JSON). The list is stored with the image, in its
``fairimage.sections`` attributes, so that anyone can see which file each plane came from and recompute the
identity; the same sections (same names, same bytes) are never stored twice, and a renamed or re-ordered
section makes another volume, as it is one.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairimage.catalog import queries
from fairimage.formats.sections import Section, SectionFolder, SectionsSource, read_section_folder
from fairimage.model.errors import NotFoundError
from fairimage.model.units import Length
from fairimage.ngff.writer import write_planes
from fairimage.services.ingest.cluster import ClusterSpec, write_split_on_cluster
from fairimage.services.ingest.conversion import (
    DEFAULT_STUDY,
    ConvertedFile,
    FileOutcome,
    Progress,
    Staged,
    already_present,
    begin_staging,
    failure,
    file_sha256,
    finish_staging,
    publish,
)
from fairimage.services.ingest.intake import conversion_for, run_parameters
from fairimage.services.ingest.runs import Run, ingest_run
from fairimage.services.repository import Repository

SECTIONS_FORMAT = "fairimage-sections/1"


@dataclass(frozen=True)
class SectionsRequest:
    """A folder of sections and what the files may not say (given, it wins over theirs): the z spacing,
    and the xy pixel size."""

    folder: Path
    z_spacing: Length | None = None
    pixel_size: Length | None = None
    study: str = DEFAULT_STUDY


@dataclass(frozen=True)
class SectionHashes:
    """Each section's size and sha256 in z order, and the volume's identity made of them."""

    files: list[dict[str, Any]]
    sha256: str
    size: int


def ingest_sections(
    repository: Repository,
    request: SectionsRequest,
    progress: Progress | None = None,
    actor: str = "operator",
    cluster: ClusterSpec | None = None,
) -> FileOutcome:
    """Check, convert and publish one folder of sections as one image, here or with ``cluster`` by its
    workers (which see the same folder and store); a problem is one line and nothing is stored (the
    folder is refused before a pixel is read, or the run's staging area is removed)."""
    progress = progress or Progress()
    try:
        folder = read_section_folder(request.folder, request.z_spacing, request.pixel_size)
        size = sum(_size(section.path) for section in folder.sections)
        with repository.reading() as session:
            maybe_present = queries.file_of_size_exists(session, size)
        hashes: SectionHashes | None = None
        if maybe_present:  # hash first: a re-run over a volume already stored converts nothing
            hashes = hash_sections(folder.sections)
            present = already_present(repository, request.folder, hashes.sha256)
            if present is not None:
                return present
        with ingest_run(repository, actor) as run:
            staged, hashes, shared = _stage(repository, run, folder, hashes, progress, cluster)
            outcome = publish(
                repository,
                run,
                request.folder,
                request.study,
                hashes.sha256,
                hashes.size,
                ConvertedFile(folder.format, [staged]),
                name=folder.described,
            )
        outcome.warnings[:0] = [f"{request.folder}: {warning}" for warning in folder.warnings]
        if shared:
            outcome.parts = shared
        return outcome
    except Exception as exc:  # noqa: BLE001 - one line for the user, whatever failed; never a traceback
        return failure(request.folder, exc)


@dataclass(frozen=True)
class _SectionsOpener:
    """How a cluster worker reads the folder's sections (it sees the same folder)."""

    path: Path
    folder: SectionFolder

    @contextmanager
    def open(self) -> Iterator[SectionsSource]:
        source = SectionsSource(self.folder)
        try:
            yield source
        finally:
            source.close()


def _stage(
    repository: Repository,
    run: Run,
    folder: SectionFolder,
    hashes: SectionHashes | None,
    progress: Progress,
    cluster: ClusterSpec | None = None,
) -> tuple[Staged, SectionHashes, int]:
    """Convert the sections into the run's staging area, here or by ``cluster``'s workers (by z-ranges of
    one chunk deep, or bands of rows), hashing them here meanwhile if not done yet; with the parts the
    workers wrote (0 here)."""
    conversion = conversion_for(repository, run)
    run.parameters = run_parameters(conversion.options, cluster) | {"input": "section folder, stacked in z"}
    store = repository.store
    staging = begin_staging(store, conversion, folder.metadata)
    progress.start_file(folder.folder, folder.metadata.nbytes)
    stop = threading.Event()
    opener = _SectionsOpener(folder.folder, folder)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fairimage-hash") as pool:
        hashing = pool.submit(hash_sections, folder.sections, stop) if hashes is None else None
        try:
            if cluster is None:
                with opener.open() as source:
                    target = staging.target(store)
                    parts = [write_planes(staging.plan, source, target, on_progress=progress.advance)]
                    shared = 0
            else:
                parts, shared = write_split_on_cluster(cluster, store, conversion, staging, opener, progress)
        except BaseException:
            stop.set()  # no need to finish hashing what will not be stored
            raise
        if hashing is not None:
            hashes = hashing.result()
    assert hashes is not None
    attributes = {"fairimage": {"sections": sections_attributes(folder, hashes)}}
    staged = finish_staging(store, conversion, staging, parts, attributes, volume_written=cluster is not None)
    return staged, hashes, shared


def hash_sections(sections: Sequence[Section], stop: threading.Event | None = None) -> SectionHashes:
    """The sha256 of each section file and the volume's: of the JSON list of (z, name, size, sha256), z
    the file's first plane, with ``planes`` for a file of several sections."""
    files: list[dict[str, Any]] = []
    z = 0
    for section in sections:
        if stop is not None and stop.is_set():
            break
        sha256, size = file_sha256(section.path)
        entry = {"z": z, "name": section.path.name, "size": size, "sha256": sha256}
        files.append(entry | ({"planes": section.depth} if section.depth > 1 else {}))
        z += section.depth
    body = json.dumps(files, sort_keys=True, separators=(",", ":")).encode()
    return SectionHashes(files, hashlib.sha256(body).hexdigest(), sum(int(entry["size"]) for entry in files))


def sections_attributes(folder: SectionFolder, hashes: SectionHashes) -> dict[str, Any]:
    """What the image records of its sections (zarr attributes beside ``ome``)."""
    z_axis = folder.metadata.axis_names.index("z")
    return {
        "format": SECTIONS_FORMAT,
        "folder": folder.folder.name,
        "z_spacing": folder.metadata.scale[z_axis],
        "unit": folder.metadata.axes[z_axis].unit,
        # The original file's sha256 in the catalog: sha256 of ``files`` as compact JSON with sorted keys.
        "sha256": hashes.sha256,
        "files": hashes.files,
    }


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise NotFoundError(f"{path}: cannot read ({exc.strerror})") from exc

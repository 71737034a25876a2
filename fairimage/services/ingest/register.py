"""Register in place: catalogue an OME-Zarr image or HCS plate (OME-NGFF 0.4 or 0.5) where it already is, a
local folder, a zipped ``.ozx``, an ``http(s)://`` or ``s3://`` URL, without copying a pixel.

Only metadata is read: the zarr documents of the plate, its wells, each field's image and each pyramid
level. Their sha256 make the manifest (so a fixity check sees a changed document), and the set of them is
the registration's identity (the same OME-Zarr is never registered twice). ``verify_registered`` reads
and hashes every chunk as well, afterwards: then fixity checks the pixels too. Registered data is served
through the same access check as ingested data, from where it is; fairimage never writes there.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from fairimage.catalog import queries
from fairimage.catalog.tables import ImageRow, OriginalFileRow, PlateRow, WellRow
from fairimage.formats.omezarr import well_index
from fairimage.formats.platemap import read_platemap
from fairimage.model.errors import (
    ConflictError,
    CorruptFileError,
    FairimageError,
    InvalidInputError,
    NotFoundError,
)
from fairimage.model.governance.policy import Principal
from fairimage.model.image import Channel, Window, default_channels, make_axes
from fairimage.model.plates.layout import PLATE_ID_PREFIX, Geometry
from fairimage.model.study import new_id
from fairimage.ngff.metadata import Multiscale, parse_multiscale
from fairimage.ngff.pyramid import display_window
from fairimage.ngff.reader import open_level
from fairimage.services.discovery import search
from fairimage.services.governance import access, audit
from fairimage.services.ingest.conversion import DEFAULT_STUDY, Progress, ensure_study, failure
from fairimage.services.ingest.runs import Run, ingest_run
from fairimage.services.repository import Repository
from fairimage.storage import ImagePrefix, Store, layout
from fairimage.storage.sources import open_source, source_url

MANIFEST_FORMAT = "fairimage-manifest/1"
_READERS = 16  # metadata documents and chunks are read this many at a time (HTTP and S3 wait on latency)


@dataclass(frozen=True)
class RegisterRequest:
    location: str  # a folder, a .ozx file, an http(s):// URL or an s3:// prefix
    study: str = DEFAULT_STUDY
    name: str | None = None  # the plate's or image's name (else its own, or the folder's)
    platemap: Path | None = None


@dataclass
class RegisterOutcome:
    """What happened to one location, as the CLI and API report it."""

    location: str
    status: str  # "registered", "already_present" or "failed"
    kind: str | None = None  # "image" or "plate"
    plate_id: str | None = None
    name: str | None = None
    images: list[str] = field(default_factory=list)
    wells: int = 0
    fields: int = 0
    documents: int = 0  # zarr metadata documents read and checksummed
    missing: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class _Array:
    """A zarr array's shape, chunk grid and how its chunks are named, from its metadata document."""

    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: str
    separator: str
    prefix: str  # "c/" for zarr v3's default chunk key encoding, "" otherwise

    def chunk_keys(self) -> Iterator[str]:
        """The key of every chunk (or shard) of the grid, whether it is stored or left as fill value."""
        counts = [
            math.ceil(size / chunk) if chunk else 0
            for size, chunk in zip(self.shape, self.chunks, strict=True)
        ]
        if not counts:  # a 0-dimensional array has one chunk
            yield "c" if self.prefix else "0"
            return
        for index in itertools.product(*(range(count) for count in counts)):
            yield self.prefix + self.separator.join(str(i) for i in index)


@dataclass(frozen=True)
class _Node:
    attributes: dict[str, Any]
    array: _Array | None
    documents: dict[str, bytes]  # store key -> body of each metadata document of the node


@dataclass(frozen=True)
class _Location:
    """What is being registered: its store, its URL as recorded, and its root node."""

    store: Store
    url: str
    root: _Node


@dataclass
class _Registered:
    """One image found at a location: its catalog row (without study and file) and its manifest."""

    image_id: str
    prefix: str
    row: ImageRow
    manifest: bytes
    documents: dict[str, bytes]
    levels: list[tuple[str, _Array]]


def register(
    repository: Repository,
    request: RegisterRequest,
    progress: Progress | None = None,
    actor: str = "operator",
) -> RegisterOutcome:
    """Catalogue the OME-Zarr image or plate at ``request.location``; a failure is one line and catalogues
    nothing."""
    progress = progress or Progress()
    url = source_url(request.location)
    try:
        store = open_source(url, repository.settings.s3_endpoint)
        root = read_node(store, "", url)
        ome = _ome(root.attributes)
        if isinstance(ome.get("plate"), dict):
            return _register_plate(repository, _Location(store, url, root), request, progress, actor)
        if "multiscales" in ome:
            return _register_image(repository, _Location(store, url, root), request, progress, actor)
        if ome.get("bioformats2raw.layout") == 3:
            raise InvalidInputError(
                f"{url}: a bioformats2raw folder; register each of its series (e.g. {url}/0) on its own"
            )
        raise InvalidInputError(f"{url}: a zarr group without OME-NGFF image or plate metadata")
    except Exception as exc:  # noqa: BLE001 - one line for the user, whatever failed; never a traceback
        message = failure(url, exc).error or ""
        if not message.startswith(url):
            message = f"{url}: {message}"
        return RegisterOutcome(url, "failed", error=message)


def _register_image(
    repository: Repository, found: _Location, request: RegisterRequest, progress: Progress, actor: str
) -> RegisterOutcome:
    store, url, root = found.store, found.url, found.root
    name = request.name or _base_name(url)
    image = describe_image(store, "", root, name, url)
    progress.start_file(Path(url), len(image.documents))
    identity = _identity(image.documents)
    with repository.reading() as session:
        known = queries.original_file_by_sha256(session, identity)
        if known is not None:
            return RegisterOutcome(url, "already_present", "image", images=[i.id for i in known.images])
    with ingest_run(repository, actor) as run:
        with _publishing(repository, run, [image], {}) as session:
            study = ensure_study(repository, session, run, request.study)
            file_id = _file_row(session, study.id, url, "registered/ome-zarr", image.documents, identity)
            image.row.study_id, image.row.file_id, image.row.run_id = study.id, file_id, run.id
            session.add(image.row)
            session.flush()
            search.index_images(session, study, [image.row])
            audit.record(
                session, run.actor, "register.image", f"study:{study.id}", image=image.image_id, location=url
            )
        run.published(study.id)
    progress.advance(len(image.documents))
    return RegisterOutcome(
        url, "registered", "image", name=name, images=[image.image_id], documents=len(image.documents)
    )


def _register_plate(
    repository: Repository, found: _Location, request: RegisterRequest, progress: Progress, actor: str
) -> RegisterOutcome:
    store, url, root = found.store, found.url, found.root
    plate = _ome(root.attributes)["plate"]
    rows = [str(r["name"]) for r in plate.get("rows", [])]
    columns = [str(c["name"]) for c in plate.get("columns", [])]
    name = request.name or str(plate.get("name") or _base_name(url))
    geometry = Geometry(len(rows), len(columns))
    treatments = read_platemap(request.platemap, geometry) if request.platemap else []
    wells = [(str(w["path"]), *well_index(w, rows, columns, url)) for w in plate.get("wells", [])]
    if not wells:
        raise CorruptFileError(f"{url}: a plate that lists no wells")
    well_nodes = _in_parallel(lambda well: read_node(store, well[0], url), wells)
    fields = []
    for (path, row, column), node in zip(wells, well_nodes, strict=True):
        for index, item in enumerate(_ome(node.attributes).get("well", {}).get("images", [])):
            fields.append((f"{path}/{item['path']}", rows[row], columns[column], index))
    if not fields:
        raise CorruptFileError(f"{url}: a plate whose wells list no images")
    progress.start_file(Path(url), len(fields))

    def one_field(item: tuple[str, str, str, int]) -> _Registered:
        prefix, row_name, column_name, index = item
        found = describe_image(store, prefix, read_node(store, prefix, url), f"{name} [{prefix}]", url)
        found.row.plate_id, found.row.well_row, found.row.well_column, found.row.field = (
            None,
            row_name,
            column_name,
            index,
        )
        progress.advance(1)
        return found

    images = _in_parallel(one_field, fields)
    plate_documents = dict(root.documents)
    for node in well_nodes:
        plate_documents.update(node.documents)
    every = dict(plate_documents)
    for image in images:
        every.update(image.documents)
    identity = _identity(every)
    with repository.reading() as session:
        known = queries.original_file_by_sha256(session, identity)
        if known is not None:
            present = queries.plate_of_file(session, known.id)
            return RegisterOutcome(url, "already_present", "plate", plate_id=present.id if present else None)
    plate_id = new_id(PLATE_ID_PREFIX.rstrip("-"))
    manifest = _manifest_body(plate_documents)
    imaged = {(row, column) for _, row, column in wells}
    missing = [
        f"well {rows[r]}{columns[c]}: no images"
        for r in range(len(rows))
        for c in range(len(columns))
        if (r, c) not in imaged
    ]
    with ingest_run(repository, actor) as run:
        with _publishing(repository, run, images, {layout.plate_files_key(plate_id): manifest}) as session:
            study = ensure_study(repository, session, run, request.study)
            file_id = _file_row(session, study.id, url, "registered/ome-zarr-plate", every, identity)
            session.add(
                PlateRow(
                    id=plate_id,
                    study_id=study.id,
                    run_id=run.id,
                    name=name,
                    rows=rows,
                    columns=columns,
                    acquisitions=[
                        {"id": a.get("id", i), "name": str(a.get("name", ""))}
                        for i, a in enumerate(plate.get("acquisitions", []) or [{}])
                    ],
                    channels=[{"name": c["label"]} for c in images[0].row.channels],
                    field_count=max(index for *_, index in fields) + 1,
                    source={"layout": "registered", "location": url},
                    missing=missing,
                    storage_key="",
                    location=url,
                    manifest_sha256=hashlib.sha256(manifest).hexdigest(),
                )
            )
            session.flush()
            session.add_all(_well_rows(plate_id, wells, rows, columns, treatments))
            for image in images:
                image.row.study_id, image.row.file_id, image.row.run_id = study.id, file_id, run.id
                image.row.plate_id = plate_id
            session.add_all([image.row for image in images])
            session.flush()
            search.index_images(session, study, [image.row for image in images])
            audit.record(
                session,
                run.actor,
                "register.plate",
                f"study:{study.id}",
                plate=plate_id,
                name=name,
                location=url,
                fields=len(images),
            )
        run.published(study.id)
    return RegisterOutcome(
        url,
        "registered",
        "plate",
        plate_id=plate_id,
        name=name,
        images=[image.image_id for image in images],
        wells=len(wells),
        fields=len(images),
        documents=len(every),
        missing=missing,
    )


@contextmanager
def _publishing(
    repository: Repository, run: Run, images: list[_Registered], documents: dict[str, bytes]
) -> Iterator[Session]:
    """The transaction that catalogues registered images; their manifests (and the plate's ``documents``)
    are written first, the images intended in the run, so that a crash in between leaves nothing behind."""
    written: list[str] = []
    try:
        run.intend_all([image.image_id for image in images])
        for key, body in itertools.chain(
            documents.items(), ((layout.manifest_key(i.image_id), i.manifest) for i in images)
        ):
            repository.store.write(key, body)
            written.append(key)
        with repository.transaction() as session:
            run.record(session)
            yield session
    except BaseException:
        for key in written:
            repository.store.delete(key)
        raise


def describe_image(store: Store, prefix: str, node: _Node, name: str, url: str) -> _Registered:
    """One OME-Zarr image below ``prefix`` (of a registered location, or a mirror's download) as a
    catalog row: its levels' metadata read and checked, a window per channel where its omero metadata gives
    none (from its smallest level)."""
    where = f"{url}/{prefix}" if prefix else url
    multiscale, documents, levels = _read_image(store, prefix, node, where)
    channels = _channels(store, prefix, multiscale, levels, where)
    image_id = new_id("img")
    relative = {_relative(prefix, key): body for key, body in documents.items()}
    manifest = _manifest_body(relative)
    first = levels[0][1]
    row = ImageRow(
        id=image_id,
        name=name,
        series_index=0,
        axes=[axis.model_dump() for axis in multiscale.axes],
        shape=list(first.shape),
        dtype=first.dtype,
        source_dtype=first.dtype,
        scale=list(multiscale.datasets[0].scale),
        channels=[channel.model_dump() for channel in channels],
        levels=[
            {"path": path, "shape": list(array.shape), "chunks": list(array.chunks), "scale": list(d.scale)}
            for (path, array), d in zip(levels, multiscale.datasets, strict=True)
        ],
        storage_key=prefix,
        location=url,
        manifest_key=layout.manifest_key(image_id),
        manifest_sha256=hashlib.sha256(manifest).hexdigest(),
        stored_bytes=sum(len(body) for body in relative.values()),
        object_count=len(relative),
    )
    return _Registered(image_id, prefix, row, manifest, documents, levels)


def _read_image(
    store: Store, prefix: str, node: _Node, where: str
) -> tuple[Multiscale, dict[str, bytes], list[tuple[str, _Array]]]:
    """An image's multiscales, its metadata documents by store key, and its levels' arrays, checked
    against each other."""
    multiscale = parse_multiscale(node.attributes, where)
    axes = "".join(axis.name for axis in multiscale.axes)
    try:
        make_axes(axes)
    except ValueError as exc:
        raise CorruptFileError(f"{where}: {exc}") from exc
    documents = dict(node.documents)
    levels: list[tuple[str, _Array]] = []
    for dataset in multiscale.datasets:
        level = read_node(store, _join(prefix, dataset.path), where)
        if level.array is None:
            raise CorruptFileError(f"{where}: level {dataset.path!r} is not an array")
        if len(level.array.shape) != len(axes):
            raise CorruptFileError(
                f"{where}: level {dataset.path!r} has {len(level.array.shape)} dimensions "
                f"for {len(axes)} axes"
            )
        documents.update(level.documents)
        levels.append((dataset.path, level.array))
    return multiscale, documents, levels


def _channels(
    store: Store, prefix: str, multiscale: Multiscale, levels: list[tuple[str, _Array]], where: str
) -> tuple[Channel, ...]:
    axes = "".join(axis.name for axis in multiscale.axes)
    count = levels[0][1].shape[axes.index("c")] if "c" in axes else 1
    channels = multiscale.channels if len(multiscale.channels) == count else default_channels(count)
    if all(channel.window is not None for channel in channels):
        return channels
    path = levels[-1][0]
    smallest = np.asarray(
        open_level(ImagePrefix(store, prefix).zarr_store(path), f"{where} level {path}")[...]
    )
    found = []
    for index, channel in enumerate(channels):
        if channel.window is not None:
            found.append(channel)
            continue
        plane = np.take(smallest, index, axis=axes.index("c")) if "c" in axes else smallest
        start, end = display_window(plane)
        low, high = (float(plane.min()), float(plane.max())) if plane.size else (0.0, 1.0)
        if end <= start:
            start, end = low, max(high, low + 1)
        found.append(channel.model_copy(update={"window": Window(start=start, end=end, min=low, max=high)}))
    return tuple(found)


def read_node(store: Store, prefix: str, url: str) -> _Node:
    """The metadata of the zarr group or array at ``prefix`` of ``url``: zarr v3's ``zarr.json``, else
    v2's ``.zarray``/``.zgroup`` with ``.zattrs``."""
    documents: dict[str, bytes] = {}
    v3 = _document(store, _join(prefix, "zarr.json"), documents)
    where = f"{store.url}/{prefix}" if prefix else url
    if v3 is not None:
        kind = v3.get("node_type")
        attributes = v3.get("attributes") or {}
        return _Node(attributes, _v3_array(v3, where) if kind == "array" else None, documents)
    array = _document(store, _join(prefix, ".zarray"), documents)
    group = _document(store, _join(prefix, ".zgroup"), documents) if array is None else None
    attributes = _document(store, _join(prefix, ".zattrs"), documents) or {}
    if array is None and group is None and not attributes:
        raise NotFoundError(f"{where}: no zarr group or array there (no zarr.json, .zgroup or .zarray)")
    return _Node(attributes, _v2_array(array, where) if array is not None else None, documents)


def _document(store: Store, key: str, documents: dict[str, bytes]) -> Any:
    try:
        body = store.read(key)
    except NotFoundError:
        return None
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise CorruptFileError(f"{store.url}/{key}: not JSON ({exc}); the zarr metadata is damaged") from exc
    documents[key] = body
    return value


def _v3_array(document: dict[str, Any], where: str) -> _Array:
    try:
        shape = tuple(int(size) for size in document["shape"])
        chunks = tuple(int(size) for size in document["chunk_grid"]["configuration"]["chunk_shape"])
        encoding = document.get("chunk_key_encoding") or {"name": "default"}
        separator = str(
            (encoding.get("configuration") or {}).get(
                "separator", "/" if encoding["name"] == "default" else "."
            )
        )
        data_type = document["data_type"]
        dtype = np.dtype(data_type if isinstance(data_type, str) else data_type["name"]).name
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptFileError(
            f"{where}: zarr.json of an array lacks {exc}; the metadata is damaged"
        ) from exc
    prefix = "c" + separator if encoding["name"] == "default" else ""
    return _Array(shape, chunks, dtype, separator, prefix)


def _v2_array(document: dict[str, Any], where: str) -> _Array:
    try:
        shape = tuple(int(size) for size in document["shape"])
        chunks = tuple(int(size) for size in document["chunks"])
        dtype = np.dtype(document["dtype"]).name
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptFileError(f"{where}: .zarray lacks {exc}; the metadata is damaged") from exc
    return _Array(shape, chunks, dtype, str(document.get("dimension_separator") or "."), "")


def _ome(attributes: dict[str, Any]) -> dict[str, Any]:
    """OME-NGFF attributes: 0.5 keeps them under "ome", 0.4 at the top level."""
    ome = attributes.get("ome")
    return ome if isinstance(ome, dict) else attributes


def _well_rows(
    plate_id: str,
    wells: list[tuple[str, int, int]],
    rows: list[str],
    columns: list[str],
    treatments: list[Any],
) -> list[WellRow]:
    """A row per well that has images or a platemap entry."""
    by_well = {(t.row, t.column): t for t in treatments}
    imaged = {(r, c) for _, r, c in wells}
    return [
        WellRow.treated(plate_id, rows[r], columns[c], by_well.get((r, c)))
        for r, c in sorted(imaged | set(by_well))
    ]


def _file_row(
    session: Any, study_id: str, url: str, kind: str, documents: dict[str, bytes], identity: str
) -> str:
    file_id = new_id("file")
    session.add(
        OriginalFileRow(
            id=file_id,
            study_id=study_id,
            name=_base_name(url),
            source_path=url,
            format=kind,
            size=sum(len(body) for body in documents.values()),
            sha256=identity,
        )
    )
    return file_id


def _manifest_body(documents: dict[str, bytes], chunks: dict[str, dict[str, Any]] | None = None) -> bytes:
    objects = {
        key: {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        for key, body in documents.items()
    }
    objects.update(chunks or {})
    manifest = {
        "format": MANIFEST_FORMAT,
        "algorithm": "sha256",
        "registered": True,
        "chunks": "verified" if chunks is not None else "not verified",
        "objects": dict(sorted(objects.items())),
    }
    return json.dumps(manifest, indent=1, sort_keys=True).encode()


def metadata_documents(store: Store, url: str, prefixes: list[str]) -> dict[str, bytes]:
    """The metadata documents (key -> body) of the zarr groups and arrays at ``prefixes``, read in
    parallel (HTTP and S3 wait on latency)."""
    documents: dict[str, bytes] = {}
    for node in _in_parallel(lambda prefix: read_node(store, prefix, url), prefixes):
        documents.update(node.documents)
    return documents


def _identity(documents: dict[str, bytes]) -> str:
    """The sha256 of every metadata document's key and sha256: what was registered, by content."""
    digest = hashlib.sha256()
    for key in sorted(documents):
        digest.update(f"{key}\t{hashlib.sha256(documents[key]).hexdigest()}\n".encode())
    return digest.hexdigest()


def _join(prefix: str, key: str) -> str:
    return f"{prefix}/{key}" if prefix else key


def _relative(prefix: str, key: str) -> str:
    return key[len(prefix) + 1 :] if prefix else key


def _base_name(url: str) -> str:
    name = url.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".ozx", ".zarr", ".ome"):
        name = name.removesuffix(suffix)
    return name or url


def _in_parallel(work: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(_READERS) as pool:
        return list(pool.map(work, items))


# Verification: every chunk read and hashed, the manifest completed.


@dataclass
class VerifyOutcome:
    image_id: str
    chunks: int = 0  # chunks stored (and hashed)
    absent: int = 0  # chunks of the grid not stored: zarr reads them as the fill value
    bytes: int = 0
    error: str | None = None


def registered_images(repository: Repository, key: str) -> list[str]:
    """The registered images a plate id or image id names (NotFoundError for others)."""
    with repository.reading() as session:
        if key.startswith(PLATE_ID_PREFIX):
            ids = list(
                session.scalars(
                    select(ImageRow.id).where(ImageRow.plate_id == key, ImageRow.location.is_not(None))
                )
            )
        else:
            ids = list(
                session.scalars(select(ImageRow.id).where(ImageRow.id == key, ImageRow.location.is_not(None)))
            )
    if not ids:
        raise NotFoundError(f"{key}: no registered image or plate by that id")
    return sorted(ids)


def check_verify(repository: Repository, principal: Principal, image_id: str) -> str:
    """The study of a registered image, if ``principal`` may have its chunks verified (those who govern
    it); NotFoundError for images they may not see and for images that were not registered."""
    access.check_image(repository, principal, image_id)
    with repository.reading() as session:
        row = session.get(ImageRow, image_id)
        if row is None or row.location is None:
            raise NotFoundError(
                f"image {image_id!r} was not registered in place; its chunks are verified at ingest"
            )
        access.governed_study(session, principal, row.study_id)
        return row.study_id


def verify_registered(
    repository: Repository, image_id: str, progress: Progress | None = None, actor: str = "operator"
) -> VerifyOutcome:
    """Read every chunk of a registered image, hash it, and complete its manifest with them (the catalog's
    manifest sha256 follows, audited): from then on fixity checks its pixels as well as its metadata. Its
    metadata must still be what was registered; otherwise nothing is changed and the error says so."""
    progress = progress or Progress()
    outcome = VerifyOutcome(image_id)
    try:
        with repository.reading() as session:
            row = session.get(ImageRow, image_id)
            if row is None or row.location is None:
                raise NotFoundError(f"{image_id}: no registered image by that id")
            location, prefix, study_id, expected = (
                row.location,
                row.storage_key,
                row.study_id,
                row.manifest_sha256,
            )
        store = repository.store_at(location)
        where = f"{location}/{prefix}" if prefix else location
        _, found, levels = _read_image(store, prefix, read_node(store, prefix, location), where)
        documents = {_relative(prefix, key): body for key, body in found.items()}
        previous = repository.store.read(layout.manifest_key(image_id))
        _check_unchanged(image_id, where, previous, expected, documents)
        keys = [_join(_join(prefix, path), key) for path, array in levels for key in array.chunk_keys()]
        progress.start_file(Path(where), len(keys))
        chunks = _hash_chunks(store, keys, progress)
        for entry in chunks.values():
            if entry is None:
                outcome.absent += 1
            else:
                outcome.chunks += 1
                outcome.bytes += int(entry["size"])
        stored = {_relative(prefix, key): entry for key, entry in chunks.items() if entry is not None}
        manifest = _manifest_body(documents, stored)
        try:
            with repository.transaction() as session:
                image = session.get(ImageRow, image_id)
                assert image is not None
                repository.store.write(layout.manifest_key(image_id), manifest)
                image.manifest_sha256 = hashlib.sha256(manifest).hexdigest()
                image.stored_bytes = outcome.bytes + sum(len(body) for body in documents.values())
                image.object_count = len(documents) + outcome.chunks
                audit.record(
                    session,
                    actor,
                    "register.verify",
                    f"image:{image_id}",
                    study=study_id,
                    chunks=outcome.chunks,
                    absent=outcome.absent,
                    bytes=outcome.bytes,
                )
        except BaseException:
            repository.store.write(layout.manifest_key(image_id), previous)  # the catalog still names it
            raise
    except FairimageError as exc:
        outcome.error = exc.message
    return outcome


def _check_unchanged(
    image_id: str, where: str, manifest: bytes, expected_sha256: str, documents: dict[str, bytes]
) -> None:
    """ConflictError unless the image's metadata documents are those its manifest recorded."""
    if hashlib.sha256(manifest).hexdigest() != expected_sha256:
        raise ConflictError(f"{image_id}: its manifest was changed; run 'fairimage fixity' to see what")
    recorded = json.loads(manifest)["objects"]
    for key, body in documents.items():
        entry = recorded.get(key)
        if entry is None or entry["sha256"] != hashlib.sha256(body).hexdigest():
            raise ConflictError(
                f"{where}/{key}: changed since it was registered; register the new version again"
            )


def _hash_chunks(store: Store, keys: list[str], progress: Progress) -> dict[str, dict[str, Any] | None]:
    """Size and sha256 of each chunk key; None for keys not stored (zarr reads them as the fill value)."""

    def hashed(key: str) -> tuple[str, dict[str, Any] | None]:
        try:
            body = store.read(key)
        except NotFoundError:
            return key, None
        finally:
            progress.advance(1)
        return key, {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}

    return dict(_in_parallel(hashed, keys))

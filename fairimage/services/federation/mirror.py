"""Mirroring: a copy of a peer's public image or study, every object checked against the manifest the peer
signed, published here under the same ids and marked as a mirror of its origin's PIDs (served read-only:
changed only at its origin).

The origin side (``sources``) publishes, for a public study or image, each image's identity, its study's
and original file's, and its manifest exactly as stored, signed by the node's key. The mirror side
(``mirror``) downloads the objects into ``mirroring/`` (kept across a crash, so a mirror killed half-way
goes on from what it has; an object already there is re-hashed, not fetched again), refetches an object
that fails its checksum (and never keeps it), and publishes as ingest does: moved into place under an
ingest run, the catalog row committed last."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from fairimage.catalog import queries
from fairimage.catalog.tables import ImageRow, OriginalFileRow, PeerRow, StudyRow
from fairimage.model.curation.rembi import Rembi
from fairimage.model.discovery.jsonld import Links
from fairimage.model.errors import (
    CorruptFileError,
    FairimageError,
    InvalidInputError,
    NotFoundError,
    ProviderUnavailableError,
)
from fairimage.model.federation.feed import MIRROR_SOURCES, FileRecord, MirrorSource, MirrorSources
from fairimage.model.governance.policy import ANONYMOUS, Principal, Scope
from fairimage.model.study import new_id
from fairimage.services.discovery import search
from fairimage.services.federation import identity, peers
from fairimage.services.governance import access, audit
from fairimage.services.ingest.register import describe_image, read_node
from fairimage.services.ingest.runs import ingest_run
from fairimage.services.progress import Progress
from fairimage.services.repository import Repository
from fairimage.storage import layout
from fairimage.storage.base import check_key

FETCHERS = 8  # objects fetched at once (latency, not bandwidth, is what a chunk request waits on)
ATTEMPTS = 3  # tries of an object whose bytes fail their checksum
MAX_SOURCES = 512 << 20  # bytes of a study's mirror sources (its images' manifests) read at most


# --- the origin: what it publishes for mirrors ---


def sources(repository: Repository, base_url: str, object_id: str) -> tuple[bytes, str]:
    """The mirror sources of a public study (all its images) or image, as JSON, and their signature."""
    links = Links(base_url)
    with repository.reading() as session:
        study = session.get(StudyRow, object_id)
        if study is not None and access.may_read_study(ANONYMOUS, study):
            ids = list(session.scalars(select(ImageRow.id).where(ImageRow.study_id == study.id)))
        elif study is None and session.get(ImageRow, object_id) is not None:
            ids = [object_id]
        else:
            raise NotFoundError(f"{object_id!r}: no public study or image of that id here")
    images = [_source(repository, links, image_id) for image_id in sorted(ids)]
    body = MirrorSources(node=identity.node_name(repository.settings), images=images).model_dump_json()
    return body.encode(), identity.sign(repository.settings, body.encode())


def _source(repository: Repository, links: Links, image_id: str) -> MirrorSource:
    access.check_image(repository, ANONYMOUS, image_id)  # public images only, as anyone may read them
    with repository.reading() as session:
        row = session.get(ImageRow, image_id)
        assert row is not None
        if row.location is not None:
            raise InvalidInputError(
                f"image {image_id} is registered where it is ({row.location}), not stored here; mirror it "
                "from there"
            )
        study, file = row.study, row.original_file
        manifest = repository.store.read(row.manifest_key).decode()
        return MirrorSource(
            id=row.id,
            pid=row.mirror_of or links.pid(row.id),
            name=row.name,
            study_id=study.id,
            study_pid=study.mirror_of or links.pid(study.id),
            study_name=study.name,
            study_rembi=study.rembi,
            file=FileRecord(name=file.name, format=file.format, size=file.size, sha256=file.sha256),
            manifest=manifest,
            manifest_sha256=row.manifest_sha256,
        )


# --- the mirror: copying them here ---


@dataclass(frozen=True)
class MirrorOutcome:
    image: str
    status: str  # "mirrored", "already_present" or "failed"
    objects: int = 0  # in the image's manifest
    fetched: int = 0  # downloaded in this run
    reused: int = 0  # downloaded before (a run that stopped half-way) and checked again
    refetched: int = 0  # downloads that failed their checksum and were fetched again
    bytes: int = 0
    error: str = ""


def mirror(
    repository: Repository,
    principal: Principal,
    pid: str,
    peer: str,
    progress: Progress | None = None,
) -> list[MirrorOutcome]:
    """Copy the public study or image ``pid`` (its PID at ``peer``, or its id) from that peer."""
    access.require(principal, Scope.ADMIN)
    row = peers.pinned(repository, peer)
    object_id = _object_id(row, pid)
    response = peers.fetch(f"{row.url}{MIRROR_SOURCES}/{object_id}", timeout=60, limit=MAX_SOURCES)
    peers.verify(response, row.public_key, row.name)
    found = peers.parse(response, MirrorSources, "the mirror sources of a study or image")
    outcomes = []
    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=FETCHERS)) as client:
        for source in found.images:
            try:
                outcomes.append(_mirror_image(repository, principal, row, source, client, progress))
            except FairimageError as exc:
                outcomes.append(MirrorOutcome(source.id, "failed", error=exc.message))
    return outcomes


def _object_id(row: PeerRow, pid: str) -> str:
    prefix = f"{row.url}/pid/"
    if pid.startswith(prefix):
        return pid[len(prefix) :]
    if "/" in pid or not pid.startswith(("study-", "img-")):
        raise InvalidInputError(
            f"{pid!r}: give a PID of peer {row.name} ({prefix}ID), or a study or image id"
        )
    return pid


def _mirror_image(
    repository: Repository,
    principal: Principal,
    peer: PeerRow,
    source: MirrorSource,
    client: httpx.Client,
    progress: Progress | None,
) -> MirrorOutcome:
    objects = _manifest(source)
    with repository.reading() as session:
        known = session.get(ImageRow, source.id)
        if known is not None:
            if known.manifest_sha256 != source.manifest_sha256:
                raise InvalidInputError(
                    f"image {source.id} is here already with other contents (manifest "
                    f"{known.manifest_sha256[:12]}…, the peer's {source.manifest_sha256[:12]}…)"
                )
            return MirrorOutcome(source.id, "already_present", objects=len(objects))
    if progress is not None:
        progress.start_file(Path(source.name), sum(int(entry["size"]) for entry in objects.values()))
    tally = _download(repository, peer, source, objects, client, progress)
    _publish(repository, principal, peer, source, objects)
    return MirrorOutcome(source.id, "mirrored", len(objects), *tally)


def _manifest(source: MirrorSource) -> dict[str, Any]:
    """The objects of the source's manifest, after checking it is the manifest its node recorded."""
    if hashlib.sha256(source.manifest.encode()).hexdigest() != source.manifest_sha256:
        raise CorruptFileError(f"image {source.id}: its manifest does not match its sha256; nothing was kept")
    try:
        objects = json.loads(source.manifest)["objects"]
        for key, entry in objects.items():
            layout_key(key)
            int(entry["size"]), bytes.fromhex(entry["sha256"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptFileError(
            f"image {source.id}: its manifest is not one ({exc}); nothing was kept"
        ) from None
    result: dict[str, Any] = objects
    return result


def layout_key(key: str) -> str:
    """A manifest's object key, refused if it could leave the image's prefix (``../``, absolute)."""
    try:
        return check_key(key)
    except NotFoundError:
        raise ValueError(f"the object key {key!r} leaves the image") from None


def _download(
    repository: Repository,
    peer: PeerRow,
    source: MirrorSource,
    objects: dict[str, Any],
    client: httpx.Client,
    progress: Progress | None,
) -> tuple[int, int, int, int]:
    """Every object of the manifest into the mirroring area, checked: (fetched, reused, refetched, bytes)."""
    target = layout.mirroring_prefix(source.id)
    store = repository.store
    present = {info.key[len(target) + 1 :]: info.size for info in store.list(target)}

    def one(item: tuple[str, Any]) -> tuple[int, int, int, int]:
        key, entry = item
        size, digest = int(entry["size"]), str(entry["sha256"])
        if present.get(key) == size and _sha256(store.read(f"{target}/{key}")) == digest:
            _advance(progress, size)
            return 0, 1, 0, 0
        url = f"{peer.url}/zarr/{source.id}.ome.zarr/{key}"
        for attempt in range(ATTEMPTS):
            data = _get(client, url)
            if len(data) == size and _sha256(data) == digest:
                store.put(f"{target}/{key}", data)
                _advance(progress, size)
                return 1, 0, attempt, size
        raise CorruptFileError(
            f"image {source.id}: {key} from {peer.name} failed its checksum {ATTEMPTS} times (sha256 "
            f"{digest[:12]}… expected); nothing was published, run the mirror again later"
        )

    with ThreadPoolExecutor(FETCHERS, thread_name_prefix="mirror") as pool:
        counts = list(pool.map(one, sorted(objects.items())))
    stray = set(present) - set(objects)
    for key in stray:  # left by an earlier attempt at other contents: never published
        store.delete(f"{target}/{key}")
    fetched, reused, refetched, nbytes = (
        (sum(column) for column in zip(*counts, strict=True)) if counts else (0,) * 4
    )
    return fetched, reused, refetched, nbytes


def _get(client: httpx.Client, url: str) -> bytes:
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        raise ProviderUnavailableError(
            f"{url}: {type(exc).__name__}; run the mirror again to go on"
        ) from None
    if response.status_code != 200:
        raise ProviderUnavailableError(
            f"{url}: answered {response.status_code}; run the mirror again to go on"
        )
    return response.content


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _advance(progress: Progress | None, nbytes: int) -> None:
    if progress is not None:
        progress.advance(nbytes)


def _publish(
    repository: Repository, principal: Principal, peer: PeerRow, source: MirrorSource, objects: dict[str, Any]
) -> None:
    """Move the checked objects into place and catalogue them, as an ingest run publishes an image."""
    store = repository.store
    downloaded = layout.mirroring_prefix(source.id)
    described = describe_image(
        store, downloaded, read_node(store, downloaded, source.pid), source.name, source.pid
    )
    row = described.row
    row.id, row.storage_key, row.location, row.mirror_of = (
        source.id,
        layout.image_prefix(source.id),
        None,
        source.pid,
    )
    row.manifest_key, row.manifest_sha256 = layout.manifest_key(source.id), source.manifest_sha256
    row.stored_bytes = sum(int(entry["size"]) for entry in objects.values())
    row.object_count = len(objects)
    with ingest_run(repository, principal.name) as run:
        run.parameters = {"mirror_of": source.pid, "from": peer.url}
        run.intend(source.id)
        store.move(downloaded, row.storage_key)
        store.write(row.manifest_key, source.manifest.encode())
        with repository.transaction() as session:
            run.record(session)
            study = _mirror_study(session, principal, source)
            row.study_id, row.run_id = study.id, run.id
            row.file_id = _file(session, study.id, source)
            session.add(row)
            session.flush()
            search.index_images(session, study, [row])
            audit.record(
                session,
                principal.name,
                "mirror.image",
                f"study:{study.id}",
                origin=principal.origin,
                image=source.id,
                mirror_of=source.pid,
                peer=peer.name,
            )
        run.published(study.id)


def _mirror_study(session: Session, principal: Principal, source: MirrorSource) -> StudyRow:
    """The mirror of the image's study: made (public, read-only, with its REMBI) the first time."""
    study = session.get(StudyRow, source.study_id)
    if study is not None:
        if study.mirror_of != source.study_pid:
            raise InvalidInputError(
                f"study {source.study_id} is here already, and is not a mirror of {source.study_pid}"
            )
        return study
    rembi = Rembi.model_validate(source.study_rembi).model_dump(mode="json") if source.study_rembi else None
    name = source.study_name
    if queries.study_by_name(session, name) is not None:
        name = f"{name} (mirror of {source.study_pid})"
    study = StudyRow(
        id=source.study_id,
        name=name[:255],
        description="",
        policy="public",
        rembi=rembi,
        mirror_of=source.study_pid,
    )
    session.add(study)
    session.flush()
    audit.record(
        session,
        principal.name,
        "study.create",
        f"study:{study.id}",
        origin=principal.origin,
        name=study.name,
        policy="public",
        mirror_of=source.study_pid,
    )
    return study


def _file(session: Session, study_id: str, source: MirrorSource) -> str:
    """The original file's record, as the origin knows it (the file itself stays there)."""
    known = session.scalars(
        select(OriginalFileRow).where(OriginalFileRow.sha256 == source.file.sha256)
    ).first()
    if known is not None:
        return known.id
    file_id = new_id("file")
    session.add(
        OriginalFileRow(
            id=file_id,
            study_id=study_id,
            name=source.file.name,
            source_path=source.pid,
            format=source.file.format,
            size=source.file.size,
            sha256=source.file.sha256,
        )
    )
    return file_id

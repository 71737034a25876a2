"""Fixity: re-hash stored objects against the manifests written at ingest, and say which key of which image
is missing, corrupted or unexpected. Each run is recorded in the audit log.

The manifest itself is checked first against the sha256 the catalog holds, so a manifest edited to match
a damaged chunk is caught too. ``sample_percent`` re-hashes a random share of the objects (every manifest
and listing is still checked), for frequent cheap runs between full ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import select

from fairimage.catalog.tables import ImageRow, LabelRow
from fairimage.model.errors import FairimageError, InvalidInputError, StorageError
from fairimage.services.governance import audit
from fairimage.services.repository import Repository
from fairimage.services.schedule import Schedule
from fairimage.storage import ImagePrefix, layout

_BLOCK = 1 << 20
_log = logging.getLogger("fairimage.fixity")


@dataclass(frozen=True)
class Problem:
    image_id: str
    key: str
    kind: str  # missing, corrupted, unexpected, manifest
    detail: str

    def line(self) -> str:
        return f"{self.image_id}/{self.key}: {self.kind} ({self.detail})"


@dataclass
class FixityReport:
    images: int = 0
    objects: int = 0
    bytes: int = 0
    sample_percent: float = 100.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_fixity(
    repository: Repository,
    sample_percent: float = 100.0,
    actor: str = "operator",
    progress: Callable[[int], None] | None = None,
    seed: int | None = None,
) -> FixityReport:
    """Check every image's and label's manifest and (a sample of) its objects; record the outcome in the
    audit log."""
    if not 0 < sample_percent <= 100:
        raise InvalidInputError(f"--sample {sample_percent}: give a percentage above 0 and at most 100")
    chooser = random.Random(seed)
    report = FixityReport(sample_percent=sample_percent)
    lock = threading.Lock()
    with ThreadPoolExecutor(4) as pool:
        for image_id, manifest_sha256, root in _checked(repository):
            report.images += 1
            objects = _manifest(repository, image_id, manifest_sha256, report)
            if objects is None:
                continue
            _unexpected(repository, root, image_id, objects, report)
            chosen = [
                (key, entry)
                for key, entry in sorted(objects.items())
                if sample_percent >= 100 or chooser.random() * 100 < sample_percent
            ]
            checks = pool.map(partial(_verify, root, image_id), chosen)
            for problem, size in checks:
                with lock:
                    report.objects += 1
                    report.bytes += size
                    if problem is not None:
                        report.problems.append(problem)
                if progress is not None:
                    progress(size)
    with repository.transaction() as session:
        audit.record(
            session,
            actor,
            "fixity.check",
            "repository",
            decision="ok" if report.ok else "failed",
            images=report.images,
            objects=report.objects,
            bytes=report.bytes,
            sample_percent=sample_percent,
            problems=[problem.line() for problem in report.problems[:50]],
        )
    return report


def fixity_schedule(repository: Repository) -> Schedule:
    """A sampled check every ``fixity_hours`` while the server runs (``serve``); results go to the audit
    log and problems to the server's log."""
    settings = repository.settings

    def check() -> None:
        report = check_fixity(repository, settings.fixity_sample, actor="fixity-schedule")
        for problem in report.problems:
            _log.error("fixity: %s", problem.line())

    return Schedule(repository, "fixity", settings.fixity_hours, check)


def stored_bytes(repository: Repository) -> int:
    """The total size of what a full check reads (for a progress bar)."""
    with repository.reading() as session:
        images = sum(session.scalars(select(ImageRow.stored_bytes)))
        return int(images + sum(session.scalars(select(LabelRow.stored_bytes))))


def _checked(repository: Repository) -> Iterator[tuple[str, str, ImagePrefix]]:
    """Every image and label: its id, its manifest's sha256 and where its objects are."""
    with repository.reading() as session:
        images = session.execute(select(ImageRow.id, ImageRow.manifest_sha256).order_by(ImageRow.id)).all()
        labels = session.execute(select(LabelRow.id, LabelRow.manifest_sha256).order_by(LabelRow.id)).all()
    for image_id, manifest_sha256 in images:
        yield str(image_id), str(manifest_sha256), repository.image_root(str(image_id))
    for label_id, manifest_sha256 in labels:
        yield (
            str(label_id),
            str(manifest_sha256),
            ImagePrefix(repository.store, layout.label_prefix(label_id)),
        )


def load_manifest(repository: Repository, image_id: str, expected_sha256: str) -> dict[str, Any]:
    """The manifest of an image (stored key -> size and sha256), checked against the catalog's sha256;
    StorageError if it is gone or changed."""
    key = layout.manifest_key(image_id)
    try:
        body = repository.store.read(key)
    except FairimageError:
        raise StorageError(f"image {image_id}: its manifest {key} is gone; run 'fairimage fixity'") from None
    digest = hashlib.sha256(body).hexdigest()
    if digest != expected_sha256:
        raise StorageError(
            f"image {image_id}: manifest sha256 {digest[:12]}… but the catalog says "
            f"{expected_sha256[:12]}…; the manifest was changed"
        )
    objects: dict[str, Any] = json.loads(body)["objects"]
    return objects


def _manifest(
    repository: Repository, image_id: str, expected_sha256: str, report: FixityReport
) -> dict[str, Any] | None:
    try:
        return load_manifest(repository, image_id, expected_sha256)
    except StorageError as exc:
        kind = "missing" if "is gone" in exc.message else "manifest"
        report.problems.append(Problem(image_id, "manifest", kind, exc.message.split(": ", 1)[1]))
        return None


def _unexpected(
    repository: Repository, root: ImagePrefix, image_id: str, objects: dict[str, Any], report: FixityReport
) -> None:
    if root.store is not repository.store:
        return  # a registered image's folder is its owner's: what else is there is not ours to judge
    for info in root.store.list(root.prefix):
        key = root.relative(info.key)
        if key not in objects:
            report.problems.append(
                Problem(image_id, key, "unexpected", "in the store but not in the manifest")
            )


def _verify(root: ImagePrefix, image_id: str, item: tuple[str, dict[str, Any]]) -> tuple[Problem | None, int]:
    key, entry = item
    digest = hashlib.sha256()
    size = 0
    try:
        with root.store.open(root.key(key)) as f:
            while block := f.read(_BLOCK):
                digest.update(block)
                size += len(block)
    except FairimageError:
        return Problem(image_id, key, "missing", "listed in the manifest, absent from the store"), 0
    if size != entry["size"] or digest.hexdigest() != entry["sha256"]:
        detail = (
            f"{size} bytes, sha256 {digest.hexdigest()[:12]}…; expected {entry['size']} bytes, "
            f"{entry['sha256'][:12]}…"
        )
        return Problem(image_id, key, "corrupted", detail), size
    return None, size


# The zarr documents of an array (v3, and v2 for registered 0.4 images), which are not pixels.
METADATA_DOCUMENTS = frozenset({"zarr.json", ".zarray", ".zattrs", ".zgroup"})


def pixel_hash(repository: Repository, manifest_key: str, level: str) -> str | None:
    """A hash of an image's full-resolution chunks (their sha256s, from its manifest): the same pixels give
    the same hash whatever the image's name or metadata. None where the manifest holds no chunks (an image
    registered in place whose chunks were not verified): its pixels are not known here."""
    manifest = json.loads(repository.store.read(manifest_key))
    chunks = sorted(
        (key.removeprefix(f"{level}/"), entry["sha256"])
        for key, entry in manifest["objects"].items()
        if key.startswith(f"{level}/") and key.rsplit("/", 1)[-1] not in METADATA_DOCUMENTS
    )
    return hashlib.sha256(json.dumps(chunks).encode()).hexdigest() if chunks else None

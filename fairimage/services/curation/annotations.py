"""Key=value annotations and tags on studies and images, as OMERO users know them. Whoever governs the
study (its owner, a data steward, an admin) adds and removes them; whoever may read it sees them. Each
change is audited, makes a new version of the study and is searchable at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fairimage.catalog import queries
from fairimage.catalog.tables import AnnotationRow, ImageRow, StudyRow
from fairimage.model.errors import InvalidInputError, NotFoundError
from fairimage.model.governance.policy import Principal
from fairimage.model.study import new_id
from fairimage.services.discovery import search
from fairimage.services.governance import access, audit, versions
from fairimage.services.privacy import phi
from fairimage.services.repository import Repository

MAX_KEY = 255
MAX_VALUE = 10_000


@dataclass(frozen=True)
class Annotation:
    id: str
    target: str  # the study or image id
    kind: str  # "map" (key=value) or "tag"
    key: str
    value: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class Change:
    """Annotations to add to one target: key=value pairs and tags."""

    pairs: tuple[tuple[str, str], ...] = ()
    tags: tuple[str, ...] = ()


def parse_pairs(texts: list[str]) -> list[tuple[str, str]]:
    """``["cell line=HeLa", "dose=5 uM"]`` -> pairs; a text without ``=`` is a one-line error."""
    pairs = []
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"{text!r}: write KEY=VALUE, e.g. 'cell line=HeLa'")
        pairs.append((key.strip(), value.strip()))
    return pairs


def annotate(repository: Repository, principal: Principal, target: str, change: Change) -> list[Annotation]:
    """Add key=value annotations and tags to a study (by id or name) or an image (by id)."""
    for key, value in change.pairs:
        _check(key, value)
    for tag in change.tags:
        _check("tag", tag)
    with repository.transaction() as session:
        study, image = _target(session, principal, target)
        now = datetime.now(UTC)
        rows = [
            AnnotationRow(
                id=new_id("ann"),
                study_id=study.id,
                image_id=image.id if image is not None else None,
                kind=kind,
                key=key,
                value=value,
                created_by=principal.name,
                created_at=now,
            )
            for kind, key, value in [
                *(("map", key, value) for key, value in change.pairs),
                *(("tag", "tag", tag) for tag in change.tags),
            ]
        ]
        session.add_all(rows)
        session.flush()
        _changed(session, principal, study, image, "annotation.add", [f"{r.key}={r.value}" for r in rows])
        return [_annotation(row) for row in rows]


def remove(repository: Repository, principal: Principal, annotation_id: str) -> None:
    """Remove one annotation (by its id)."""
    with repository.transaction() as session:
        row = session.get(AnnotationRow, annotation_id)
        if row is None:
            raise NotFoundError(f"annotation {annotation_id!r} not found")
        study, image = _target(session, principal, row.image_id or row.study_id)
        session.delete(row)
        session.flush()
        _changed(session, principal, study, image, "annotation.remove", [f"{row.key}={row.value}"])


def annotations_of(repository: Repository, principal: Principal, target: str) -> list[Annotation]:
    """The annotations of a study (its own, not its images') or of an image, for whoever may read it."""
    if target.startswith("img-"):
        access.check_image(repository, principal, target)
        condition = AnnotationRow.image_id == target
    else:
        study_id = access.check_study(repository, principal, target)
        condition = (AnnotationRow.study_id == study_id) & AnnotationRow.image_id.is_(None)
    with repository.reading() as session:
        rows = session.scalars(
            select(AnnotationRow)
            .where(condition)
            .order_by(AnnotationRow.kind, AnnotationRow.key, AnnotationRow.value)
        ).all()
        return [_annotation(row) for row in rows]


def _target(session: Session, principal: Principal, target: str) -> tuple[StudyRow, ImageRow | None]:
    """The study the caller governs, and the image if the target is one."""
    image = None
    key = target
    if target.startswith("img-"):
        image = session.get(ImageRow, target)
        if image is None or not access.may_read_study(principal, image.study):
            raise NotFoundError(f"image {target!r} not found")
        key = image.study_id
    study = access.governed_study(session, principal, key)
    return study, image


def _changed(
    session: Session,
    principal: Principal,
    study: StudyRow,
    image: ImageRow | None,
    action: str,
    what: list[str],
) -> None:
    target = f"image:{image.id}" if image is not None else f"study:{study.id}"
    audit.record(session, principal.name, action, target, origin=principal.origin, annotations=what)
    versions.record_version(session, principal.name, study, "annotations changed", principal.origin)
    if image is not None:
        search.index_images(session, study, [image])
    else:
        search.index_study(session, study)
    phi.rescan(session, study)


def _check(key: str, value: str) -> None:
    if not key or len(key) > MAX_KEY:
        raise InvalidInputError(f"annotation key {key!r}: give 1 to {MAX_KEY} characters")
    if not value or len(value) > MAX_VALUE:
        raise InvalidInputError(f"annotation {key}: give a value of 1 to {MAX_VALUE} characters")


def _annotation(row: AnnotationRow) -> Annotation:
    return Annotation(
        id=row.id,
        target=row.image_id or row.study_id,
        kind=row.kind,
        key=row.key,
        value=row.value,
        created_by=row.created_by,
        created_at=queries.aware(row.created_at) or row.created_at,
    )

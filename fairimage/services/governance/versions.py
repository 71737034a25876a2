"""Study versions: every ingest run and every metadata change makes a new immutable, numbered version of
the study it touched (its metadata and the manifest of its images with their checksums). Earlier versions
stay readable by their PID (``{study}.v{n}``); a version can be published, which freezes it for citing.

Each version's sha256 goes into the hash-chained audit log with it, so a version edited in the catalog is
found twice over: its content no longer matches its hash, and its hash no longer matches the log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fairimage.catalog import queries
from fairimage.catalog.tables import StudyRow, StudyVersionRow
from fairimage.model.curation.rembi import blind_metadata
from fairimage.model.errors import ConflictError, NotFoundError
from fairimage.model.governance.policy import Principal
from fairimage.model.governance.version import (
    Version,
    VersionContent,
    VersionDiff,
    VersionImage,
    content_sha256,
    diff_versions,
    version_id,
)
from fairimage.model.privacy.phi import check_publishable
from fairimage.services.governance import access, audit
from fairimage.services.repository import Repository

MAX_NUMBER = 2**31 - 1  # what a catalog integer column holds


def snapshot(session: Session, study: StudyRow) -> VersionContent:
    """The study as it is now: its descriptive metadata and every image with its checksums."""
    images = tuple(
        VersionImage(
            id=image.id,
            name=image.name,
            file_id=image.file_id,
            file_sha256=image.original_file.sha256,
            manifest_sha256=image.manifest_sha256,
            stored_bytes=image.stored_bytes,
        )
        for image in queries.study_images(session, study.id)
    )
    metadata: dict[str, Any] = {
        "name": study.name,
        "description": study.description,
        "data_use": study.data_use,
        "rembi": study.rembi,
    }
    annotations = queries.annotations_by_image(session, study.id)
    if annotations:  # absent when there are none, so a study without any snapshots as it did before
        metadata["annotations"] = sorted(
            [target or study.id, kind, key, value]
            for target, rows in annotations.items()
            for kind, key, value in rows
        )
    correlative = queries.correlative_sets(session, study.id)
    if correlative:  # likewise absent when there are none
        metadata["correlative_sets"] = [
            {
                "id": found.id,
                "name": found.name,
                "reference": found.reference_image_id,
                "members": [
                    [m.image_id, m.modality, m.method, [list(r) for r in m.matrix]] for m in found.members
                ],
            }
            for found in correlative
        ]
    return VersionContent(metadata=metadata, images=images)


def record_version(
    session: Session, actor: str, study: StudyRow, note: str, origin: str = ""
) -> StudyVersionRow | None:
    """A new version of ``study`` if it differs from its latest one (None if nothing changed), with its
    audit entry, in the caller's transaction."""
    content = snapshot(session, study)
    digest = content.sha256()
    latest = _latest(session, study.id)
    if latest is not None and latest.content_sha256 == digest:
        return None
    number = 1 if latest is None else latest.number + 1
    row = StudyVersionRow(
        id=version_id(study.id, number),
        study_id=study.id,
        number=number,
        created_at=datetime.now(UTC),
        created_by=actor,
        note=note,
        content=content.model_dump(mode="json"),
        content_sha256=digest,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "study.version",
        f"study:{study.id}",
        origin=origin,
        version=number,
        sha256=digest,
        images=len(content.images),
        note=note,
    )
    return row


def record_versions(repository: Repository, actor: str, study_ids: set[str], note: str) -> None:
    """A new version of each study (where it changed), each in its own transaction."""
    for study_id in sorted(study_ids):
        with repository.transaction() as session:
            study = session.get(StudyRow, study_id)
            if study is not None:
                record_version(session, actor, study, note)


def record_unversioned(repository: Repository) -> None:
    """Give version 1 to studies that have none (made before versions existed, or by an ingest that was
    killed before its version was written)."""
    with repository.reading() as session:
        # NOT EXISTS, an anti-join: NOT IN over a subquery is a quadratic plan on PostgreSQL once the
        # studies' ids outgrow work_mem (a million studies: over a minute, at every start).
        versioned = select(StudyVersionRow.study_id).where(StudyVersionRow.study_id == StudyRow.id).exists()
        missing = set(session.scalars(select(StudyRow.id).where(~versioned)))
    record_versions(repository, "fairimage", missing, "the study as it was when versioning began")


def shown_rembi(session: Session, principal: Principal, study: StudyRow) -> dict[str, Any] | None:
    """The study's stored REMBI document as the caller sees it: as it is, or, for the holder of a share
    link to one version, as that version recorded it."""
    number = principal.shown_version(study.id)
    if number is None:
        return study.rembi
    rembi = _row(session, study.id, number).content["metadata"].get("rembi")
    return rembi if isinstance(rembi, dict) else None


def list_versions(repository: Repository, principal: Principal, study: str) -> list[Version]:
    """Every version of a study the caller may read, oldest first."""
    study_id = access.check_study(repository, principal, study)
    with repository.reading() as session:
        row = session.get(StudyRow, study_id)
        assert row is not None
        found = select(StudyVersionRow).where(StudyVersionRow.study_id == study_id)
        shown = principal.shown_version(study_id)
        if shown is not None:  # a share link to one version shows that one
            found = found.where(StudyVersionRow.number == shown)
        versions = session.scalars(found.order_by(StudyVersionRow.number)).all()
        return [_version(version, row.name, principal.blind) for version in versions]


def get_version(repository: Repository, principal: Principal, study: str, number: int | None) -> Version:
    """One version (the latest when ``number`` is None) of a study the caller may read; the holder of a
    share link to one version reads that one only."""
    study_id = access.check_study(repository, principal, study)
    shown = principal.shown_version(study_id)
    if shown is not None and number not in (None, shown):
        raise NotFoundError(f"version {number} of study {study_id!r} not found")
    number = shown if shown is not None else number
    with repository.reading() as session:
        return _load(session, study_id, number, principal.blind)


def diff(repository: Repository, principal: Principal, study: str, before: int, after: int) -> VersionDiff:
    study_id = access.check_study(repository, principal, study)
    if principal.shown_version(study_id) is not None:  # a link to one version has nothing to compare
        raise NotFoundError(f"versions {before} and {after} of study {study_id!r} not found")
    with repository.reading() as session:
        old, new = (
            _load(session, study_id, before, principal.blind),
            _load(session, study_id, after, principal.blind),
        )
    return diff_versions(study_id, old.number, old.content, new.number, new.content)


def publish(repository: Repository, principal: Principal, study: str, number: int | None = None) -> Version:
    """Publish (freeze for citing) a version, the latest by default; its owner, a data steward or an admin
    may. A published version is never unpublished; its PID and checksum are kept in the audit log."""
    with repository.transaction() as session:
        row = access.governed_study(session, principal, study)
        version = _row(session, row.id, number)
        if version.published_at is not None:
            raise ConflictError(f"study {row.name!r}: version {version.number} is published already")
        check_publishable(row.name, row.phi)
        if row.quarantined:
            raise ConflictError(
                f"study {row.name!r}: {row.quarantined} image(s) may show identifying text burned into their "
                "pixels; a steward checks and clears each with 'fairimage dicom clear IMAGE' first"
            )
        if content_sha256(version.content) != version.content_sha256:
            raise ConflictError(
                f"study {row.name!r}: version {version.number} no longer matches its checksum; "
                "run 'fairimage audit verify' and restore the catalog from a backup"
            )
        version.published_at = datetime.now(UTC)
        version.published_by = principal.name
        audit.record(
            session,
            principal.name,
            "study.publish",
            f"study:{row.id}",
            origin=principal.origin,
            version=version.number,
            pid=version.id,
            sha256=version.content_sha256,
        )
        return _version(version, row.name)


def resolve(repository: Repository, principal: Principal, pid: str) -> Version:
    """A version by its PID (``study-….v3``), if the caller may read its study."""
    study_id, _, number = pid.rpartition(".v")
    if not study_id or not number.isdigit():
        raise NotFoundError(f"version {pid!r} not found")
    return get_version(repository, principal, study_id, int(number))


def _latest(session: Session, study_id: str) -> StudyVersionRow | None:
    return session.scalars(
        select(StudyVersionRow)
        .where(StudyVersionRow.study_id == study_id)
        .order_by(StudyVersionRow.number.desc())
        .limit(1)
    ).first()


def _row(session: Session, study_id: str, number: int | None) -> StudyVersionRow:
    if number is None:
        found = _latest(session, study_id)
    elif not 1 <= number <= MAX_NUMBER:
        found = None
    else:
        found = session.scalars(
            select(StudyVersionRow).where(
                StudyVersionRow.study_id == study_id, StudyVersionRow.number == number
            )
        ).first()
    if found is None:
        count = session.scalar(
            select(func.count(StudyVersionRow.id)).where(StudyVersionRow.study_id == study_id)
        )
        which = "no versions yet" if not count else f"its versions are 1 to {count}"
        raise NotFoundError(f"version {number} of study {study_id!r} not found; {which}")
    return found


def _load(session: Session, study_id: str, number: int | None, blind: bool = False) -> Version:
    version = _row(session, study_id, number)
    study = session.get(StudyRow, study_id)
    assert study is not None
    return _version(version, study.name, blind)


HIDDEN_FOR_REVIEW = "(hidden for double-blind review)"


def _version(row: StudyVersionRow, study_name: str, blind: bool = False) -> Version:
    """A version as the caller sees it; a double-blind reviewer sees no one's name (who made or published
    it, the authors in its metadata). ``intact`` is judged on the content as stored."""
    content = VersionContent.model_validate(row.content)
    intact = content_sha256(row.content) == row.content_sha256
    if blind:
        metadata = {**content.metadata, "rembi": blind_metadata(content.metadata.get("rembi"))}
        content = content.model_copy(update={"metadata": metadata})
    return Version(
        id=row.id,
        study_id=row.study_id,
        study_name=study_name,
        number=row.number,
        created_at=queries.aware(row.created_at) or row.created_at,
        created_by=HIDDEN_FOR_REVIEW if blind else row.created_by,
        note=row.note,
        content_sha256=row.content_sha256,
        intact=intact,
        published_at=queries.aware(row.published_at),
        published_by=HIDDEN_FOR_REVIEW if blind and row.published_by else row.published_by,
        image_count=len(content.images),
        stored_bytes=sum(image.stored_bytes for image in content.images),
        content=content,
    )

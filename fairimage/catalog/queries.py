"""Query functions over the catalog tables. Each takes an open Session; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, true
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from fairimage.catalog.tables import (
    AnnotationRow,
    CorrelativeSetRow,
    ImageRow,
    LabelRow,
    ModelRow,
    OriginalFileRow,
    PlateRow,
    ShareLinkUseRow,
    StudyRow,
    WellRow,
)
from fairimage.model.governance.policy import PolicyKind, Principal, StudyPolicy
from fairimage.model.viewing.correlative import CorrelativeMember, CorrelativeSet


def readable_studies(principal: Principal, now: datetime) -> ColumnElement[bool]:
    """The SQL twin of ``model.policy.may_read``, so listings and counts never include what a single
    read would refuse (tests check that both agree for every role and policy)."""
    if principal.sees_everything:
        return true()
    cleared = StudyRow.quarantined == 0
    public = and_(
        cleared,
        or_(
            StudyRow.policy == PolicyKind.PUBLIC.value,
            and_(StudyRow.policy == PolicyKind.EMBARGOED.value, StudyRow.embargo_until <= now),
        ),
    )
    if principal.user_id is None:
        return public
    granted = StudyRow.id.in_(sorted(principal.granted_studies)) if principal.granted_studies else false()
    return or_(public, StudyRow.owner_id == principal.user_id, and_(cleared, granted))


def readable_images(principal: Principal, now: datetime) -> ColumnElement[bool]:
    """The SQL twin of ``may_read`` and ``Principal.may_see_image``, for queries joining images to studies."""
    readable = readable_studies(principal, now)
    scope = principal.version
    if scope is None:
        return readable
    shown = ImageRow.id.in_(sorted(scope.images)) if scope.images else false()
    return and_(readable, or_(ImageRow.study_id != scope.study_id, shown))


def discoverable_studies(principal: Principal, now: datetime) -> ColumnElement[bool]:
    """The SQL twin of ``model.policy.may_discover``: readable studies, and every restricted one."""
    return or_(StudyRow.policy == PolicyKind.RESTRICTED.value, readable_studies(principal, now))


def study_policy(row: StudyRow) -> StudyPolicy:
    return StudyPolicy(
        PolicyKind(row.policy), row.owner_id, aware(row.embargo_until), quarantined=bool(row.quarantined)
    )


def image_study(session: Session, image_id: str) -> StudyRow | None:
    """The study an image belongs to (what the access check needs), in one indexed query."""
    return session.scalars(select(StudyRow).join(ImageRow).where(ImageRow.id == image_id)).first()


def image_place(session: Session, image_id: str) -> tuple[str | None, str] | None:
    """Where an image's OME-Zarr group is: (its registered root, None for the repository's store; its key)."""
    found = session.execute(
        select(ImageRow.location, ImageRow.storage_key).where(ImageRow.id == image_id)
    ).first()
    return None if found is None else (found[0], found[1])


def plate_place(session: Session, plate_id: str) -> tuple[str | None, str] | None:
    """Where a plate's group documents are, as ``image_place`` says it of an image."""
    found = session.execute(
        select(PlateRow.location, PlateRow.storage_key).where(PlateRow.id == plate_id)
    ).first()
    return None if found is None else (found[0], found[1])


def aware(moment: datetime | None) -> datetime | None:
    """SQLite returns timestamps without their zone; fairimage writes them in UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def study_by_name(session: Session, name: str) -> StudyRow | None:
    return session.scalars(select(StudyRow).where(StudyRow.name == name)).first()


def study_by_id_or_name(session: Session, key: str) -> StudyRow | None:
    return session.scalars(select(StudyRow).where(or_(StudyRow.id == key, StudyRow.name == key))).first()


def studies_with_counts(session: Session, visible: ColumnElement[bool]) -> list[tuple[StudyRow, int]]:
    counts = (
        select(ImageRow.study_id, func.count(ImageRow.id).label("n")).group_by(ImageRow.study_id).subquery()
    )
    rows = session.execute(
        select(StudyRow, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.study_id == StudyRow.id)
        .where(visible)
        .order_by(StudyRow.name)
    )
    return [(study, int(count)) for study, count in rows]


def image_count(session: Session, study_id: str) -> int:
    return int(session.scalar(select(func.count(ImageRow.id)).where(ImageRow.study_id == study_id)) or 0)


def file_by_sha256(session: Session, sha256: str) -> OriginalFileRow | None:
    return session.scalars(
        select(OriginalFileRow)
        .where(OriginalFileRow.sha256 == sha256)
        .options(selectinload(OriginalFileRow.images))
    ).first()


def file_of_size_exists(session: Session, size: int) -> bool:
    """Whether any stored original has exactly ``size`` bytes (if none has, no content can match)."""
    return session.scalar(select(OriginalFileRow.id).where(OriginalFileRow.size == size).limit(1)) is not None


def image_by_id(session: Session, image_id: str) -> ImageRow | None:
    return session.scalars(
        select(ImageRow)
        .where(ImageRow.id == image_id)
        .options(selectinload(ImageRow.original_file), selectinload(ImageRow.study))
    ).first()


def study_images(session: Session, study_id: str) -> Sequence[ImageRow]:
    """Every image of a study, in id order, with its original file and study loaded."""
    return session.scalars(
        select(ImageRow)
        .where(ImageRow.study_id == study_id)
        .order_by(ImageRow.id)
        .options(selectinload(ImageRow.original_file), selectinload(ImageRow.study))
    ).all()


def image_page(
    session: Session, study_id: str | None, after: str | None, limit: int, visible: ColumnElement[bool]
) -> tuple[Sequence[ImageRow], int]:
    """Images in id order (ids sort by creation), ``limit`` after the cursor ``after``, and the total, of
    the studies ``visible`` admits."""
    query = select(ImageRow).join(StudyRow).where(visible)
    counted = select(func.count(ImageRow.id)).join(StudyRow).where(visible)
    if study_id is not None:
        query = query.where(ImageRow.study_id == study_id)
        counted = counted.where(ImageRow.study_id == study_id)
    total = int(session.scalar(counted) or 0)
    if after is not None:
        query = query.where(ImageRow.id > after)
    rows = session.scalars(
        query.order_by(ImageRow.id)
        .limit(limit)
        .options(selectinload(ImageRow.original_file), selectinload(ImageRow.study))
    ).all()
    return rows, total


def recent_images(session: Session, limit: int, visible: ColumnElement[bool]) -> Sequence[ImageRow]:
    """The ``limit`` most recently ingested images of the studies ``visible`` admits, newest first."""
    return session.scalars(
        select(ImageRow)
        .join(StudyRow)
        .where(visible)
        .order_by(ImageRow.id.desc())
        .limit(limit)
        .options(selectinload(ImageRow.original_file), selectinload(ImageRow.study))
    ).all()


def existing_image_ids(session: Session, ids: Iterable[str]) -> set[str]:
    wanted = list(ids)
    if not wanted:
        return set()
    return set(session.scalars(select(ImageRow.id).where(ImageRow.id.in_(wanted))))


def image_study_id(session: Session, image_id: str) -> str | None:
    """The study of an image, or None: the cheap lookup the chunk-serving path needs."""
    return session.scalar(select(ImageRow.study_id).where(ImageRow.id == image_id))


def annotations_by_image(session: Session, study_id: str) -> dict[str | None, list[tuple[str, str, str]]]:
    """A study's annotations as (kind, key, value) by image id (None: the study's own), in id order."""
    found: dict[str | None, list[tuple[str, str, str]]] = {}
    rows = session.scalars(
        select(AnnotationRow).where(AnnotationRow.study_id == study_id).order_by(AnnotationRow.id)
    )
    for row in rows:
        found.setdefault(row.image_id, []).append((row.kind, row.key, row.value))
    return found


def correlative_sets(session: Session, study_id: str) -> list[CorrelativeSet]:
    """A study's correlative sets, by name."""
    query = (
        select(CorrelativeSetRow)
        .where(CorrelativeSetRow.study_id == study_id)
        .order_by(CorrelativeSetRow.name)
    )
    return [_correlative_set(session, row) for row in session.scalars(query)]


def correlative_set(session: Session, set_id: str) -> CorrelativeSet | None:
    row = session.get(CorrelativeSetRow, set_id)
    return _correlative_set(session, row) if row is not None else None


def spatial_unit(row: ImageRow) -> str | None:
    """An image's unit along x (its spatial unit), or None where the file gave none."""
    return next((axis.get("unit") for axis in row.axes if axis["name"] == "x"), None)


def _correlative_set(session: Session, row: CorrelativeSetRow) -> CorrelativeSet:
    study = session.get(StudyRow, row.study_id)
    reference = session.get(ImageRow, row.reference_image_id)
    assert study is not None and reference is not None
    names = {m.image_id: (session.get(ImageRow, m.image_id) or reference).name for m in row.members}
    return CorrelativeSet(
        id=row.id,
        name=row.name,
        description=row.description,
        study_id=study.id,
        study_name=study.name,
        reference_image_id=reference.id,
        reference_name=reference.name,
        reference_modality=row.reference_modality,
        axes="".join(axis["name"] for axis in reference.axes if axis["name"] in ("z", "y", "x")),
        unit=spatial_unit(reference),
        created_by=row.created_by,
        created_at=row.created_at,
        members=tuple(
            CorrelativeMember(
                image_id=m.image_id,
                image_name=names[m.image_id],
                modality=m.modality,
                colour=m.colour,
                matrix=tuple(tuple(float(v) for v in r) for r in m.matrix),
                method=m.method,
                landmarks=len(m.landmarks),
                residual=m.residual,
            )
            for m in row.members
        ),
    )


def quarantined_images(session: Session) -> list[tuple[ImageRow, str]]:
    """Images ever quarantined (DICOM that may show burned-in text), with their study's name."""
    rows = session.execute(
        select(ImageRow, StudyRow.name)
        .join(StudyRow, StudyRow.id == ImageRow.study_id)
        .where(ImageRow.quarantine.is_not(None))
        .order_by(ImageRow.id)
    )
    return [(image, name) for image, name in rows if image.quarantine]  # JSON null is not SQL NULL


def study_file_names(session: Session, study_id: str) -> list[str]:
    """The names of the files a study's images came from."""
    return list(
        session.scalars(
            select(OriginalFileRow.name)
            .where(OriginalFileRow.study_id == study_id)
            .order_by(OriginalFileRow.name)
        )
    )


def study_dicom_headers(session: Session, study_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The de-identified DICOM headers of a study's images, by image id."""
    rows = session.execute(
        select(ImageRow.id, ImageRow.dicom).where(ImageRow.study_id == study_id, ImageRow.dicom.is_not(None))
    )
    return [(image_id, dict(header)) for image_id, header in rows if header]  # JSON null is not SQL NULL


def original_file_by_sha256(session: Session, sha256: str) -> OriginalFileRow | None:
    return session.scalars(select(OriginalFileRow).where(OriginalFileRow.sha256 == sha256)).first()


def plate_of_file(session: Session, file_id: str) -> PlateRow | None:
    """The plate whose fields came from the original file (a plate folder) ``file_id``."""
    return session.scalars(
        select(PlateRow).join(ImageRow, ImageRow.plate_id == PlateRow.id).where(ImageRow.file_id == file_id)
    ).first()


def add_share_link_use(session: Session, link_id: str, origin: str) -> bool:
    """Record that a client address used a share link; False if it had already (concurrent first
    requests of one client insert once: INSERT ... ON CONFLICT DO NOTHING, in SQLite and PostgreSQL)."""
    values = {"link_id": link_id, "origin": origin, "used_at": datetime.now(UTC)}
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(ShareLinkUseRow).values(**values)
    result = session.execute(statement.on_conflict_do_nothing())
    return bool(getattr(result, "rowcount", 0))


def plates_of_images(session: Session, image_ids: Iterable[str]) -> set[str]:
    """The plates the given images are fields of."""
    wanted = sorted(image_ids)
    if not wanted:
        return set()
    found = select(ImageRow.plate_id).where(ImageRow.id.in_(wanted), ImageRow.plate_id.is_not(None))
    return {plate for plate in session.scalars(found.distinct()) if plate is not None}


def plate_study(session: Session, plate_id: str) -> StudyRow | None:
    """The study a plate belongs to (what the access check needs), in one indexed query."""
    found = select(StudyRow).join(PlateRow, PlateRow.study_id == StudyRow.id).where(PlateRow.id == plate_id)
    return session.scalars(found).first()


def plate_field_image(session: Session, plate_id: str, row: str, column: str, field: int) -> str | None:
    """The image id of one field of a plate's well, or None."""
    return session.scalar(
        select(ImageRow.id).where(
            ImageRow.plate_id == plate_id,
            ImageRow.well_row == row,
            ImageRow.well_column == column,
            ImageRow.field == field,
        )
    )


def wells_of_images(session: Session, images: Sequence[ImageRow]) -> dict[str, tuple[str, WellRow]]:
    """For the plate fields among ``images``: their plate's name and their well, by image id."""
    plate_ids = {image.plate_id for image in images if image.plate_id}
    if not plate_ids:
        return {}
    named = session.execute(select(PlateRow.id, PlateRow.name).where(PlateRow.id.in_(plate_ids))).all()
    names = {plate_id: name for plate_id, name in named}
    wells = {
        (well.plate_id, well.row, well.column): well
        for well in session.scalars(select(WellRow).where(WellRow.plate_id.in_(plate_ids)))
    }
    found = {}
    for image in images:
        well = wells.get((image.plate_id or "", image.well_row or "", image.well_column or ""))
        if image.plate_id and well is not None:
            found[image.id] = (names.get(image.plate_id, ""), well)
    return found


def label_names(session: Session, image_id: str) -> list[str]:
    """The names of an image's labels, in order."""
    return list(
        session.scalars(select(LabelRow.name).where(LabelRow.image_id == image_id).order_by(LabelRow.name))
    )


def label_id(session: Session, image_id: str, name: str) -> str | None:
    """The id of the image's label ``name``."""
    return session.scalars(
        select(LabelRow.id).where(LabelRow.image_id == image_id, LabelRow.name == name)
    ).first()


def existing_label_ids(session: Session, ids: list[str]) -> set[str]:
    return set(session.scalars(select(LabelRow.id).where(LabelRow.id.in_(ids)))) if ids else set()


def existing_model_ids(session: Session, ids: list[str]) -> set[str]:
    return set(session.scalars(select(ModelRow.id).where(ModelRow.id.in_(ids)))) if ids else set()


def plate_first_fields(session: Session, plate_id: str) -> tuple[list[str], list[str], list[ImageRow]]:
    """A plate's row and column names, and the first field's image of each well that has one."""
    plate = session.get(PlateRow, plate_id)
    if plate is None:
        return [], [], []
    fields = session.scalars(
        select(ImageRow)
        .where(ImageRow.plate_id == plate_id)
        .order_by(ImageRow.well_row, ImageRow.well_column, ImageRow.field)
    )
    first: dict[tuple[str | None, str | None], ImageRow] = {}
    for row in fields:
        first.setdefault((row.well_row, row.well_column), row)
    return list(plate.rows), list(plate.columns), list(first.values())

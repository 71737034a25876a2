"""Reading plates: those in studies the caller may read (the access service decides which), each with its
wells, their treatments and their fields."""

from __future__ import annotations

from sqlalchemy import select

from fairimage.catalog import queries
from fairimage.catalog.tables import ImageRow, PlateRow, StudyRow, WellRow
from fairimage.model.errors import NotFoundError
from fairimage.model.governance.policy import Principal
from fairimage.model.plates.plate import Plate, WellFields
from fairimage.services.governance import access
from fairimage.services.repository import Repository


def list_plates(repository: Repository, principal: Principal, study: str | None = None) -> list[Plate]:
    """The plates the caller may read, newest first; of one study (id or name) if given."""
    study_id = access.check_study(repository, principal, study) if study is not None else None
    with repository.reading() as session:
        found = (
            select(PlateRow, StudyRow.name)
            .join(StudyRow, PlateRow.study_id == StudyRow.id)
            .where(access.visible(principal))
            .order_by(PlateRow.id.desc())
        )
        if study_id is not None:
            found = found.where(PlateRow.study_id == study_id)
        rows = session.execute(found).all()
        return [_plate(row, name) for row, name in rows if principal.may_see_plate(row.study_id, row.id)]


def get_plate(repository: Repository, principal: Principal, plate_id: str) -> Plate:
    """One plate with its wells (treatments and field images), after the access check."""
    access.check_plate(repository, principal, plate_id)
    with repository.reading() as session:
        row = session.get(PlateRow, plate_id)
        study = queries.plate_study(session, plate_id)
        if row is None or study is None:
            raise NotFoundError(f"plate {plate_id!r} not found")
        fields: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for image_id, well_row, well_column, index in session.execute(
            select(ImageRow.id, ImageRow.well_row, ImageRow.well_column, ImageRow.field).where(
                ImageRow.plate_id == plate_id
            )
        ):
            fields.setdefault((well_row or "", well_column or ""), []).append((index or 0, image_id))
        wells = session.scalars(select(WellRow).where(WellRow.plate_id == plate_id)).all()
        order = (
            {name: index for index, name in enumerate(row.rows)},
            {n: i for i, n in enumerate(row.columns)},
        )
        listed = sorted(wells, key=lambda well: (order[0].get(well.row, 0), order[1].get(well.column, 0)))
        return _plate(row, study.name).model_copy(
            update={"wells": tuple(_well(well, fields.get((well.row, well.column), [])) for well in listed)}
        )


def _plate(row: PlateRow, study_name: str) -> Plate:
    return Plate(
        id=row.id,
        name=row.name,
        study_id=row.study_id,
        study_name=study_name,
        rows=tuple(row.rows),
        columns=tuple(row.columns),
        channels=tuple(row.channels),
        field_count=row.field_count,
        layout=str(row.source.get("layout", "")),
        missing=tuple(row.missing),
        created_at=queries.aware(row.created_at),
    )


def _well(well: WellRow, fields: list[tuple[int, str]]) -> WellFields:
    return WellFields(
        row=well.row,
        column=well.column,
        compound=well.compound,
        concentration=well.concentration,
        concentration_unit=well.concentration_unit,
        control=well.control,
        replicate=well.replicate,
        extra=well.extra,
        images=tuple(image_id for _, image_id in sorted(fields)),
    )

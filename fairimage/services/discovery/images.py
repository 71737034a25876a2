"""Reading the catalog: studies and images as domain models, only those the caller may read (the
access service decides which)."""

from __future__ import annotations

from typing import Any

from fairimage.catalog import queries
from fairimage.catalog.tables import ImageRow, StudyRow
from fairimage.model.errors import InvalidInputError, NotFoundError
from fairimage.model.governance.duo import DataUse
from fairimage.model.governance.policy import Principal
from fairimage.model.image import Axis, Channel
from fairimage.model.study import Generated, Image, ImagePage, Level, OriginalFile, Study
from fairimage.services.governance import access
from fairimage.services.repository import Repository

MAX_PAGE = 1000


def list_studies(repository: Repository, principal: Principal) -> list[Study]:
    with repository.reading() as session:
        rows = queries.studies_with_counts(session, access.discoverable(principal))
        return [to_study(row, count, principal) for row, count in rows]


def get_study(repository: Repository, principal: Principal, key: str) -> Study:
    """A study by id or by name: its record, which restricted studies show to everyone (so they can be
    requested); ``may_read`` says whether the caller may read its images."""
    study_id = access.find_study(repository, principal, key)
    with repository.reading() as session:
        row = session.get(StudyRow, study_id)
        if row is None:
            raise NotFoundError(f"study {key!r} not found")
        return to_study(row, queries.image_count(session, row.id), principal)


def list_images(
    repository: Repository,
    principal: Principal,
    study: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> ImagePage:
    """A page of images, optionally of one study (id or name); ``cursor`` is the ``next`` of the last page."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(f"limit {limit}: must be between 1 and {MAX_PAGE}")
    study_id = access.check_study(repository, principal, study) if study is not None else None
    with repository.reading() as session:
        rows, total = queries.image_page(
            session, study_id, cursor, limit + 1, access.visible_images(principal)
        )
        items = [to_image(row) for row in rows[:limit]]
    return ImagePage(items=items, total=total, next=items[-1].id if len(rows) > limit else None)


def recent_images(repository: Repository, principal: Principal, limit: int = 12) -> list[Image]:
    """The newest images the caller may see, newest first (the home page's "recently added")."""
    with repository.reading() as session:
        return [
            to_image(row) for row in queries.recent_images(session, limit, access.visible_images(principal))
        ]


def get_image(repository: Repository, principal: Principal, image_id: str) -> Image:
    """The image if ``principal`` may read it; NotFoundError otherwise (existence is not revealed)."""
    access.check_image(repository, principal, image_id)
    with repository.reading() as session:
        row = queries.image_by_id(session, image_id)
        if row is None:
            raise NotFoundError(f"image {image_id!r} not found")
        return to_image(row)


def dicom_header(repository: Repository, principal: Principal, image_id: str) -> dict[str, Any]:
    """A DICOM image's de-identified header (DICOM JSON model), for whoever may read the image; other
    images have none (NotFoundError)."""
    access.check_image(repository, principal, image_id)
    with repository.reading() as session:
        row = queries.image_by_id(session, image_id)
        if row is None or row.dicom is None:
            raise NotFoundError(f"image {image_id!r} has no DICOM header")
        return dict(row.dicom)


def to_study(row: StudyRow, count: int, principal: Principal) -> Study:
    return Study(
        id=row.id,
        name=row.name,
        description=row.description,
        created_at=queries.aware(row.created_at) or row.created_at,
        image_count=_shown_count(principal, row.id, count),
        policy=row.policy,
        embargo_until=queries.aware(row.embargo_until),
        data_use=DataUse.model_validate(row.data_use) if row.data_use else None,
        may_read=access.may_read_study(principal, row),
        mirror_of=row.mirror_of,
    )


def _shown_count(principal: Principal, study_id: str, count: int) -> int:
    """How many images of the study the caller sees: a link to one version, that version's."""
    scope = principal.version
    return len(scope.images) if scope is not None and scope.study_id == study_id else count


def to_image(row: ImageRow) -> Image:
    file = row.original_file
    return Image(
        id=row.id,
        name=row.name,
        study_id=row.study_id,
        study_name=row.study.name,
        original_file=OriginalFile(
            id=file.id, name=file.name, format=file.format, size=file.size, sha256=file.sha256
        ),
        series_index=row.series_index,
        axes=tuple(Axis.model_validate(axis) for axis in row.axes),
        shape=tuple(row.shape),
        dtype=row.dtype,
        source_dtype=row.source_dtype,
        scale=tuple(row.scale),
        channels=tuple(Channel.model_validate(channel) for channel in row.channels),
        levels=tuple(Level.model_validate(level) for level in row.levels),
        stored_bytes=row.stored_bytes,
        object_count=row.object_count,
        created_at=queries.aware(row.created_at) or row.created_at,
        acquisition=row.acquisition or {},
        generated=Generated.model_validate(row.generated) if row.generated else None,
    )

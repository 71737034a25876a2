"""schema.org JSON-LD of studies and images, behind the same access checks as their pages: a restricted
study's Dataset is public (its record is), its images appear only for those who may read them."""

from __future__ import annotations

from typing import Any

from fairimage.catalog import queries
from fairimage.catalog.tables import StudyRow
from fairimage.model.curation.rembi import Rembi
from fairimage.model.discovery import jsonld
from fairimage.model.discovery.search import components_of
from fairimage.model.errors import NotFoundError
from fairimage.model.governance.policy import Principal
from fairimage.model.viewing.correlative import CorrelativeSet
from fairimage.services.discovery import images as image_service
from fairimage.services.governance import versions
from fairimage.services.repository import Repository


def study_dataset(repository: Repository, principal: Principal, study: str, base: str) -> dict[str, Any]:
    record = image_service.get_study(repository, principal, study)
    rembi = study_rembi(repository, principal, record.id)
    images: list[Any] = []
    latest = None
    if record.may_read:
        page = image_service.list_images(repository, principal, study=record.id, limit=100)
        images = page.items
        latest = versions.get_version(repository, principal, record.id, None).number
    correlative = correlative_sets(repository, record.id) if record.may_read else []
    return jsonld.dataset(record, rembi, images, jsonld.Links(base), latest, correlative)


def correlative_sets(repository: Repository, study_id: str) -> list[CorrelativeSet]:
    """A study's correlative sets, for its exports (the caller checked that the study may be read)."""
    with repository.reading() as session:
        return queries.correlative_sets(session, study_id)


def image_object(repository: Repository, principal: Principal, image_id: str, base: str) -> dict[str, Any]:
    image = image_service.get_image(repository, principal, image_id)
    rembi = study_rembi(repository, principal, image.study_id)
    methods = [
        m for component in components_of(rembi, image.original_file.name) for m in component.imaging_methods
    ]
    links = jsonld.Links(base)
    return jsonld.image_object(image, links, methods, part_of=links.pid(image.study_id))


def study_rembi(repository: Repository, principal: Principal, study_id: str) -> Rembi:
    """A study's REMBI metadata (empty if none was given) as the caller sees it: a double-blind reviewer
    without names, the holder of a link to one version as that version recorded it; the caller checked
    access."""
    with repository.reading() as session:
        row = session.get(StudyRow, study_id)
        if row is None:
            raise NotFoundError(f"study {study_id!r} not found")
        document = versions.shown_rembi(session, principal, row)
        rembi = Rembi.model_validate(document) if document else Rembi()
    return rembi.for_blind_review() if principal.blind else rembi

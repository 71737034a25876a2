"""The provenance of stored images (W3C PROV JSON-LD), behind the same access check as their pixels."""

from __future__ import annotations

from typing import Any

from fairimage.catalog import queries
from fairimage.catalog.tables import IngestRunRow
from fairimage.model.errors import NotFoundError
from fairimage.model.governance import provenance
from fairimage.model.governance.policy import Principal
from fairimage.model.study import Generated
from fairimage.services.governance import access
from fairimage.services.repository import Repository


def image_provenance(repository: Repository, principal: Principal, image_id: str, pid: str) -> dict[str, Any]:
    """Where an image came from, how and by whom it was made, as PROV-O JSON-LD; ``pid`` is the base of
    the node's persistent identifiers (``https://host/pid/``)."""
    access.check_image(repository, principal, image_id)
    with repository.reading() as session:
        row = queries.image_by_id(session, image_id)
        if row is None:
            raise NotFoundError(f"image {image_id!r} not found")
        run = session.get(IngestRunRow, row.run_id) if row.run_id is not None else None
        source = row.original_file
        facts = provenance.ImageFacts(
            id=row.id,
            name=row.name,
            study_id=row.study_id,
            created_at=queries.aware(row.created_at) or row.created_at,
            manifest_sha256=row.manifest_sha256,
            stored_bytes=row.stored_bytes,
            source=provenance.SourceFile(source.id, source.name, source.format, source.size, source.sha256),
            run=None
            if run is None
            else provenance.IngestActivity(
                id=run.id,
                actor=run.actor,
                started_at=queries.aware(run.started_at) or run.started_at,
                ended_at=queries.aware(run.ended_at),
                software=run.software,
                parameters=run.parameters,
            ),
            generated=Generated.model_validate(row.generated) if row.generated else None,
        )
    return provenance.image_provenance(facts, pid)

"""Quality control of a study as a dataset: images whose shape or pixel size differ from the others, the same
pixels stored twice, wells and fields its plates lack, metadata problems and the FAIR score."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fairimage.catalog import queries
from fairimage.model.governance.policy import Principal
from fairimage.model.qc.dataset import Finding, ImageGeometry, duplicate_images, inconsistent_geometry
from fairimage.services.curation import study_metadata
from fairimage.services.governance import access, audit
from fairimage.services.plates import plates as plate_service
from fairimage.services.repository import Repository


def run_dataset_qc(repository: Repository, principal: Principal, study: str) -> dict[str, Any]:
    """The study's findings, each one line naming the image, well or metadata field, with its FAIR score."""
    study_id = access.check_study(repository, principal, study)
    with repository.reading() as session:
        rows = queries.study_images(session, study_id)
        geometry = [ImageGeometry(row.id, tuple(row.shape), _pixel_size(row.axes, row.scale)) for row in rows]
        manifests = {row.id: row.manifest_key for row in rows}
    findings: list[Finding] = inconsistent_geometry(geometry)
    findings += duplicate_images({image: _pixel_hash(repository, key) for image, key in manifests.items()})
    plates = plate_service.list_plates(repository, principal, study_id)
    missing = [f"plate {plate.name}: {line}" for plate in plates for line in plate.missing]
    metadata = study_metadata.get_metadata(repository, principal, study_id, with_images=False)
    problems = [f"{p.path}: {p.message}" for p in metadata.report.problems if p.severity == "error"]
    with repository.transaction() as session:
        audit.record(session, principal.name, "qc.dataset", f"study:{study_id}", findings=len(findings))
    return {
        "study": study_id,
        "images": len(geometry),
        "findings": [{"rule": f.rule, "subject": f.subject, "message": f.message} for f in findings],
        "plates_missing": missing,
        "metadata_errors": problems,
        "fair_score": metadata.score.to_dict(),
    }


def _pixel_size(axes: list[dict[str, Any]], scale: list[float]) -> tuple[float, ...] | None:
    """The physical pixel size along the axes that have a unit; None where the image records none."""
    sizes = tuple(float(s) for axis, s in zip(axes, scale, strict=True) if axis.get("unit"))
    return sizes or None


def _pixel_hash(repository: Repository, manifest_key: str) -> str:
    """A hash of an image's full-resolution chunks (their sha256s, from its manifest): the same pixels give
    the same hash whatever the image's name or metadata."""
    manifest = json.loads(repository.store.read(manifest_key))
    chunks = sorted(
        (key, entry["sha256"]) for key, entry in manifest["objects"].items() if key.startswith("0/")
    )
    return hashlib.sha256(json.dumps(chunks).encode()).hexdigest()

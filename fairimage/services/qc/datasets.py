"""Quality control of a study as a dataset: images whose shape or pixel size differ from the others, the same
pixels stored twice, wells and fields its plates lack, metadata problems and the FAIR score."""

from __future__ import annotations

from typing import Any

from fairimage.catalog import queries
from fairimage.model.governance.policy import Principal
from fairimage.model.qc.dataset import Finding, ImageGeometry, duplicate_images, inconsistent_geometry
from fairimage.services.curation import study_metadata
from fairimage.services.governance import access, audit
from fairimage.services.governance.fixity import pixel_hash
from fairimage.services.plates import plates as plate_service
from fairimage.services.qc.thresholds import study_thresholds
from fairimage.services.repository import Repository


def run_dataset_qc(repository: Repository, principal: Principal, study: str) -> dict[str, Any]:
    """The study's findings, each one line naming the image, well or metadata field, with its FAIR score."""
    study_id = access.check_study(repository, principal, study)
    with repository.reading() as session:
        rows = access.shown_images(principal, queries.study_images(session, study_id))
        geometry = [ImageGeometry(row.id, tuple(row.shape), _pixel_size(row.axes, row.scale)) for row in rows]
        manifests = {row.id: (row.manifest_key, str(row.levels[0]["path"])) for row in rows}
    findings: list[Finding] = inconsistent_geometry(
        geometry, study_thresholds(repository, principal, study_id)
    )
    hashes = {image: pixel_hash(repository, key, level) for image, (key, level) in manifests.items()}
    findings += duplicate_images({image: found for image, found in hashes.items() if found is not None})
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

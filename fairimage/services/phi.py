"""Protected health information in a study's text: what the scanner finds in its metadata, annotations and
file names is kept with the study; a study with findings is not published until a steward has looked at
them and acknowledged them (a new finding needs a new acknowledgement)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from fairimage.catalog import queries
from fairimage.catalog.tables import StudyRow
from fairimage.model.curation import phi_problems
from fairimage.model.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from fairimage.model.phi import scan_fields
from fairimage.model.policy import Principal
from fairimage.model.rembi import Rembi
from fairimage.services import access, audit
from fairimage.services.repository import Repository

# DICOM value representations of free text and names (PS3.5 6.2).
_TEXT_VRS = {"LO", "LT", "SH", "ST", "UT", "UC", "PN"}


@dataclass(frozen=True)
class StudyPhi:
    study: str
    findings: list[dict[str, str]]
    acknowledged: dict[str, str] | None

    @property
    def blocks_publication(self) -> bool:
        return bool(self.findings) and self.acknowledged is None

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.study, "findings": self.findings, "acknowledged": self.acknowledged}


def rescan(session: Session, study: StudyRow) -> list[dict[str, str]]:
    """Scan the study's text again (after its metadata, annotations or files changed) and keep what was
    found; an acknowledgement stands only while the findings are the same."""
    rembi = Rembi.model_validate(study.rembi) if study.rembi else Rembi()
    findings = [
        {"field": problem.path, "finding": problem.message.split(";")[0]} for problem in phi_problems(rembi)
    ]
    texts: dict[str, str] = {}
    for image_id, notes in queries.annotations_by_image(session, study.id).items():
        where = f"image {image_id}" if image_id else "study"
        for index, (kind, key, value) in enumerate(notes):
            texts[f"{where} annotation {index + 1}"] = value if kind == "tag" else f"{key}: {value}"
    for name in queries.study_file_names(session, study.id):
        texts[f"file name {name}"] = name.replace("_", " ")
    for image_id, header in queries.study_dicom_headers(session, study.id):
        for tag, element in header.items():  # the text de-identification kept (its options may keep some)
            if element.get("vr") in _TEXT_VRS:
                values = [
                    v.get("Alphabetic", "") if isinstance(v, dict) else str(v)
                    for v in element.get("Value", [])
                ]
                text = " ".join(value for value in values if value)
                if text:
                    texts[f"image {image_id} DICOM ({tag[:4]},{tag[4:]})"] = text
    findings += [
        {"field": field, "finding": f"may identify a person ({finding})"}
        for field, finding in scan_fields(texts)
    ]
    previous = study.phi or {}
    acknowledged = previous.get("acknowledged") if previous.get("findings") == findings else None
    study.phi = {"findings": findings, "acknowledged": acknowledged} if findings else None
    return findings


def study_phi(repository: Repository, principal: Principal, study: str) -> StudyPhi:
    """What the scanner found in a study's text, for those who govern it."""
    with repository.reading() as session:
        row = access.governed_study(session, principal, study)
        held = row.phi or {}
        return StudyPhi(row.name, list(held.get("findings", [])), held.get("acknowledged"))


def acknowledge(repository: Repository, principal: Principal, study: str, note: str) -> StudyPhi:
    """A steward has read the findings and judged them (not identifying, or accepted under the study's
    consent): publication may go ahead. Audited."""
    if not principal.sees_everything:
        raise ForbiddenError("only a data steward or an admin acknowledges what the PHI scanner found")
    if not note.strip():
        raise InvalidInputError("--note: say what you judged, e.g. 'the names are the authors' own'")
    with repository.transaction() as session:
        row = access.governed_study(session, principal, study)
        if not row.phi or not row.phi.get("findings"):
            raise NotFoundError(f"study {row.name!r}: the PHI scanner found nothing to acknowledge")
        acknowledged = {"by": principal.name, "at": datetime.now(UTC).isoformat(), "note": note.strip()}
        row.phi = {**row.phi, "acknowledged": acknowledged}
        audit.record(
            session,
            principal.name,
            "study.phi.acknowledge",
            f"study:{row.id}",
            origin=principal.origin,
            findings=len(row.phi["findings"]),
            note=note.strip(),
        )
        return StudyPhi(row.name, list(row.phi["findings"]), acknowledged)


def check_publishable(row: StudyRow) -> None:
    """Refuse to publish a study whose PHI findings no steward has acknowledged."""
    held = row.phi or {}
    findings = held.get("findings") or []
    if findings and not held.get("acknowledged"):
        first = findings[0]
        raise ConflictError(
            f"study {row.name!r}: the PHI scanner found {len(findings)} possible personal identifier(s), "
            f"e.g. {first['field']}: {first['finding']}; remove them, or a steward acknowledges them with "
            f"'fairimage study acknowledge-phi {row.name!r} --note ...'"
        )

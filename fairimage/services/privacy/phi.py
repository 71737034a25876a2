"""Protected health information in a study's text: what the scanner finds in its metadata, annotations and
file names is kept with the study; a study with findings is not published until a steward has looked at
them and acknowledged them (a new finding needs a new acknowledgement)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from fairimage.catalog import queries
from fairimage.catalog.tables import StudyRow
from fairimage.model.curation.checks import free_texts
from fairimage.model.curation.rembi import Rembi
from fairimage.model.errors import ForbiddenError, InvalidInputError, NotFoundError
from fairimage.model.governance.policy import Principal
from fairimage.model.privacy.phi import scan_fields
from fairimage.services.governance import access, audit
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
    """Scan the study's text again (after its metadata or annotations changed) and keep what was found; an
    acknowledgement stands only while the findings are the same."""
    rembi = Rembi.model_validate(study.rembi) if study.rembi else Rembi()
    texts = free_texts(rembi)
    for image_id, notes in queries.annotations_by_image(session, study.id).items():
        where = f"image {image_id}" if image_id else "study"
        for index, (kind, key, value) in enumerate(notes):
            texts[f"{where} annotation {index + 1}"] = value if kind == "tag" else f"{key}: {value}"
    texts |= _file_texts(
        queries.study_file_names(session, study.id), queries.study_dicom_headers(session, study.id)
    )
    findings = _findings(texts)
    previous = study.phi or {}
    same = _ordered(previous.get("findings", [])) == _ordered(findings)  # whatever order they were found in
    acknowledged = previous.get("acknowledged") if same else None
    study.phi = {"findings": findings, "acknowledged": acknowledged} if findings else None
    return findings


def note_file(
    session: Session, study: StudyRow, name: str, headers: Iterable[tuple[str, dict[str, Any]]]
) -> list[dict[str, str]]:
    """Add what the scanner finds in one newly ingested file (its name, its images' DICOM headers) to the
    study's findings, without scanning the rest of the study again; a new finding needs a new
    acknowledgement. Returns the new findings."""
    previous = study.phi or {}
    known = list(previous.get("findings", []))
    new = [finding for finding in _findings(_file_texts([name], headers)) if finding not in known]
    if new:
        study.phi = {"findings": known + new, "acknowledged": None}
    return new


def _file_texts(names: Iterable[str], headers: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """The texts of files: their names, and the text de-identification kept in their DICOM headers (its
    options may keep some)."""
    texts = {f"file name {name}": name.replace("_", " ") for name in names}
    for image_id, header in headers:
        for tag, element in header.items():
            if element.get("vr") in _TEXT_VRS:
                values = [
                    v.get("Alphabetic", "") if isinstance(v, dict) else str(v)
                    for v in element.get("Value", [])
                ]
                text = " ".join(value for value in values if value)
                if text:
                    texts[f"image {image_id} DICOM ({tag[:4]},{tag[4:]})"] = text
    return texts


def _ordered(findings: list[dict[str, str]]) -> list[tuple[str, str]]:
    return sorted((finding["field"], finding["finding"]) for finding in findings)


def _findings(texts: dict[str, str]) -> list[dict[str, str]]:
    return [
        {"field": field, "finding": f"may identify a person ({finding})"}
        for field, finding in scan_fields(texts)
    ]


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

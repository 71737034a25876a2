"""De-identification as ingest uses it: the repository's key (kept in a file outside the catalog) and the
options the repository chose, turned into the step that de-identifies each DICOM header before anything is
read from it."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from fairimage import ontology
from fairimage.catalog import queries
from fairimage.catalog.tables import ImageRow
from fairimage.formats.deid import Choice, Report, deidentify
from fairimage.model.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    StorageError,
)
from fairimage.model.governance.policy import Principal
from fairimage.model.privacy.deid import Option
from fairimage.services.governance import audit
from fairimage.services.repository import Repository
from fairimage.settings import Settings
from fairimage.storage import keys

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "Choice",
    "Quarantined",
    "Report",
    "choice",
    "clear",
    "header_step",
    "quarantined",
    "repository_key",
]

KEY_BYTES = 32


def repository_key(settings: Settings) -> bytes:
    """The repository's de-identification key, made (readable by its owner only) the first time."""
    path = settings.deid_key_path
    key = keys.read_or_make(path, lambda: secrets.token_bytes(KEY_BYTES), "de-identification key")
    if len(key) < KEY_BYTES:
        raise StorageError(f"{path}: the de-identification key is shorter than {KEY_BYTES} bytes; restore it")
    return key


def choice(settings: Settings) -> Choice:
    """The options and safe private attributes the repository's settings name."""
    by_name = {option.name.lower(): option for option in Option}
    options = set()
    for name in settings.deid_options:
        option = by_name.get(name.strip().lower())
        if option is None:
            raise InvalidInputError(
                f"setting deid_options: {name!r} is not an option; use {', '.join(by_name)}"
            )
        options.add(option)
    safe = set()
    for text in settings.deid_safe_private:
        creator, _, element = text.rpartition(":")
        try:
            safe.add((creator.strip(), int(element, 0) & 0xFF))
        except ValueError:
            raise InvalidInputError(
                f"setting deid_safe_private: {text!r}: write PRIVATE CREATOR:ELEMENT, e.g. 'SIEMENS MED:0x10'"
            ) from None
    return Choice(frozenset(options), frozenset(safe))


def _apply(key: bytes, chosen: Choice, reports: list[Report], header: Dataset) -> None:
    reports.append(deidentify(header, ontology.dicom_profile(), key, chosen))


def header_step(settings: Settings, reports: list[Report] | None = None) -> Callable[[Dataset], None]:
    """What ingest does to each DICOM header before reading it: de-identify it in place (reports, if
    given, receive what was done)."""
    return partial(_apply, repository_key(settings), choice(settings), reports if reports is not None else [])


@dataclass(frozen=True)
class Quarantined:
    """An image held back because its pixels may show identifying text."""

    image_id: str
    study: str
    name: str
    reasons: tuple[str, ...]
    cleared_by: str | None = None
    cleared_at: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "reasons": list(self.reasons)}


def quarantined(
    repository: Repository, principal: Principal, include_cleared: bool = False
) -> list[Quarantined]:
    """Images in quarantine (and, asked for, those cleared), for stewards and admins."""
    _steward(principal)
    with repository.reading() as session:
        found = [_quarantined(image, study) for image, study in queries.quarantined_images(session)]
    return [entry for entry in found if include_cleared or entry.cleared_by is None]


def clear(repository: Repository, principal: Principal, image_id: str, note: str) -> Quarantined:
    """A steward has looked at the image's pixels and found no identifying text: it leaves quarantine, and
    its study is readable again by its policy once no image of it is left in quarantine."""
    _steward(principal)
    if not note.strip():
        raise InvalidInputError(
            "--note: say what you checked, e.g. 'no text in the pixels, all frames viewed'"
        )
    with repository.transaction() as session:
        image = session.get(ImageRow, image_id)
        if image is None or image.quarantine is None:
            raise NotFoundError(f"image {image_id!r} is not in quarantine")
        if image.quarantine.get("cleared_by"):
            raise ConflictError(f"image {image_id!r} was cleared already by {image.quarantine['cleared_by']}")
        image.quarantine = {
            **image.quarantine,
            "cleared_by": principal.name,
            "cleared_at": datetime.now(UTC).isoformat(),
            "note": note.strip(),
        }
        study = image.study
        study.quarantined = max(0, (study.quarantined or 0) - 1)
        audit.record(
            session,
            principal.name,
            "image.quarantine.clear",
            f"image:{image.id}",
            origin=principal.origin,
            study=study.id,
            note=note.strip(),
            left=study.quarantined,
        )
        return _quarantined(image, study.name)


def _steward(principal: Principal) -> None:
    if not principal.sees_everything:
        raise ForbiddenError("only a data steward or an admin sees and clears the DICOM quarantine")


def _quarantined(image: ImageRow, study: str) -> Quarantined:
    held = image.quarantine or {}
    return Quarantined(
        image.id,
        study,
        image.name,
        tuple(held.get("reasons", [])),
        held.get("cleared_by"),
        held.get("cleared_at"),
        held.get("note"),
    )

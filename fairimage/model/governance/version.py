"""Study versions: what a version holds, its checksum, and the difference between two versions.

A version is a snapshot of a study's metadata and the manifest of its images (each with the checksums of
its original file and of its stored objects' manifest). Pixels are immutable, so the manifest pins the
bytes of every image exactly; the version's own sha256 over its canonical JSON pins the manifest.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

VERSION_FORMAT = "fairimage-version/1"


class VersionImage(BaseModel):
    """One image as a version lists it: enough to find it and to prove its bytes unchanged."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    file_id: str
    file_sha256: str
    manifest_sha256: str
    stored_bytes: int


class VersionContent(BaseModel):
    """What a version pins: the study's descriptive metadata and its images. Access policy is not part of
    it (who may read changes without changing the data; the audit log records it)."""

    model_config = ConfigDict(frozen=True)

    format: str = VERSION_FORMAT
    metadata: dict[str, Any]
    images: tuple[VersionImage, ...]

    def sha256(self) -> str:
        return content_sha256(self.model_dump(mode="json"))


def content_sha256(content: dict[str, Any]) -> str:
    """The sha256 of a version's content as canonical JSON (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def version_id(study_id: str, number: int) -> str:
    """A version's persistent identifier: its study's id and its number."""
    return f"{study_id}.v{number}"


class Version(BaseModel):
    """A version as services hand it out."""

    model_config = ConfigDict(frozen=True)

    id: str
    study_id: str
    study_name: str
    number: int
    created_at: datetime
    created_by: str
    note: str
    content_sha256: str
    intact: bool  # whether the stored content still hashes to content_sha256
    published_at: datetime | None
    published_by: str | None
    image_count: int
    stored_bytes: int
    content: VersionContent

    @property
    def published(self) -> bool:
        return self.published_at is not None

    def citation(self, url: str) -> str:
        """A data citation (DataCite's recommended order: creator, year, title, version, publisher, id)."""
        year = (self.published_at or self.created_at).year
        return f"{self.study_name} ({year}). Version {self.number}. fairimage. {url}"


class FieldChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    field: str
    before: Any
    after: Any


class VersionDiff(BaseModel):
    """What changed from version ``before`` to version ``after``."""

    model_config = ConfigDict(frozen=True)

    study_id: str
    before: int
    after: int
    metadata: tuple[FieldChange, ...]
    added: tuple[VersionImage, ...]
    removed: tuple[VersionImage, ...]
    changed: tuple[FieldChange, ...]  # images whose bytes differ under the same id (must never happen)

    @property
    def unchanged(self) -> bool:
        return not (self.metadata or self.added or self.removed or self.changed)


def diff_versions(
    study_id: str, before: int, old: VersionContent, after: int, new: VersionContent
) -> VersionDiff:
    """Metadata fields that differ (nested fields by dotted path), and images added or removed."""
    old_images = {image.id: image for image in old.images}
    new_images = {image.id: image for image in new.images}
    changed = tuple(
        FieldChange(
            field=f"images.{key}", before=old_images[key].manifest_sha256, after=image.manifest_sha256
        )
        for key, image in sorted(new_images.items())
        if key in old_images and old_images[key] != image
    )
    return VersionDiff(
        study_id=study_id,
        before=before,
        after=after,
        metadata=tuple(_field_changes("", old.metadata, new.metadata)),
        added=tuple(image for key, image in sorted(new_images.items()) if key not in old_images),
        removed=tuple(image for key, image in sorted(old_images.items()) if key not in new_images),
        changed=changed,
    )


def _field_changes(prefix: str, old: Any, new: Any) -> list[FieldChange]:
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for key in sorted(old.keys() | new.keys()):
            changes += _field_changes(f"{prefix}{key}.", old.get(key), new.get(key))
        return changes
    if old == new:
        return []
    return [FieldChange(field=prefix.rstrip("."), before=old, after=new)]

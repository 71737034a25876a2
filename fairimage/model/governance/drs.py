"""GA4GH Data Repository Service (DRS 1.5) objects, as the spec's schemas name their fields.

fairimage's DRS objects: each stored OME-Zarr image is a bundle whose contents are its stored keys (blobs:
``zarr.json`` files and chunks or shards), and each study is a bundle of its images. A blob's id is the
image id, ``~`` and its key with ``/`` written ``~`` (DRS ids keep to URL-safe characters).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from pydantic import BaseModel, Field

KEY_SEPARATOR = "~"


class Checksum(BaseModel):
    checksum: str
    type: str = "sha-256"


class AccessURL(BaseModel):
    url: str
    headers: list[str] = Field(default_factory=list)


class AccessMethod(BaseModel):
    type: str = "https"
    access_id: str | None = None
    access_url: AccessURL | None = None


class ContentsObject(BaseModel):
    name: str
    id: str | None = None
    drs_uri: list[str] = Field(default_factory=list)
    contents: list[ContentsObject] | None = None


class DrsObject(BaseModel):
    id: str
    name: str | None = None
    self_uri: str
    size: int
    created_time: datetime
    updated_time: datetime | None = None
    version: str | None = None
    mime_type: str | None = None
    checksums: list[Checksum]
    access_methods: list[AccessMethod] | None = None
    contents: list[ContentsObject] | None = None
    description: str | None = None
    aliases: list[str] | None = None


def blob_id(image_id: str, key: str) -> str:
    return f"{image_id}{KEY_SEPARATOR}{key.replace('/', KEY_SEPARATOR)}"


def split_blob_id(object_id: str) -> tuple[str, str | None]:
    """(image id, stored key) of a blob id; (object id, None) for anything else."""
    head, sep, rest = object_id.partition(KEY_SEPARATOR)
    return (head, rest.replace(KEY_SEPARATOR, "/")) if sep else (object_id, None)


def bundle_checksum(checksums: list[str]) -> str:
    """DRS: a bundle's checksum is the checksum of its contents' checksums, sorted and concatenated."""
    return hashlib.sha256("".join(sorted(checksums)).encode()).hexdigest()


def drs_uri(host: str, object_id: str) -> str:
    """The hostname-based DRS URI of an object served at ``host`` (``drs://host:port/id``)."""
    return f"drs://{host}/{object_id}"

"""The one access check that every byte leaving the server passes through.

All studies are public until access policies arrive (governance issue); the seam is here already so that
every route asks it, and an image the caller may not see is reported exactly like one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fairimage.catalog import queries
from fairimage.model.errors import NotFoundError
from fairimage.model.study import Image
from fairimage.services.images import get_image
from fairimage.services.repository import Repository
from fairimage.storage import ObjectInfo, layout
from fairimage.storage.base import check_key


@dataclass(frozen=True)
class Principal:
    """Who is asking. Anonymous until accounts exist."""

    name: str = "anonymous"


ANONYMOUS = Principal()


def readable_image(repository: Repository, principal: Principal, image_id: str) -> Image:
    """The image if ``principal`` may read it; NotFoundError otherwise (existence is not revealed)."""
    check_image(repository, principal, image_id)
    return get_image(repository, image_id)


def check_image(repository: Repository, principal: Principal, image_id: str) -> None:
    """NotFoundError unless ``principal`` may read the image: the one cheap query every request of a
    viewer (tiles, zarr keys) makes, where the image's metadata itself may come from a cache."""
    with repository.reading() as session:
        if queries.image_study_id(session, image_id) is None:
            raise NotFoundError(f"image {image_id!r} not found")


def cache_control(principal: Principal, image: Image) -> str:
    """How long browsers and shared caches may keep what is derived from ``image`` (rendered tiles).

    Public data may sit in shared caches for an hour; once policies exist, anything else must be
    ``private, no-store`` so that a revoked grant is not served from a cache."""
    return "public, max-age=3600"


@dataclass(frozen=True)
class ImageObject:
    """One stored key of an image, ready to stream: a local file, or (object storage) a store key."""

    info: ObjectInfo
    path: Path | None

    def read(self, repository: Repository, start: int | None = None, end: int | None = None) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive) of the object, from whichever store holds it."""
        return repository.store.read(self.info.key, start, end)


def image_object(repository: Repository, principal: Principal, image_id: str, key: str) -> ImageObject:
    """A key inside an image's OME-Zarr group (``zarr.json``, ``0/c/0/0/1/3`` ...), after the access check.

    Keys that would leave the image (``..``, absolute, empty parts) and folders are NotFoundError, as any
    missing key, so zarr clients see a plain 404.
    """
    check_image(repository, principal, image_id)
    full_key = f"{layout.image_prefix(image_id)}/{check_key(key)}"
    info = repository.store.stat(full_key)
    return ImageObject(info=info, path=repository.store.local_path(full_key))

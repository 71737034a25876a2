"""Byte stores behind one protocol; the rest of fairimage never knows where bytes live."""

from fairimage.storage.base import ObjectInfo, Store
from fairimage.storage.local import LocalStore


def open_store(url: str) -> Store:
    """The store a storage URL names: a local folder (path or file://); object storage comes with fsspec."""
    if url.startswith("file://"):
        url = url[len("file://") :]
    if "://" in url:
        from fairimage.model.errors import InvalidInputError

        raise InvalidInputError(f"storage {url!r}: only local folders are supported so far; give a path")
    return LocalStore(url)


__all__ = ["LocalStore", "ObjectInfo", "Store", "open_store"]

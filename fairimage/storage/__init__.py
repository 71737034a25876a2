"""Byte stores behind one protocol; the rest of fairimage never knows where bytes live."""

from fairimage.storage.base import ImagePrefix, ObjectInfo, Store
from fairimage.storage.local import LocalStore


def open_store(url: str, s3_endpoint: str | None = None) -> Store:
    """The store a storage URL names: a local folder (path or file://) or S3-compatible storage (s3://)."""
    if url.startswith("file://"):
        url = url[len("file://") :]
    if url.startswith("s3://"):
        from fairimage.storage.s3 import S3Store

        return S3Store(url, endpoint_url=s3_endpoint)
    if "://" in url:
        from fairimage.model.errors import InvalidInputError

        raise InvalidInputError(
            f"storage {url!r}: give a local folder or an s3://bucket/prefix URL; "
            "other schemes are not supported"
        )
    return LocalStore(url)


__all__ = ["ImagePrefix", "LocalStore", "ObjectInfo", "Store", "open_store"]

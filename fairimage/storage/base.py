"""The Store protocol (after zarr-python's abc.store): a handful of methods over '/'-separated keys."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from fairimage.model.errors import NotFoundError


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    mtime: float
    etag: str | None = None  # the object store's own validator, where it has one


class Store(Protocol):
    url: str
    local: bool  # a folder on this machine: a read is a page-cache copy, quick enough for an event loop

    def zarr_store(self, prefix: str, read_only: bool = False) -> Any:
        """A zarr-python store rooted at ``prefix``, for writing or reading an OME-Zarr group."""
        ...

    def stat(self, key: str) -> ObjectInfo: ...

    def local_path(self, key: str) -> Path | None:
        """The file holding ``key`` when the store is a local folder (so servers can stream it), else None."""
        ...

    def open(self, key: str) -> BinaryIO: ...

    def read(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        """The bytes of ``key`` from ``start`` to ``end`` (exclusive; None means the edge)."""
        ...

    def write(self, key: str, data: bytes) -> None:
        """Replace an object atomically: readers see the old bytes or the new, never a mix."""
        ...

    def put(self, key: str, data: bytes) -> None:
        """Store an object of a staged, unpublished image: durable on return, no atomic replace needed.
        Safe to call from several threads at once (conversion writes chunks in parallel)."""
        ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object below ``prefix``, recursively, keys relative to the store root."""
        ...

    def list_children(self, prefix: str) -> builtins.list[str]:
        """Names directly below ``prefix`` (objects and folders)."""
        ...

    def delete(self, prefix: str) -> None:
        """Remove an object or everything below a prefix; missing is not an error."""
        ...

    def move(self, source: str, target: str) -> None:
        """Move an object or a prefix; on a local folder one atomic rename."""
        ...


def check_key(key: str) -> str:
    """A key that stays inside the store: relative, '/'-separated, no empty, '.' or '..' parts.

    Raises NotFoundError, so that a crafted URL gets the same 404 as any missing key.
    """
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or "\x00" in key
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise NotFoundError(f"{key!r} is not a valid key")
    return key


@dataclass(frozen=True)
class ImagePrefix:
    """One image's (or plate's) place in a store: the OME-Zarr writer's target, a reader's root. A
    registered image at the root of what was registered has the prefix ""."""

    store: Store
    prefix: str

    def key(self, key: str) -> str:
        """The store key of ``key`` inside the group."""
        return f"{self.prefix}/{key}" if self.prefix else key

    def relative(self, store_key: str) -> str:
        """A store key below the group as a key inside it (what ``key`` made it from)."""
        return store_key[len(self.prefix) + 1 :] if self.prefix else store_key

    def zarr_store(self, path: str = "", read_only: bool = False) -> Any:
        """A zarr-python store rooted at the group (or at ``path`` inside it)."""
        return self.store.zarr_store(self.key(path) if path else self.prefix, read_only=read_only)

    def put(self, key: str, data: bytes) -> None:
        self.store.put(f"{self.prefix}/{key}", data)

"""Registered OME-Zarr roots as read-only Stores: a local folder, a zipped ``.ozx``, an ``http(s)://`` URL or
an ``s3://`` prefix. fairimage catalogues and serves them where they are and never writes to them."""

from __future__ import annotations

import builtins
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from fairimage.model.errors import InvalidInputError, NotFoundError, StorageError
from fairimage.storage.base import ObjectInfo, Store, check_key
from fairimage.storage.local import LocalStore


def open_source(url: str, s3_endpoint: str | None = None) -> Store:
    """The registered root ``url`` names, read-only; InvalidInputError naming it when there is none."""
    if url.startswith(("http://", "https://")):
        return ReadOnlyStore(HttpStore(url))
    if url.startswith("s3://"):
        from fairimage.storage.s3 import S3Store

        return ReadOnlyStore(S3Store(url, endpoint_url=s3_endpoint))
    if "://" in url and not url.startswith("file://"):
        raise InvalidInputError(
            f"{url}: register a local folder, a .ozx file, an http(s):// URL or an s3:// prefix"
        )
    path = Path(url.removeprefix("file://"))
    if path.is_file() and zipfile.is_zipfile(path):
        return ReadOnlyStore(OzxStore(path))
    if not path.is_dir():
        raise InvalidInputError(f"{path}: no such folder or .ozx file; give the path of an OME-Zarr")
    return ReadOnlyStore(LocalStore(path))


def source_url(given: str) -> str:
    """How a registered root is recorded: URLs as given (without a trailing '/'), paths made absolute."""
    if "://" in given and not given.startswith("file://"):
        return given.rstrip("/")
    return str(Path(given.removeprefix("file://")).resolve())


class ReadOnlyStore:
    """Another store's reads, and a refusal for every write: a registered root belongs to its owner."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url
        self.local = inner.local

    def zarr_store(self, prefix: str, read_only: bool = True) -> Any:
        return self.inner.zarr_store(prefix, read_only=True)

    def stat(self, key: str) -> ObjectInfo:
        return self.inner.stat(key)

    def local_path(self, key: str) -> Path | None:
        return self.inner.local_path(key)

    def open(self, key: str) -> BinaryIO:
        return self.inner.open(key)

    def read(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        return self.inner.read(key, start, end)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def list_children(self, prefix: str) -> builtins.list[str]:
        return self.inner.list_children(prefix)

    def _refuse(self, key: str) -> StorageError:
        return StorageError(f"{self.url}: registered data is read-only here; {key} was not changed")

    def write(self, key: str, data: bytes) -> None:
        raise self._refuse(key)

    def put(self, key: str, data: bytes) -> None:
        raise self._refuse(key)

    def delete(self, prefix: str) -> None:
        raise self._refuse(prefix)

    def move(self, source: str, target: str) -> None:
        raise self._refuse(source)


class OzxStore:
    """A zipped OME-Zarr (``.ozx``, RFC-9 of OME-NGFF): members read from the archive as it is."""

    local = False

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self.url = str(self.path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise InvalidInputError(f"{path}: not a readable zip archive ({exc})") from exc
        self._members = {info.filename: info for info in self._zip.infolist() if not info.is_dir()}
        self._root = _zip_root(self._members)
        self._lock = threading.Lock()
        self._zarr: Any = None  # zarr-python's own reader of the archive, opened when first asked

    def _member(self, key: str) -> zipfile.ZipInfo:
        info = self._members.get(self._root + check_key(key))
        if info is None:
            raise NotFoundError(f"{key}: no such object")
        return info

    def zarr_store(self, prefix: str, read_only: bool = True) -> Any:
        from zarr.core.sync import sync
        from zarr.storage import StorePath, ZipStore

        if self._zarr is None:
            self._zarr = sync(ZipStore.open(self.path, mode="r", read_only=True))
        path = f"{self._root}{prefix}".strip("/")
        return StorePath(self._zarr, path) if path else self._zarr

    def stat(self, key: str) -> ObjectInfo:
        info = self._member(key)
        return ObjectInfo(key=key, size=info.file_size, mtime=_zip_time(info))

    def local_path(self, key: str) -> Path | None:
        return None

    def open(self, key: str) -> BinaryIO:
        info = self._member(key)
        return self._zip.open(info)  # type: ignore[return-value]

    def read(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        info = self._member(key)
        with self._lock, self._zip.open(info) as f:
            f.seek(start or 0)
            return f.read() if end is None else f.read(max(0, end - (start or 0)))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self._root + (f"{check_key(prefix)}/" if prefix else "")
        for name in sorted(self._members):
            if name.startswith(base):
                key = name[len(self._root) :]
                yield ObjectInfo(
                    key=key, size=self._members[name].file_size, mtime=_zip_time(self._members[name])
                )

    def list_children(self, prefix: str) -> builtins.list[str]:
        base = self._root + (f"{check_key(prefix)}/" if prefix else "")
        return sorted({name[len(base) :].split("/")[0] for name in self._members if name.startswith(base)})

    def write(self, key: str, data: bytes) -> None:
        raise StorageError(f"{self.path}: a .ozx archive is read-only")

    put = write

    def delete(self, prefix: str) -> None:
        raise StorageError(f"{self.path}: a .ozx archive is read-only")

    def move(self, source: str, target: str) -> None:
        raise StorageError(f"{self.path}: a .ozx archive is read-only")


def _zip_root(members: dict[str, zipfile.ZipInfo]) -> str:
    """The folder inside the archive that holds the root ``zarr.json`` (RFC-9 puts it at the top; archives
    zipped from a parent folder have one more level)."""
    for marker in ("zarr.json", ".zattrs", ".zgroup"):
        if marker in members:
            return ""
    tops = {name.split("/")[0] for name in members}
    if len(tops) == 1:
        top = next(iter(tops)) + "/"
        if any(f"{top}{marker}" in members for marker in ("zarr.json", ".zattrs", ".zgroup")):
            return top
    return ""


def _zip_time(info: zipfile.ZipInfo) -> float:
    import datetime

    return datetime.datetime(*info.date_time, tzinfo=datetime.UTC).timestamp()


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """HTTP errors as fairimage errors: a missing key is NotFoundError, anything else names the server."""
    try:
        yield
    except FileNotFoundError:
        raise NotFoundError(f"{what}: no such object") from None
    except OSError as exc:
        raise StorageError(f"{what}: the server holding it failed: {exc}") from exc
    except Exception as exc:  # aiohttp's client errors are not OSErrors
        if type(exc).__module__.startswith("aiohttp"):
            raise StorageError(f"{what}: cannot reach the server holding it: {exc}") from exc
        raise


class HttpStore:
    """An OME-Zarr served over HTTP(S) (a static file server, S3's public endpoint, another node): read
    with GET and ranged GET through fsspec. HTTP cannot list folders, so nothing here needs to."""

    local = False

    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url.rstrip("/")
        self.fs = fsspec.filesystem("http", simple_links=False, skip_instance_cache=True)

    def _url(self, key: str) -> str:
        return f"{self.url}/{check_key(key)}" if key else self.url

    def zarr_store(self, prefix: str, read_only: bool = True) -> Any:
        from zarr.storage import FsspecStore

        return FsspecStore.from_url(self._url(prefix) if prefix else self.url, read_only=True)

    def stat(self, key: str) -> ObjectInfo:
        with _translated(self._url(key)):
            info = self.fs.info(self._url(key))
        size = info.get("size")
        if size is None:
            size = len(self.read(key))
        return ObjectInfo(key=key, size=int(size), mtime=0.0, etag=str(info.get("ETag") or "") or None)

    def local_path(self, key: str) -> Path | None:
        return None

    def open(self, key: str) -> BinaryIO:
        import io

        return io.BytesIO(self.read(key))

    def read(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        """The bytes of ``key``, by a ranged GET where a range is asked for; a server that ignores Range
        (many static servers do) answers with the whole object, which is then cut here."""
        url = self._url(key)
        with _translated(url):
            if end is None:
                data: bytes = self.fs.cat_file(url)
                return data[start or 0 :]
            data = self.fs.cat_file(url, start=start, end=end)
        wanted = max(0, end - (start or 0))
        return data[start or 0 : end] if len(data) > wanted else data

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        raise StorageError(
            f"{self._url(prefix)}: an HTTP server cannot be listed; its keys come from metadata"
        )

    def list_children(self, prefix: str) -> builtins.list[str]:
        raise StorageError(
            f"{self._url(prefix)}: an HTTP server cannot be listed; its keys come from metadata"
        )

    def write(self, key: str, data: bytes) -> None:
        raise StorageError(f"{self.url}: read-only")

    put = write

    def delete(self, prefix: str) -> None:
        raise StorageError(f"{self.url}: read-only")

    def move(self, source: str, target: str) -> None:
        raise StorageError(f"{self.url}: read-only")

"""S3-compatible object storage as a Store, through fsspec/s3fs.

Credentials come from where AWS tools look for them (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE,
~/.aws); fairimage never stores them. The endpoint of a non-AWS service (MinIO, Ceph, moto) is a setting.
S3 has no rename: ``move`` copies on the server and then deletes, which is why only staged, unpublished
images are ever moved; the catalog commit is what publishes them.

Transient failures (500, 502, 503, 504, throttling such as 503 SlowDown, dropped connections) are retried by
botocore's "standard" retry mode, with exponential backoff and jitter: up to 1 s before the second attempt,
up to 2 s before the third. A request still failing after ``ATTEMPTS`` becomes one StorageError naming the
object.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import s3fs
from zarr.abc.store import ByteRequest
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import FsspecStore

from fairimage.model.errors import NotFoundError, StorageError
from fairimage.storage.base import ObjectInfo, check_key

ATTEMPTS = 3  # per request, the first included: a failing request gives up after at most 3 s of waiting


class _S3FileSystem(s3fs.S3FileSystem):
    """s3fs with its own retry loop off: botocore retries (``ATTEMPTS``), and the two loops would multiply."""

    retries = 1


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """botocore/s3fs errors as fairimage errors that name the object and say what to check."""
    try:
        yield
    except FileNotFoundError:
        raise NotFoundError(f"{what}: no such object") from None
    except PermissionError as exc:
        raise StorageError(f"{what}: access denied by the object store; check the AWS credentials") from exc
    except OSError as exc:
        raise StorageError(f"{what}: {_describe(exc)}") from exc


def _describe(exc: OSError) -> str:
    """What went wrong in the object store's words; a transient failure botocore retried in vain says so."""
    response = getattr(exc.__cause__, "response", None) or {}
    answered = response.get("ResponseMetadata", {})
    if not (answered.get("MaxAttemptsReached") or answered.get("RetryQuotaReached")):
        return f"object store error: {exc}"
    status, error = str(answered.get("HTTPStatusCode", "")), response.get("Error", {})
    code = error.get("Code") or ""
    why = f"{status} {error.get('Message', '')}" if code == status else f"{status} {code}"  # HEAD: no body
    attempts = answered.get("RetryAttempts", 0) + 1
    tried = "once" if attempts == 1 else f"{attempts} times"
    return f"the object store kept failing ({why.strip()}), tried {tried}; try again later"


class _ZarrStore(FsspecStore):
    """zarr-python's fsspec store, failing as S3Store does: one StorageError naming the object."""

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        with _translated(self._url(key)):
            return await super().get(key, prototype, byte_range)

    async def set(self, key: str, value: Buffer, byte_range: tuple[int, int] | None = None) -> None:
        with _translated(self._url(key)):
            await super().set(key, value, byte_range)

    async def exists(self, key: str) -> bool:
        with _translated(self._url(key)):
            return await super().exists(key)

    async def delete_dir(self, prefix: str) -> None:
        with _translated(self._url(prefix)):
            await super().delete_dir(prefix)

    def _url(self, key: str) -> str:
        return f"s3://{self.path}/{key}"


class S3Store:
    local = False

    def __init__(self, url: str, endpoint_url: str | None = None) -> None:
        bucket_and_prefix = url.removeprefix("s3://").strip("/")
        if not bucket_and_prefix:
            raise StorageError(f"storage {url!r}: name a bucket, e.g. s3://bucket/prefix")
        self.url = f"s3://{bucket_and_prefix}"
        self.root = bucket_and_prefix
        retries = {"mode": "standard", "total_max_attempts": ATTEMPTS}
        self._options: dict[str, Any] = {"config_kwargs": {"retries": retries}}
        if endpoint_url:
            self._options["endpoint_url"] = endpoint_url
        self.fs = _S3FileSystem(**self._options)
        bucket = bucket_and_prefix.split("/")[0]
        where = f" at {endpoint_url}" if endpoint_url else ""
        try:
            self.fs.ls(bucket, refresh=True)
        except FileNotFoundError:
            raise StorageError(
                f"storage {url}: bucket {bucket!r} does not exist{where}; create it first"
            ) from None
        except PermissionError:
            raise StorageError(
                f"storage {url}: access to bucket {bucket!r} denied{where}; check the AWS credentials"
            ) from None
        except OSError as exc:
            raise StorageError(f"storage {url}{where}: {_describe(exc)}") from None
        except Exception as exc:  # botocore's connection and credential errors are not OSErrors
            raise StorageError(f"storage {url}: cannot reach the object store{where}: {exc}") from None

    def _path(self, key: str) -> str:
        return f"{self.root}/{check_key(key)}"

    def zarr_store(self, prefix: str, read_only: bool = False) -> Any:
        return _ZarrStore(
            _S3FileSystem(asynchronous=True, **self._options),
            path=self._path(prefix) if prefix else self.root,
            read_only=read_only,
        )

    def stat(self, key: str) -> ObjectInfo:
        with _translated(key):
            info = self.fs.info(self._path(key))
        if info.get("type") != "file":
            raise NotFoundError(f"{key}: no such object")
        return _object_info(key, info)

    def local_path(self, key: str) -> Path | None:
        return None

    def open(self, key: str) -> BinaryIO:
        with _translated(key):
            return self.fs.open(self._path(key), "rb")  # type: ignore[no-any-return]

    def read(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        with _translated(key):
            return self.fs.cat_file(self._path(key), start=start, end=end)  # type: ignore[no-any-return]

    def write(self, key: str, data: bytes) -> None:
        with _translated(key):  # one PUT: S3 replaces an object atomically
            self.fs.pipe_file(self._path(key), data)

    def put(self, key: str, data: bytes) -> None:
        self.write(key, data)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        with _translated(prefix):
            found = self.fs.find(self._path(prefix) if prefix else self.root, detail=True)
        for path, info in sorted(found.items()):
            if info.get("type") == "file":
                yield _object_info(path[len(self.root) + 1 :], info)

    def list_children(self, prefix: str) -> builtins.list[str]:
        with _translated(prefix):
            try:
                entries = self.fs.ls(self._path(prefix), detail=False, refresh=True)
            except FileNotFoundError:
                return []
        return sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in entries)

    def delete(self, prefix: str) -> None:
        path = self._path(prefix)
        with _translated(prefix):
            keys = list(self.fs.find(path))
            if keys:
                self.fs.rm(keys)
        self.fs.invalidate_cache(path)

    def move(self, source: str, target: str) -> None:
        """Copy every object on the server, then delete the originals (S3 has no rename)."""
        source_path, target_path = self._path(source), self._path(target)
        with _translated(source):
            keys = list(self.fs.find(source_path))
            if not keys:
                raise StorageError(f"cannot move {source} to {target}: nothing is stored there")
            for key in keys:
                self.fs.copy(key, target_path + key[len(source_path) :])
            self.fs.rm(keys)
        self.fs.invalidate_cache(source_path)
        self.fs.invalidate_cache(target_path)


def _object_info(key: str, info: dict[str, Any]) -> ObjectInfo:
    modified = info.get("LastModified")
    mtime = modified.timestamp() if isinstance(modified, datetime) else 0.0
    etag = str(info.get("ETag") or "").strip('"') or None
    return ObjectInfo(key=key, size=int(info["size"]), mtime=mtime, etag=etag)

"""A local folder as a Store."""

from __future__ import annotations

import builtins
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from zarr.core.buffer import Buffer
from zarr.storage import LocalStore as ZarrLocalStore

from fairimage.model.errors import NotFoundError, StorageError
from fairimage.storage.base import ObjectInfo, check_key


@contextmanager
def _disk_space(root: Path) -> Iterator[None]:
    """A full disk (or quota) as one StorageError that says what to do; other OSErrors pass unchanged."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise StorageError(
            f"no space left on the repository's disk ({root}: {exc.strerror}); "
            "free space or use another storage"
        ) from exc


class _ZarrStore(ZarrLocalStore):
    """zarr-python's local store, reporting a full disk as LocalStore does."""

    async def set(self, key: str, value: Buffer) -> None:
        with _disk_space(self.root):
            await super().set(key, value)


class LocalStore:
    local = True

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self._folders: dict[str, bool] = {}  # folder key -> whether it resolves inside the store
        self.url = str(self.root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        """The file of ``key``; NotFoundError where a symlink would lead out of the store. The folders a
        key passes through are resolved once and remembered (every chunk request asks; the store's folders
        are its own and do not turn into links), the last part is checked every time."""
        key = check_key(key)
        path = self.root / key
        folder, _, _ = key.rpartition("/")
        inside = self._folders.get(folder)
        if inside is None:
            inside = (self.root / folder).resolve().is_relative_to(self.root)
            if len(self._folders) >= 100_000:
                self._folders.clear()
            self._folders[folder] = inside
        if not inside or (os.path.islink(path) and not path.resolve().is_relative_to(self.root)):
            raise NotFoundError(f"{key!r} is not in the store")
        return path

    def zarr_store(self, prefix: str, read_only: bool = False) -> Any:
        return _ZarrStore(self._path(prefix) if prefix else self.root, read_only=read_only)

    def stat(self, key: str) -> ObjectInfo:
        try:
            result = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"{key}: no such object") from None
        if not stat.S_ISREG(result.st_mode):
            raise NotFoundError(f"{key}: no such object")
        return ObjectInfo(key=key, size=result.st_size, mtime=result.st_mtime)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"{key}: no such object") from None

    def read(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        with self.open(key) as f:
            f.seek(start or 0)
            return f.read() if end is None else f.read(max(0, end - (start or 0)))

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        temporary = path.with_name(f".{path.name}.tmp")
        with _disk_space(self.root):
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with temporary.open("wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            except BaseException:
                temporary.unlink(missing_ok=True)  # a half-written copy would only take more space
                raise
            temporary.replace(path)

    def put(self, key: str, data: bytes) -> None:
        # Hot path (one call per chunk): the key is checked, but not resolved for symlinks as _path does;
        # staged images live in folders fairimage itself creates.
        path = os.path.join(self.root, check_key(key))
        with _disk_space(self.root):  # a partly written chunk stays staged; the run's cleanup removes it
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fdatasync(fd)  # durable before the catalog can publish it
            finally:
                os.close(fd)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            yield self.stat(prefix)
            return
        for directory, _, files in os.walk(base):
            for name in sorted(files):
                path = Path(directory) / name
                result = path.stat()
                yield ObjectInfo(
                    key=path.relative_to(self.root).as_posix(), size=result.st_size, mtime=result.st_mtime
                )

    def list_children(self, prefix: str) -> builtins.list[str]:
        base = self._path(prefix)
        return sorted(p.name for p in base.iterdir()) if base.is_dir() else []

    def delete(self, prefix: str) -> None:
        path = self._path(prefix)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def move(self, source: str, target: str) -> None:
        destination = self._path(target)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(self._path(source), destination)
        except OSError as exc:
            raise StorageError(f"cannot move {source} to {target}: {exc.strerror}") from exc

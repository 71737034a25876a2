"""Secret key files kept beside the repository (never in the catalog): made once, readable by their owner
only, and never overwritten by a second process racing the first."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from fairimage.model.errors import StorageError


def read_or_make(path: Path, make: Callable[[], bytes], what: str) -> bytes:
    """The bytes of the key file at ``path``, written from ``make()`` (mode 0600) the first time."""
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as key_file:
                key_file.write(make())
        return path.read_bytes()
    except FileExistsError:
        return path.read_bytes()  # another process made it first
    except OSError as exc:
        raise StorageError(f"{path}: cannot read or make the {what} ({exc.strerror})") from exc

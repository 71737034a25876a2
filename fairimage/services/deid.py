"""De-identification as ingest uses it: the repository's key (kept in a file outside the catalog) and the
options the repository chose, turned into the step that de-identifies each DICOM header before anything is
read from it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from functools import partial

from pydicom.dataset import Dataset

from fairimage import ontology
from fairimage.formats.deid import Choice, Report, deidentify
from fairimage.model.deid import Option
from fairimage.model.errors import InvalidInputError, StorageError
from fairimage.settings import Settings

KEY_BYTES = 32


def repository_key(settings: Settings) -> bytes:
    """The repository's de-identification key, made (readable by its owner only) the first time."""
    path = settings.deid_key_path
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as key_file:
                key_file.write(secrets.token_bytes(KEY_BYTES))
        key = path.read_bytes()
    except FileExistsError:
        key = path.read_bytes()  # another process made it first
    except OSError as exc:
        raise StorageError(f"{path}: cannot read or make the de-identification key ({exc.strerror})") from exc
    if len(key) < KEY_BYTES:
        raise StorageError(f"{path}: the de-identification key is shorter than {KEY_BYTES} bytes; restore it")
    return key


def choice(settings: Settings) -> Choice:
    """The options and safe private attributes the repository's settings name."""
    by_name = {option.name.lower(): option for option in Option}
    options = set()
    for name in settings.deid_options:
        option = by_name.get(name.strip().lower())
        if option is None:
            raise InvalidInputError(
                f"setting deid_options: {name!r} is not an option; use {', '.join(by_name)}"
            )
        options.add(option)
    safe = set()
    for text in settings.deid_safe_private:
        creator, _, element = text.rpartition(":")
        try:
            safe.add((creator.strip(), int(element, 0) & 0xFF))
        except ValueError:
            raise InvalidInputError(
                f"setting deid_safe_private: {text!r}: write PRIVATE CREATOR:ELEMENT, e.g. 'SIEMENS MED:0x10'"
            ) from None
    return Choice(frozenset(options), frozenset(safe))


def _apply(key: bytes, chosen: Choice, reports: list[Report], header: Dataset) -> None:
    reports.append(deidentify(header, ontology.dicom_profile(), key, chosen))


def header_step(settings: Settings, reports: list[Report] | None = None) -> Callable[[Dataset], None]:
    """What ingest does to each DICOM header before reading it: de-identify it in place (reports, if
    given, receive what was done)."""
    return partial(_apply, repository_key(settings), choice(settings), reports if reports is not None else [])

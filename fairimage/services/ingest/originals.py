"""Originals kept but never shared: DICOM files as they came, identified, stored encrypted with Crypt4GH
(GA4GH) for the repository's key pair, which lives in files outside the catalog. Re-encryption for an
approved recipient's public key is how one leaves the node; it is never decrypted here.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from crypt4gh import lib
from crypt4gh.keys import c4gh, get_private_key, get_public_key

from fairimage.catalog.tables import OriginalFileRow
from fairimage.model.errors import InvalidInputError, NotFoundError, StorageError
from fairimage.model.governance.policy import Principal
from fairimage.services.governance import access, audit
from fairimage.services.repository import Repository
from fairimage.settings import Settings
from fairimage.storage import layout

METHOD = 0  # Crypt4GH's X25519 + ChaCha20-Poly1305


@dataclass(frozen=True)
class KeyPair:
    secret: bytes
    public: bytes


def repository_keys(settings: Settings) -> KeyPair:
    """The repository's Crypt4GH key pair, made the first time (the secret key readable by its owner only,
    protected by FAIRIMAGE_CRYPT4GH_PASSPHRASE when that is set)."""
    secret_path, public_path = settings.crypt4gh_keys
    passphrase = settings.crypt4gh_passphrase
    try:
        if not secret_path.exists():
            secret_path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.redirect_stderr(io.StringIO()):  # its warning for a key without a passphrase
                c4gh.generate(
                    str(secret_path),
                    str(public_path),
                    passphrase.encode() if passphrase else None,
                    b"fairimage",
                )
        secret = get_private_key(str(secret_path), lambda: passphrase or "")
        public = get_public_key(str(public_path))
    except OSError as exc:
        raise StorageError(f"{secret_path}: cannot read or make the Crypt4GH keys ({exc.strerror})") from exc
    return KeyPair(secret, public)


def keep(repository: Repository, series_sha256: str, paths: Sequence[Path]) -> list[str]:
    """Encrypt each original for the repository and store it; the store keys, in the files' order."""
    keys = repository_keys(repository.settings)
    stored = []
    for index, path in enumerate(paths):
        sealed = io.BytesIO()
        with path.open("rb") as plain:
            lib.encrypt([(METHOD, keys.secret, keys.public)], plain, sealed)
        key = layout.original_key(series_sha256, index)
        repository.store.write(key, sealed.getvalue())
        stored.append(key)
    return stored


def export(
    repository: Repository, principal: Principal, file_id: str, recipient: Path, folder: Path
) -> list[Path]:
    """The kept originals of one ingested file (a DICOM series), re-encrypted for ``recipient``'s public
    key into ``folder``; only whoever governs the study (its owner, a steward) may, and it is audited."""
    try:
        recipient_key = get_public_key(str(recipient))
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{recipient}: not a Crypt4GH public key ({exc})") from None
    keys = repository_keys(repository.settings)
    with repository.reading() as session:
        row = session.get(OriginalFileRow, file_id)
        if row is None:
            raise NotFoundError(f"file {file_id!r} not found")
        access.governed_study(session, principal, row.study_id)
        kept = list(row.kept or [])
        study_id = row.study_id
    if not kept:
        raise NotFoundError(f"file {file_id!r}: no original was kept (set keep_dicom_originals = true)")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index, key in enumerate(kept):
        target = folder / f"{file_id}-{index:05d}.c4gh"
        with open(target, "wb") as out:
            lib.reencrypt(
                [(METHOD, keys.secret, None)],
                [(METHOD, keys.secret, recipient_key)],
                io.BytesIO(repository.store.read(key)),
                out,
            )
        os.chmod(target, 0o600)
        written.append(target)
    with repository.transaction() as session:
        audit.record(
            session,
            principal.name,
            "original.export",
            f"study:{study_id}",
            origin=principal.origin,
            file=file_id,
            files=len(written),
            recipient=recipient_key.hex(),
        )
    return written

"""The one access check that every byte leaving the server passes through.

Whether a caller may read a study is decided by ``model.policy.may_read`` (public, embargoed until a date,
restricted or private; owner, grants, roles); listings and counts use its SQL twin,
``catalog.queries.readable_studies``, so they never show what a single read would refuse. Whatever a caller
may not read is reported exactly like what does not exist (NotFoundError, 404), so existence is not
revealed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from fairimage.catalog import queries
from fairimage.catalog.tables import StudyRow
from fairimage.model.errors import ForbiddenError, NotFoundError
from fairimage.model.governance.policy import Principal, Role, Scope, StudyPolicy, may_discover, may_read
from fairimage.services.governance import audit
from fairimage.services.repository import Repository
from fairimage.storage import ObjectInfo, layout
from fairimage.storage.base import check_key


def now() -> datetime:
    return datetime.now(UTC)


def visible(principal: Principal) -> ColumnElement[bool]:
    """The studies ``principal`` may read, as a condition for listing queries."""
    return queries.readable_studies(principal, now())


def discoverable(principal: Principal) -> ColumnElement[bool]:
    """The studies whose records ``principal`` may see: readable ones and every restricted one."""
    return queries.discoverable_studies(principal, now())


def check_image(repository: Repository, principal: Principal, image_id: str) -> StudyPolicy:
    """The policy of the image's study if ``principal`` may read it; NotFoundError otherwise. One indexed
    query: every tile and zarr key request makes it."""
    _, policy = _check_read(
        repository,
        principal,
        lambda session: queries.image_study(session, image_id),
        f"image {image_id!r}",
        lambda study: f"image:{image_id}",
    )
    return policy


def check_study(repository: Repository, principal: Principal, key: str) -> str:
    """The id of the study (by id or name) if ``principal`` may read it; NotFoundError otherwise."""
    study_id, _ = _check_read(
        repository,
        principal,
        lambda session: queries.study_by_id_or_name(session, key),
        f"study {key!r}",
        lambda study: f"study:{study.id}",
    )
    return study_id


def _check_read(
    repository: Repository,
    principal: Principal,
    find: Callable[[Session], StudyRow | None],
    what: str,
    target: Callable[[StudyRow], str],
) -> tuple[str, StudyPolicy]:
    """The study ``find`` names and its policy, if ``principal`` may read it; reads of protected data
    are audited (as ``target``), refusals too. ``what`` ("image 'img-…'") names it in the 404."""
    with repository.reading() as session:
        study = find(session)
        if study is None:
            raise NotFoundError(f"{what} not found")
        policy = queries.study_policy(study)
        allowed = may_read(principal, study.id, policy, now())
    if not policy.is_public(now()):
        _record_read(repository, principal, target(study), study.id, allowed)
    if not allowed:
        raise NotFoundError(f"{what} not found")
    return study.id, policy


def _record_read(
    repository: Repository, principal: Principal, target: str, study_id: str, allowed: bool
) -> None:
    """Audit a read of protected data, allowed or refused: once per caller, target and decision in the
    read log's window (a viewer's thousand chunk requests make one entry)."""
    decision = "allowed" if allowed else "denied"
    if not repository.read_log.is_new(f"{principal.name}@{principal.origin}", target, decision):
        return
    with repository.transaction() as session:
        audit.record(session, principal.name, "data.read", target, decision, principal.origin, study=study_id)


def find_study(repository: Repository, principal: Principal, key: str) -> str:
    """The id of the study (by id or name) if ``principal`` may see its record (``may_discover``): a
    restricted study can be found and requested; its images still need ``check_study``."""
    with repository.reading() as session:
        study = queries.study_by_id_or_name(session, key)
        if study is None or not may_discover(principal, study.id, queries.study_policy(study), now()):
            raise NotFoundError(f"study {key!r} not found")
        return study.id


def require(principal: Principal, scope: Scope, roles: tuple[Role, ...] = ()) -> None:
    """ForbiddenError unless the caller's token allows ``scope`` and (when given) their role is one of
    ``roles``. For actions, not reads: a read someone may not do is a 404, never a 403."""
    if principal.is_anonymous:
        raise ForbiddenError("sign in, or send a bearer token, to do this")
    if not principal.scope.includes(scope):
        raise ForbiddenError(f"this token's scope is {principal.scope}; this needs {scope}")
    if roles and principal.role not in roles:
        allowed = ", ".join(role.value for role in roles)
        raise ForbiddenError(f"this needs the role {allowed}; you are {principal.role}")


def governed_study(session: Session, principal: Principal, key: str) -> StudyRow:
    """The study if ``principal`` governs it (owner, steward, admin) with a write token; a study they may
    not even see is NotFoundError, one they may see but not govern ForbiddenError."""
    require(principal, Scope.WRITE)
    row = queries.study_by_id_or_name(session, key)
    if row is None or not may_discover_study(principal, row):
        raise NotFoundError(f"study {key!r} not found")
    if not (principal.sees_everything or (row.owner_id is not None and row.owner_id == principal.user_id)):
        raise ForbiddenError(f"study {row.name!r}: only its owner, a data steward or an admin may change it")
    return row


def cache_control(policy: StudyPolicy) -> str:
    """How long caches may keep what is derived from a study's images (rendered tiles). Only public data
    may sit in shared caches; anything else is ``private, no-store`` so a revoked grant is not served
    from a cache."""
    return "public, max-age=3600" if policy.is_public(now()) else "private, no-store"


def may_read_study(principal: Principal, study: StudyRow) -> bool:
    return _readable(principal, study)


def may_discover_study(principal: Principal, study: StudyRow) -> bool:
    return may_discover(principal, study.id, queries.study_policy(study), now())


def _readable(principal: Principal, study: StudyRow) -> bool:
    return may_read(principal, study.id, queries.study_policy(study), now())


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


def check_plate(repository: Repository, principal: Principal, plate_id: str) -> StudyPolicy:
    """The policy of the plate's study if ``principal`` may read it; NotFoundError otherwise."""
    _, policy = _check_read(
        repository,
        principal,
        lambda session: queries.plate_study(session, plate_id),
        f"plate {plate_id!r}",
        lambda study: f"plate:{plate_id}",
    )
    return policy


def plate_object(repository: Repository, principal: Principal, plate_id: str, key: str) -> ImageObject:
    """A key of a plate's OME-Zarr group after the access check: its own documents (the plate, row and well
    groups), or, below ``row/column/field/``, a key of that field's image."""
    check_plate(repository, principal, plate_id)
    key = check_key(key)
    parts = key.split("/")
    if len(parts) > 3:
        image_id = None
        if parts[2].isdigit():
            with repository.reading() as session:
                image_id = queries.plate_field_image(session, plate_id, parts[0], parts[1], int(parts[2]))
        if image_id is None:
            raise NotFoundError(f"plate {plate_id!r} has no key {key!r}")
        full_key = f"{layout.image_prefix(image_id)}/{'/'.join(parts[3:])}"
    else:
        full_key = f"{layout.plate_prefix(plate_id)}/{key}"
    info = repository.store.stat(full_key)
    return ImageObject(info=info, path=repository.store.local_path(full_key))

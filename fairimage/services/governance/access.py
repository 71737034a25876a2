"""The one access check that every byte leaving the server passes through.

Whether a caller may read a study is decided by ``model.policy.may_read`` (public, embargoed until a date,
restricted or private; owner, grants, roles); listings and counts use its SQL twin,
``catalog.queries.readable_studies``, so they never show what a single read would refuse. Whatever a caller
may not read is reported exactly like what does not exist (NotFoundError, 404), so existence is not
revealed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import ColumnElement, and_
from sqlalchemy.orm import Session

from fairimage.catalog import queries
from fairimage.catalog.tables import ImageRow, StudyRow
from fairimage.model.errors import ConflictError, ForbiddenError, NotFoundError
from fairimage.model.governance.policy import Principal, Role, Scope, StudyPolicy, may_discover, may_read
from fairimage.model.plates.layout import PLATE_ID_PREFIX
from fairimage.services.governance import audit
from fairimage.services.repository import Repository
from fairimage.storage import ImagePrefix, ObjectInfo, Store, layout
from fairimage.storage.base import check_key


def now() -> datetime:
    return datetime.now(UTC)


def visible(principal: Principal) -> ColumnElement[bool]:
    """The studies ``principal`` may read, as a condition for listing queries."""
    return queries.readable_studies(principal, now())


def visible_images(principal: Principal) -> ColumnElement[bool]:
    """The images ``principal`` may read, as a condition for listing queries that join images to their
    studies: ``visible`` less what a study gained after the version a share link opens."""
    return queries.readable_images(principal, now())


def searchable(principal: Principal) -> ColumnElement[bool]:
    """The studies whose images search finds and counts for ``principal``: those it may read, less the study
    a share link for one version opens (its holder finds that version's images on its page; the search
    index counts groups of images, which a version cannot split)."""
    scope = principal.version
    readable = visible(principal)
    return readable if scope is None else and_(readable, StudyRow.id != scope.study_id)


def shown_images(principal: Principal, images: Sequence[ImageRow]) -> list[ImageRow]:
    """The images of a study the caller may read that are theirs to see (a share link for one version
    shows only that version's)."""
    return [image for image in images if principal.may_see_image(image.study_id, image.id)]


def discoverable(principal: Principal) -> ColumnElement[bool]:
    """The studies whose records ``principal`` may see: readable ones and every restricted one."""
    return queries.discoverable_studies(principal, now())


def check_image(repository: Repository, principal: Principal, image_id: str) -> StudyPolicy:
    """The policy of the image's study if ``principal`` may read it; NotFoundError otherwise. Every tile
    and zarr key request makes it, so the image's study and policy come from ``repository.recent`` (one
    indexed query a second, at most)."""
    study_id, policy = _check_read(
        repository,
        principal,
        ("image", image_id),
        lambda session: queries.image_study(session, image_id),
        f"image {image_id!r}",
        f"image:{image_id}",
    )
    if not principal.may_see_image(study_id, image_id):
        raise NotFoundError(f"image {image_id!r} not found")
    return policy


def check_study(repository: Repository, principal: Principal, key: str) -> str:
    """The id of the study (by id or name) if ``principal`` may read it; NotFoundError otherwise."""
    study_id, _ = _check_read(
        repository,
        principal,
        ("study", key),
        lambda session: queries.study_by_id_or_name(session, key),
        f"study {key!r}",
        None,
    )
    return study_id


def _check_read(
    repository: Repository,
    principal: Principal,
    lookup: tuple[str, str],
    find: Callable[[Session], StudyRow | None],
    what: str,
    target: str | None,
) -> tuple[str, StudyPolicy]:
    """The study ``find`` names and its policy, if ``principal`` may read it; reads of protected data
    are audited (as ``target``, else the study), refusals too. ``what`` ("image 'img-…'") names it in the
    404. The study and its policy are a recent lookup; the decision is made afresh every time."""

    def load() -> tuple[str, StudyPolicy] | None:
        with repository.reading() as session:
            study = find(session)
            return None if study is None else (study.id, queries.study_policy(study))

    found = repository.recent.get(lookup, load)
    if found is None:
        raise NotFoundError(f"{what} not found")
    study_id, policy = found
    moment = now()
    allowed = may_read(principal, study_id, policy, moment)
    if not policy.is_public(moment):
        _record_read(repository, principal, target or f"study:{study_id}", study_id, allowed)
    if not allowed:
        raise NotFoundError(f"{what} not found")
    return study_id, policy


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
    if row.mirror_of is not None:
        raise ConflictError(
            f"study {row.name!r} is a mirror of {row.mirror_of}: change it there, at its origin"
        )
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
    """One stored key of an image, ready to stream: a local file, or (object storage, HTTP, a .ozx) a key
    of the store that holds it, or a document made from the catalog (``body``)."""

    info: ObjectInfo
    path: Path | None
    store: Store
    body: bytes | None = None

    def read(self, start: int | None = None, end: int | None = None) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive) of the object, from whichever store holds it."""
        if self.body is not None:
            return self.body[start or 0 : end]
        if self.path is None:
            return self.store.read(self.info.key, start, end)
        with open(self.path, "rb") as f:  # the store checked the path when it made this object
            f.seek(start or 0)
            return f.read() if end is None else f.read(max(0, end - (start or 0)))


def _object(root: ImagePrefix, key: str) -> ImageObject:
    full_key = root.key(key)
    info = root.store.stat(full_key)
    return ImageObject(info=info, path=root.store.local_path(full_key), store=root.store)


def image_object(repository: Repository, principal: Principal, image_id: str, key: str) -> ImageObject:
    """A key inside an image's OME-Zarr group (``zarr.json``, ``0/c/0/0/1/3`` ...), after the access check;
    from the repository's store, or from where the image was registered.

    Keys that would leave the image (``..``, absolute, empty parts) and folders are NotFoundError, as any
    missing key, so zarr clients see a plain 404.
    """
    check_image(repository, principal, image_id)
    key = check_key(key)
    if key.startswith(LABELS_GROUP + "/"):
        return _label_object(repository, image_id, key.removeprefix(LABELS_GROUP + "/"))
    return _object(repository.image_root(image_id), key)


LABELS_GROUP = "labels"


def _label_object(repository: Repository, image_id: str, key: str) -> ImageObject:
    """A key below an image's ``labels/`` group: the group's own document, made from the catalog (the names
    of its labels), or a key of one label, stored under the label's id."""
    name, _, rest = key.partition("/")
    if not rest:
        if name != "zarr.json":
            raise NotFoundError(f"image {image_id!r} has no key labels/{key!r}")

        def names() -> list[str]:
            with repository.reading() as session:
                return queries.label_names(session, image_id)

        listed = repository.recent.get(("labels", image_id), names)
        if not listed:
            raise NotFoundError(f"image {image_id!r} has no labels")
        attributes = {"ome": {"version": "0.5", "labels": listed}}
        body = json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attributes}).encode()
        etag = hashlib.sha256(body).hexdigest()[:32]
        info = ObjectInfo(key=f"{LABELS_GROUP}/zarr.json", size=len(body), mtime=0.0, etag=etag)
        return ImageObject(info=info, path=None, store=repository.store, body=body)

    def label() -> str | None:
        with repository.reading() as session:
            return queries.label_id(session, image_id, name)

    label_id = repository.recent.get(("label", image_id, name), label)
    if label_id is None:
        raise NotFoundError(f"image {image_id!r} has no label {name!r}")
    return _object(ImagePrefix(repository.store, layout.label_prefix(label_id)), rest)


def answers_from_memory(repository: Repository, zarr_id: str, key: str) -> bool:
    """Whether ``image_object`` / ``plate_object`` can answer without waiting on anything slow: the catalog
    lookups they need are recent and the store is a local folder. An event loop may then call them inline
    (a thread hop per chunk costs more than the chunk); otherwise they belong in a worker thread."""
    recent = repository.recent
    if key.startswith(LABELS_GROUP + "/"):
        return False  # labels are looked up by name: not on the hot path
    if not zarr_id.startswith(PLATE_ID_PREFIX):
        return (
            recent.knows(("image", zarr_id))
            and recent.knows(("image place", zarr_id))
            and repository.image_root(zarr_id).store.local
        )
    if not (recent.knows(("plate", zarr_id)) and recent.knows(("plate place", zarr_id))):
        return False
    parts = key.split("/")
    if len(parts) > 3 and parts[2].isdigit():  # a key of one of the plate's fields
        field = ("plate field", zarr_id, parts[0], parts[1], int(parts[2]))
        if not recent.knows(field):
            return False
        image_id = recent.peek(field)
        if image_id is not None and not recent.knows(("image place", image_id)):
            return False
    return repository.plate_root(zarr_id).store.local


def zarr_object(repository: Repository, principal: Principal, zarr_id: str, key: str) -> ImageObject:
    """A key of an image's or a plate's OME-Zarr group (``plate-…`` ids are plates), after the access
    check."""
    if zarr_id.startswith(PLATE_ID_PREFIX):
        return plate_object(repository, principal, zarr_id, key)
    return image_object(repository, principal, zarr_id, key)


def check_plate(repository: Repository, principal: Principal, plate_id: str) -> StudyPolicy:
    """The policy of the plate's study if ``principal`` may read it; NotFoundError otherwise."""
    study_id, policy = _check_read(
        repository,
        principal,
        ("plate", plate_id),
        lambda session: queries.plate_study(session, plate_id),
        f"plate {plate_id!r}",
        f"plate:{plate_id}",
    )
    if not principal.may_see_plate(study_id, plate_id):
        raise NotFoundError(f"plate {plate_id!r} not found")
    return policy


def plate_object(repository: Repository, principal: Principal, plate_id: str, key: str) -> ImageObject:
    """A key of a plate's OME-Zarr group after the access check: its own documents (the plate, row and well
    groups), or, below ``row/column/field/``, a key of that field's image. A registered plate is served as
    it is where it was registered."""
    check_plate(repository, principal, plate_id)
    key = check_key(key)
    root = repository.plate_root(plate_id)
    if root.store is not repository.store:
        return _object(root, key)
    parts = key.split("/")
    if len(parts) <= 3:
        return _object(root, key)
    image_id = None
    if parts[2].isdigit():
        row, column, field = parts[0], parts[1], int(parts[2])

        def load() -> str | None:
            with repository.reading() as session:
                return queries.plate_field_image(session, plate_id, row, column, field)

        image_id = repository.recent.get(("plate field", plate_id, row, column, field), load)
    if image_id is None:
        raise NotFoundError(f"plate {plate_id!r} has no key {key!r}")
    if parts[3] == LABELS_GROUP and len(parts) > 4:
        return _label_object(repository, image_id, "/".join(parts[4:]))
    return _object(repository.image_root(image_id), "/".join(parts[3:]))

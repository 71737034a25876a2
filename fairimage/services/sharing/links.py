"""Share links: whoever holds one reads one study, or one version of it (pages, viewer, zarr keys, tiles,
DRS, exports) as a grant would let them, read-only, until it expires or is revoked, through the one access
check. The link's secret travels as a bearer token, in the URL path (``/s/SECRET/zarr/...``, for clients
that cannot send headers) or, in a browser, as a cookie set when the link is opened. A revoked link stops
working at once in this process and within a second in the others, as a revoked token does.

A use is a client address's first request with the link (a reviewer's browser, a zarr client on their
machine): each is in the audit log, and a link made for N uses serves N addresses and refuses the next."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fairimage.catalog import queries
from fairimage.catalog.tables import ShareLinkRow, ShareLinkUseRow, StudyRow, StudyVersionRow, UserRow
from fairimage.model.errors import ForbiddenError, InvalidInputError, NotFoundError
from fairimage.model.governance.policy import Principal, Role, Scope, VersionScope
from fairimage.model.study import new_id
from fairimage.services.governance import access, audit
from fairimage.services.repository import Repository

SHARE_PREFIX = "fis_"
MAX_DAYS = 366  # a link is for a review or a collaboration, not for ever
MAX_USES = 10_000


@dataclass(frozen=True)
class ShareLink:
    id: str
    study_id: str
    study: str  # its name
    created_by: str
    note: str
    created_at: datetime
    expires_at: datetime | None
    revoked: bool
    blind: bool  # for double-blind review: the holder sees no author's or owner's name
    version: int | None  # the one version of the study it shows, or None: the study as it is
    max_uses: int | None  # how many client addresses it serves, or None: any number
    uses: int  # the client addresses it has served

    @classmethod
    def of(cls, row: ShareLinkRow, study: StudyRow, uses: int = 0) -> ShareLink:
        return cls(
            id=row.id,
            study_id=row.study_id,
            study=study.name,
            created_by=row.created_by,
            note=row.note,
            created_at=queries.aware(row.created_at) or row.created_at,
            expires_at=queries.aware(row.expires_at),
            revoked=row.revoked_at is not None,
            blind=row.blind,
            version=row.version,
            max_uses=row.max_uses,
            uses=uses,
        )


@dataclass(frozen=True)
class LinkOptions:
    """What a new link opens and for how long."""

    days: int = 30
    note: str = ""
    blind: bool = False  # for double-blind review: no one's name is shown
    version: int | None = None  # one version of the study (None: the study as it is, growing)
    uses: int | None = None  # how many client addresses it may serve (None: any number)


def create_link(
    repository: Repository,
    principal: Principal,
    study: str,
    options: LinkOptions = LinkOptions(),
) -> tuple[ShareLink, str]:
    """A new link to ``study`` (or one version of it) for ``options.days`` days, made by one who governs
    it; the link and its secret, which is shown once and never kept."""
    days, uses = options.days, options.uses
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInputError(f"days {days}: a share link lasts 1 to {MAX_DAYS} days; make a new one after")
    if uses is not None and not 1 <= uses <= MAX_USES:
        raise InvalidInputError(f"uses {uses}: give 1 to {MAX_USES} client addresses, or leave it out")
    secret = SHARE_PREFIX + secrets.token_urlsafe(32)
    with repository.transaction() as session:
        row = access.governed_study(session, principal, study)
        if options.version is not None:
            _check_version(session, row, options.version)
        link = ShareLinkRow(
            id=new_id("share"),
            study_id=row.id,
            secret_sha256=_digest(secret),
            created_by=principal.name,
            note=options.note[:255],
            expires_at=datetime.now(UTC) + timedelta(days=days),
            blind=options.blind,
            version=options.version,
            max_uses=uses,
        )
        session.add(link)
        session.flush()
        audit.record(
            session,
            principal.name,
            "share.create",
            f"study:{row.id}",
            origin=principal.origin,
            link=link.id,
            version=options.version,
            uses=uses,
        )
        return ShareLink.of(link, row), secret


def _check_version(session: Session, study: StudyRow, number: int) -> None:
    numbers = sorted(
        session.scalars(select(StudyVersionRow.number).where(StudyVersionRow.study_id == study.id))
    )
    if number not in numbers:
        which = f"its versions are 1 to {numbers[-1]}" if numbers else "it has no versions yet"
        raise InvalidInputError(
            f"version {number}: study {study.name!r} has no such version; {which} "
            f"('fairimage versions {study.name}' lists them)"
        )


def list_links(repository: Repository, principal: Principal, study: str) -> list[ShareLink]:
    """The links of a study, for those who govern it; newest first."""
    with repository.reading() as session:
        row = access.governed_study(session, principal, study)
        links = session.scalars(
            select(ShareLinkRow).where(ShareLinkRow.study_id == row.id).order_by(ShareLinkRow.id.desc())
        ).all()
        uses = _use_counts(session, [link.id for link in links])
        return [ShareLink.of(link, row, uses.get(link.id, 0)) for link in links]


def _use_counts(session: Session, link_ids: list[str]) -> dict[str, int]:
    if not link_ids:
        return {}
    counted = (
        select(ShareLinkUseRow.link_id, func.count())
        .where(ShareLinkUseRow.link_id.in_(link_ids))
        .group_by(ShareLinkUseRow.link_id)
    )
    return {link_id: int(count) for link_id, count in session.execute(counted).all()}


def revoke_link(repository: Repository, principal: Principal, link_id: str) -> ShareLink:
    """End a link at once (pages, zarr keys and tiles it opened are 404 from the next request on)."""
    with repository.transaction() as session:
        link = session.get(ShareLinkRow, link_id)
        if link is None:
            raise NotFoundError(f"share link {link_id!r} not found")
        study = access.governed_study(session, principal, link.study_id)
        if link.revoked_at is None:
            link.revoked_at = datetime.now(UTC)
            audit.record(
                session,
                principal.name,
                "share.revoke",
                f"study:{study.id}",
                origin=principal.origin,
                link=link.id,
            )
        return ShareLink.of(link, study, _use_counts(session, [link.id]).get(link.id, 0))


def is_share_secret(secret: str) -> bool:
    return secret.startswith(SHARE_PREFIX)


@dataclass(frozen=True)
class _Holder:
    principal: Principal
    expires: datetime | None
    max_uses: int | None


def principal_for_link(repository: Repository, secret: str, origin: str = "") -> Principal:
    """Whoever holds the link, asking from ``origin`` (a client address): a reader of its study (or of one
    version of it) and nothing else (read scope, no role, no other grants). ForbiddenError for an unknown,
    expired or revoked link, one whose maker no longer governs the study, or one that has served all the
    addresses it was made for. A recent lookup, as tokens are: every chunk a reviewer's viewer reads asks."""
    digest = _digest(secret)
    found = repository.recent.get(("share", digest), lambda: _holder(repository, digest))
    if isinstance(found, str):
        raise ForbiddenError(found)
    if found.expires is not None and found.expires <= datetime.now(UTC):
        raise ForbiddenError("this share link has expired; ask whoever shared it for a new one")
    link_id = found.principal.user_id or ""
    repository.recent.get(
        ("share use", link_id, origin), lambda: _use(repository, link_id, origin, found.max_uses)
    )
    return found.principal


def link_is_recent(repository: Repository, secret: str, origin: str = "") -> bool:
    """Whether ``principal_for_link`` answers from memory (so an event loop may call it inline)."""
    if not is_share_secret(secret):
        return False
    found = repository.recent.peek(("share", _digest(secret)))
    return isinstance(found, _Holder) and repository.recent.knows(
        ("share use", found.principal.user_id, origin)
    )


def link_expiry(repository: Repository, secret: str, origin: str = "") -> tuple[Principal, datetime | None]:
    """The holder of a working link and when the link ends."""
    principal = principal_for_link(repository, secret, origin)
    found = repository.recent.get(("share", _digest(secret)), lambda: _holder(repository, _digest(secret)))
    assert isinstance(found, _Holder)  # principal_for_link refused it otherwise
    return principal, found.expires


def _holder(repository: Repository, digest: str) -> _Holder | str:
    with repository.reading() as session:
        link = session.scalar(select(ShareLinkRow).where(ShareLinkRow.secret_sha256 == digest))
        if link is None or link.revoked_at is not None:
            return "this share link is unknown or was revoked"
        if not _maker_governs(session, link):
            return "whoever made this share link no longer governs the study; ask its owner for a new one"
        principal = Principal(
            name=f"share:{link.id}",
            user_id=link.id,
            scope=Scope.READ,
            granted_studies=frozenset({link.study_id}),
            blind=link.blind,
            version=None if link.version is None else _version_scope(session, link.study_id, link.version),
        )
        return _Holder(principal, queries.aware(link.expires_at), link.max_uses)


def _version_scope(session: Session, study_id: str, number: int) -> VersionScope:
    """What one version of a study holds: the images its manifest lists and the plates they are fields of."""
    version = session.scalar(
        select(StudyVersionRow).where(StudyVersionRow.study_id == study_id, StudyVersionRow.number == number)
    )
    listed = version.content.get("images", []) if version is not None else []
    images = frozenset(str(image["id"]) for image in listed)
    return VersionScope(study_id, number, images, frozenset(queries.plates_of_images(session, images)))


def _use(repository: Repository, link_id: str, origin: str, max_uses: int | None) -> None:
    """Count a client address's first request with a link as a use (audited); ForbiddenError for a new
    address once a link has served its ``max_uses``. The use is written before it is counted, in a
    transaction that holds the link's row (PostgreSQL) or the database (SQLite), so two new clients at
    once cannot both take a link's last use; a refused one leaves nothing."""
    with repository.reading() as session:
        if session.get(ShareLinkUseRow, (link_id, origin)) is not None:
            return  # a client seen before: no write, so nothing remembered elsewhere is forgotten
    with repository.transaction() as session:
        link = session.get(ShareLinkRow, link_id, with_for_update=True)
        if link is None:
            raise ForbiddenError("this share link is unknown or was revoked")
        if not queries.add_share_link_use(session, link_id, origin):
            return  # another request from the same client counted it a moment ago
        if max_uses is not None and _use_counts(session, [link_id]).get(link_id, 0) > max_uses:
            raise ForbiddenError(
                f"this share link was made for {max_uses} client(s) and all have used it; ask whoever "
                "shared it for a new one"
            )
        audit.record(session, f"share:{link_id}", "share.use", f"study:{link.study_id}", origin=origin)


def _maker_governs(session: Session, link: ShareLinkRow) -> bool:
    """Whether the link's maker still governs its study: the operator at the command line always does, a
    user while they own the study or are a steward or admin and are not disabled."""
    if link.created_by.startswith("operator:"):
        return True
    user = session.scalar(select(UserRow).where(UserRow.name == link.created_by))
    study = session.get(StudyRow, link.study_id)
    if user is None or user.disabled_at is not None or study is None:
        return False
    return user.role in (Role.ADMIN, Role.STEWARD) or study.owner_id == user.id


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()

"""Share links: whoever holds one reads one study (pages, viewer, zarr keys, tiles, DRS, exports) as a
grant would let them, read-only, until it expires or is revoked, through the one access check. The link's
secret travels as a bearer token, in the URL path (``/s/SECRET/zarr/...``, for clients that cannot send
headers) or, in a browser, as a cookie set when the link is opened. A revoked link stops working at once in
this process and within a second in the others, as a revoked token does."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from fairimage.catalog import queries
from fairimage.catalog.tables import ShareLinkRow, StudyRow, UserRow
from fairimage.model.errors import ForbiddenError, InvalidInputError, NotFoundError
from fairimage.model.governance.policy import Principal, Role, Scope
from fairimage.model.study import new_id
from fairimage.services.governance import access, audit
from fairimage.services.repository import Repository

SHARE_PREFIX = "fis_"
MAX_DAYS = 366  # a link is for a review or a collaboration, not for ever


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

    @classmethod
    def of(cls, row: ShareLinkRow, study: StudyRow) -> ShareLink:
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
        )


def create_link(
    repository: Repository,
    principal: Principal,
    study: str,
    days: int = 30,
    note: str = "",
    blind: bool = False,
) -> tuple[ShareLink, str]:
    """A new link to ``study`` for ``days`` days, made by one who governs it (``blind``: for double-blind
    review, hiding people's names on pages, metadata, versions and exports); the link and its secret,
    which is shown once and never kept."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInputError(f"days {days}: a share link lasts 1 to {MAX_DAYS} days; make a new one after")
    secret = SHARE_PREFIX + secrets.token_urlsafe(32)
    with repository.transaction() as session:
        row = access.governed_study(session, principal, study)
        link = ShareLinkRow(
            id=new_id("share"),
            study_id=row.id,
            secret_sha256=_digest(secret),
            created_by=principal.name,
            note=note[:255],
            expires_at=datetime.now(UTC) + timedelta(days=days),
            blind=blind,
        )
        session.add(link)
        session.flush()
        audit.record(
            session, principal.name, "share.create", f"study:{row.id}", origin=principal.origin, link=link.id
        )
        return ShareLink.of(link, row), secret


def list_links(repository: Repository, principal: Principal, study: str) -> list[ShareLink]:
    """The links of a study, for those who govern it; newest first."""
    with repository.reading() as session:
        row = access.governed_study(session, principal, study)
        links = session.scalars(
            select(ShareLinkRow).where(ShareLinkRow.study_id == row.id).order_by(ShareLinkRow.id.desc())
        )
        return [ShareLink.of(link, row) for link in links]


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
        return ShareLink.of(link, study)


def is_share_secret(secret: str) -> bool:
    return secret.startswith(SHARE_PREFIX)


def principal_for_link(repository: Repository, secret: str) -> Principal:
    """Whoever holds the link: a reader of its study and nothing else (read scope, no role, no other
    grants). ForbiddenError for an unknown, expired or revoked link, or one whose maker no longer governs
    the study. A recent lookup, as tokens are: every chunk a reviewer's viewer reads asks."""
    found = repository.recent.get(("share", _digest(secret)), lambda: _holder(repository, _digest(secret)))
    if isinstance(found, str):
        raise ForbiddenError(found)
    principal, expires = found
    if expires is not None and expires <= datetime.now(UTC):
        raise ForbiddenError("this share link has expired; ask whoever shared it for a new one")
    return principal


def link_is_recent(repository: Repository, secret: str) -> bool:
    """Whether ``principal_for_link`` answers from memory (so an event loop may call it inline)."""
    return is_share_secret(secret) and repository.recent.knows(("share", _digest(secret)))


def link_expiry(repository: Repository, secret: str) -> tuple[Principal, datetime | None]:
    """The holder of a working link and when the link ends."""
    principal = principal_for_link(repository, secret)
    found = repository.recent.get(("share", _digest(secret)), lambda: _holder(repository, _digest(secret)))
    assert not isinstance(found, str)  # principal_for_link refused it otherwise
    return principal, found[1]


def _holder(repository: Repository, digest: str) -> tuple[Principal, datetime | None] | str:
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
        )
        return principal, queries.aware(link.expires_at)


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

"""Study owners, policies and grants: who decides, and who else may read. Every change is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fairimage import ontology
from fairimage.catalog import queries
from fairimage.catalog.tables import GrantRow, StudyRow, UserRow
from fairimage.model.duo import DataUse, parse_data_use
from fairimage.model.errors import ForbiddenError, InvalidInputError, NotFoundError
from fairimage.model.policy import PolicyKind, Principal, Role, Scope, parse_policy
from fairimage.model.study import new_id
from fairimage.services import access, audit
from fairimage.services.repository import Repository


@dataclass(frozen=True)
class Grant:
    id: str
    study: str
    user: str
    granted_by: str
    reason: str
    created_at: datetime
    expires_at: datetime | None
    revoked: bool


def set_policy(
    repository: Repository,
    principal: Principal,
    study: str,
    kind: str,
    until: datetime | None = None,
) -> PolicyKind:
    """Change a study's policy; its owner, a data steward or an admin may."""
    policy = parse_policy(kind, until)
    with repository.transaction() as session:
        row = governed_study(session, principal, study)
        row.policy = policy.value
        row.embargo_until = until
        audit.record(
            session,
            principal.name,
            "study.policy",
            f"study:{row.id}",
            origin=principal.origin,
            policy=policy.value,
            until=until.isoformat() if until else None,
        )
    return policy


def set_owner(repository: Repository, principal: Principal, study: str, user: str) -> None:
    access.require(principal, Scope.ADMIN, (Role.ADMIN, Role.STEWARD))
    with repository.transaction() as session:
        row = governed_study(session, principal, study)
        owner = user_row(session, user)
        row.owner_id = owner.id
        audit.record(
            session, principal.name, "study.owner", f"study:{row.id}", origin=principal.origin, owner=user
        )


def add_grant(
    repository: Repository,
    principal: Principal,
    study: str,
    user: str,
    until: datetime | None = None,
    reason: str = "",
) -> Grant:
    """Let ``user`` read ``study`` (until ``until``); the owner, a data steward or an admin may."""
    if until is not None and until <= datetime.now(UTC):
        raise InvalidInputError(f"--until {until.date()}: the date has passed; give a future one")
    with repository.transaction() as session:
        row = governed_study(session, principal, study)
        grant = insert_grant(session, principal, row, user_row(session, user), until, reason)
        return _grant(grant, row.name, user)


def insert_grant(
    session: Session,
    principal: Principal,
    study: StudyRow,
    grantee: UserRow,
    until: datetime | None,
    reason: str,
) -> GrantRow:
    """A grant row and its audit entry, in the caller's transaction (direct grants and approved access
    requests both make them)."""
    grant = GrantRow(
        id=new_id("grant"),
        study_id=study.id,
        user_id=grantee.id,
        granted_by=principal.name,
        reason=reason,
        created_at=datetime.now(UTC),
        expires_at=until,
    )
    session.add(grant)
    session.flush()
    audit.record(
        session,
        principal.name,
        "grant.add",
        f"study:{study.id}",
        origin=principal.origin,
        grant=grant.id,
        user=grantee.name,
        until=until.isoformat() if until else None,
        reason=reason,
    )
    return grant


def revoke_grant(repository: Repository, principal: Principal, grant_id: str) -> None:
    """Revoke a grant; it stops working at the user's next request (nothing caches a decision)."""
    with repository.transaction() as session:
        grant = session.get(GrantRow, grant_id)
        if grant is None:
            raise NotFoundError(f"grant {grant_id!r} not found; 'fairimage grant list' shows them")
        governed_study(session, principal, grant.study_id)
        if grant.revoked_at is None:
            grant.revoked_at = datetime.now(UTC)
            audit.record(
                session,
                principal.name,
                "grant.revoke",
                f"study:{grant.study_id}",
                origin=principal.origin,
                grant=grant_id,
            )


def set_data_use(
    repository: Repository, principal: Principal, study: str, data_use: DataUse | None
) -> DataUse | None:
    """Set (or clear, with None) a study's consent terms in DUO; they are checked against the bundled
    DUO release first, and access requests are assessed against them."""
    parsed = parse_data_use(ontology.duo(), data_use) if data_use is not None else None
    with repository.transaction() as session:
        row = governed_study(session, principal, study)
        row.data_use = parsed.model_dump(mode="json") if parsed is not None else None
        audit.record(
            session,
            principal.name,
            "study.data_use",
            f"study:{row.id}",
            origin=principal.origin,
            data_use=row.data_use,
            duo=ontology.duo().version_iri,
        )
    return parsed


def list_grants(repository: Repository, study: str | None = None) -> list[Grant]:
    with repository.reading() as session:
        query = (
            select(GrantRow, StudyRow.name, UserRow.name)
            .join(StudyRow, StudyRow.id == GrantRow.study_id)
            .join(UserRow, UserRow.id == GrantRow.user_id)
            .order_by(GrantRow.created_at)
        )
        if study is not None:
            query = query.where((StudyRow.id == study) | (StudyRow.name == study))
        return [_grant(row, study_name, user) for row, study_name, user in session.execute(query)]


def governed_study(session: Session, principal: Principal, key: str) -> StudyRow:
    """The study if ``principal`` governs it (owner, steward, admin) with a write token; a study they may
    not even see is NotFoundError, one they may see but not govern ForbiddenError."""
    access.require(principal, Scope.WRITE)
    row = queries.study_by_id_or_name(session, key)
    if row is None or not access.may_discover_study(principal, row):
        raise NotFoundError(f"study {key!r} not found")
    if not (principal.sees_everything or (row.owner_id is not None and row.owner_id == principal.user_id)):
        raise ForbiddenError(f"study {row.name!r}: only its owner, a data steward or an admin may change it")
    return row


def user_row(session: Session, name: str) -> UserRow:
    row = session.scalar(select(UserRow).where(UserRow.name == name))
    if row is None:
        raise NotFoundError(f"user {name!r} not found; 'fairimage user list' shows them")
    return row


def _grant(row: GrantRow, study: str, user: str) -> Grant:
    return Grant(
        id=row.id,
        study=study,
        user=user,
        granted_by=row.granted_by,
        reason=row.reason,
        created_at=queries.aware(row.created_at) or row.created_at,
        expires_at=row.expires_at,
        revoked=row.revoked_at is not None,
    )

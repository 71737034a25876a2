"""Study owners, policies and grants: who decides, and who else may read. Every change is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fairimage import ontology
from fairimage.catalog import queries
from fairimage.catalog.tables import GrantRow, GroupRow, StudyRow, UserRow
from fairimage.model.errors import InvalidInputError, NotFoundError
from fairimage.model.governance.duo import DataUse, parse_data_use
from fairimage.model.governance.policy import PolicyKind, Principal, Role, Scope, parse_policy
from fairimage.model.study import new_id
from fairimage.services.governance import access, accounts, audit, versions
from fairimage.services.repository import Repository


@dataclass(frozen=True)
class Grant:
    id: str
    study: str
    user: str | None  # the user granted, or
    group: str | None  # the group whose members are granted
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
        row = access.governed_study(session, principal, study)
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
        row = access.governed_study(session, principal, study)
        owner = accounts.user_row(session, user)
        row.owner_id = owner.id
        audit.record(
            session, principal.name, "study.owner", f"study:{row.id}", origin=principal.origin, owner=user
        )


def add_grant(
    repository: Repository,
    principal: Principal,
    study: str,
    user: str | None,
    until: datetime | None = None,
    reason: str = "",
    group: str | None = None,
) -> Grant:
    """Let ``user``, or every member of ``group``, read ``study`` (until ``until``); the owner, a data
    steward or an admin may."""
    if (user is None) == (group is None):
        raise InvalidInputError("grant: name either a user or a group (--group NAME), not both")
    if until is not None and until <= datetime.now(UTC):
        raise InvalidInputError(f"--until {until.date()}: the date has passed; give a future one")
    with repository.transaction() as session:
        row = access.governed_study(session, principal, study)
        grantee: UserRow | GroupRow = (
            accounts.user_row(session, user)
            if user is not None
            else accounts.group_by_name(session, group or "")
        )
        grant = insert_grant(session, principal, row, grantee, until, reason)
        return _grant(grant, row.name, user, group)


def insert_grant(
    session: Session,
    principal: Principal,
    study: StudyRow,
    grantee: UserRow | GroupRow,
    until: datetime | None,
    reason: str,
) -> GrantRow:
    """A grant row and its audit entry, in the caller's transaction (direct grants and approved access
    requests both make them)."""
    is_group = isinstance(grantee, GroupRow)
    grant = GrantRow(
        id=new_id("grant"),
        study_id=study.id,
        user_id=None if is_group else grantee.id,
        group_id=grantee.id if is_group else None,
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
        **{"group" if is_group else "user": grantee.name},
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
        access.governed_study(session, principal, grant.study_id)
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
        row = access.governed_study(session, principal, study)
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
        versions.record_version(session, principal.name, row, "consent terms changed", principal.origin)
    return parsed


def describe_study(repository: Repository, principal: Principal, study: str, description: str) -> None:
    """Change a study's description (a new version of the study); its owner, a steward or an admin may."""
    if len(description) > 20_000:
        raise InvalidInputError("description: keep it under 20,000 characters")
    with repository.transaction() as session:
        row = access.governed_study(session, principal, study)
        row.description = description
        audit.record(session, principal.name, "study.describe", f"study:{row.id}", origin=principal.origin)
        versions.record_version(session, principal.name, row, "description changed", principal.origin)


def list_grants(repository: Repository, principal: Principal, study: str | None = None) -> list[Grant]:
    """Grants: admins and data stewards see every one, owners those of their studies."""
    access.require(principal, Scope.READ)
    with repository.reading() as session:
        query = (
            select(GrantRow, StudyRow.name, UserRow.name, GroupRow.name)
            .join(StudyRow, StudyRow.id == GrantRow.study_id)
            .outerjoin(UserRow, UserRow.id == GrantRow.user_id)
            .outerjoin(GroupRow, GroupRow.id == GrantRow.group_id)
            .order_by(GrantRow.created_at)
        )
        if study is not None:
            query = query.where((StudyRow.id == study) | (StudyRow.name == study))
        if not principal.sees_everything:
            query = query.where(StudyRow.owner_id == principal.user_id)
        return [_grant(*found) for found in session.execute(query)]


def _grant(row: GrantRow, study: str, user: str | None, group: str | None) -> Grant:
    return Grant(
        id=row.id,
        study=study,
        user=user,
        group=group,
        granted_by=row.granted_by,
        reason=row.reason,
        created_at=queries.aware(row.created_at) or row.created_at,
        expires_at=row.expires_at,
        revoked=row.revoked_at is not None,
    )

"""People and permissions over HTTP: users and tokens (admins; anyone for their own tokens), groups and
grants (admins and data stewards), study policies and owners (owners, stewards, admins). The same services
as the command line, so the same rules and the same audit entries."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from fairimage.api.deps import NoBody, PrincipalDep, RepositoryDep
from fairimage.api.schemas import RequestBody
from fairimage.model.errors import InvalidInputError
from fairimage.model.governance.policy import PolicyKind, Role, Scope
from fairimage.services.governance import accounts, policies
from fairimage.services.governance.accounts import Group, Token, User
from fairimage.services.governance.policies import Grant

router = APIRouter(tags=["administration"])
NAME = Field(min_length=1, max_length=255)


class UserIn(RequestBody):
    name: str = NAME
    role: Role = Role.VIEWER
    email: str = Field(default="", max_length=255)
    password: str | None = Field(default=None, min_length=12, max_length=1024, description="never stored")


class UserChange(RequestBody):
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=12, max_length=1024)


class NewTokenOut(BaseModel):
    """A token just made: its record and, this once, its secret (only its sha256 is kept)."""

    id: str
    user: str
    scope: Scope
    note: str
    created_at: datetime
    expires_at: datetime | None
    revoked: bool
    secret: str = Field(description="shown once: only its sha256 is kept")


class TokenIn(RequestBody):
    user: str = NAME
    scope: Scope = Scope.READ
    expires_days: int | None = Field(default=90, ge=1, le=3650, description="null: never expires")
    note: str = Field(default="", max_length=255)


class GroupIn(RequestBody):
    name: str = NAME
    description: str = Field(default="", max_length=2000)


class GrantIn(RequestBody):
    study: str = Field(min_length=1, max_length=255, description="study id or name")
    user: str | None = Field(default=None, max_length=255)
    group: str | None = Field(default=None, max_length=255)
    until: datetime | None = None
    reason: str = Field(default="", max_length=2000)


class PolicyIn(RequestBody):
    policy: PolicyKind
    until: datetime | None = Field(default=None, description="the end of an embargo")


class OwnerIn(RequestBody):
    owner: str = NAME


@router.get("/api/users", response_model=list[User], summary="Users (admins and data stewards)")
def list_users(repository: RepositoryDep, principal: PrincipalDep) -> list[User]:
    return [user for user in accounts.list_users(repository, principal)]


@router.post("/api/users", response_model=User, status_code=201, summary="Add a user (admins)")
def add_user(body: UserIn, repository: RepositoryDep, principal: PrincipalDep) -> User:
    user = accounts.add_user(repository, principal, body.name, body.role, body.email, body.password)
    return user


@router.patch(
    "/api/users/{user_name}",
    response_model=User,
    summary="Disable or enable a user (admins), or set a password (admins; anyone their own)",
)
def change_user(user_name: str, body: UserChange, repository: RepositoryDep, principal: PrincipalDep) -> User:
    if body.password is None and body.disabled is None:
        raise InvalidInputError("give 'disabled' or 'password' (or both)")
    if body.password is not None:
        user = accounts.set_password(repository, principal, user_name, body.password)
    if body.disabled is not None:
        user = accounts.set_disabled(repository, principal, user_name, body.disabled)
    return user


@router.get("/api/tokens", response_model=list[Token], summary="Tokens (an admin's: all; yours)")
def list_tokens(
    repository: RepositoryDep,
    principal: PrincipalDep,
    user: Annotated[str | None, Query(description="only this user's (admins)")] = None,
) -> list[Token]:
    return accounts.list_tokens(repository, principal, user)


@router.post("/api/tokens", response_model=NewTokenOut, status_code=201, summary="Create a token")
def create_token(body: TokenIn, repository: RepositoryDep, principal: PrincipalDep) -> NewTokenOut:
    expires = timedelta(days=body.expires_days) if body.expires_days else None
    made = accounts.create_token(repository, principal, body.user, body.scope, expires, body.note)
    return NewTokenOut(**made.token.__dict__, secret=made.secret)


@router.delete("/api/tokens/{token_id}", status_code=204, response_class=Response, summary="Revoke a token")
def revoke_token(token_id: str, repository: RepositoryDep, principal: PrincipalDep) -> Response:
    accounts.revoke_token(repository, principal, token_id)
    return Response(status_code=204)


@router.get("/api/groups", response_model=list[Group], summary="Groups and their members")
def list_groups(repository: RepositoryDep, principal: PrincipalDep) -> list[Group]:
    return accounts.list_groups(repository, principal)


@router.post("/api/groups", response_model=Group, status_code=201, summary="Add a group")
def add_group(body: GroupIn, repository: RepositoryDep, principal: PrincipalDep) -> Group:
    return accounts.add_group(repository, principal, body.name, body.description)


@router.put(
    "/api/groups/{group_name}/members/{user_name}",
    response_model=Group,
    summary="Add a member",
    dependencies=[NoBody],
)
def add_member(group_name: str, user_name: str, repository: RepositoryDep, principal: PrincipalDep) -> Group:
    found = accounts.set_membership(repository, principal, group_name, user_name, True)
    return found


@router.delete(
    "/api/groups/{group_name}/members/{user_name}", response_model=Group, summary="Remove a member"
)
def remove_member(
    group_name: str, user_name: str, repository: RepositoryDep, principal: PrincipalDep
) -> Group:
    found = accounts.set_membership(repository, principal, group_name, user_name, False)
    return found


@router.get("/api/grants", response_model=list[Grant], summary="Grants (admins and data stewards)")
def list_grants(
    repository: RepositoryDep,
    principal: PrincipalDep,
    study: Annotated[str | None, Query(description="only this study (id or name)")] = None,
) -> list[Grant]:
    return policies.list_grants(repository, principal, study)


@router.post("/api/grants", response_model=Grant, status_code=201, summary="Grant a user or a group")
def add_grant(body: GrantIn, repository: RepositoryDep, principal: PrincipalDep) -> Grant:
    grant = policies.add_grant(
        repository, principal, body.study, body.user, body.until, body.reason, group=body.group
    )
    return grant


@router.delete("/api/grants/{grant_id}", status_code=204, response_class=Response, summary="Revoke a grant")
def revoke_grant(grant_id: str, repository: RepositoryDep, principal: PrincipalDep) -> Response:
    policies.revoke_grant(repository, principal, grant_id)
    return Response(status_code=204)


@router.put(
    "/api/studies/{study_id}/policy",
    response_model=PolicyIn,
    summary="Set a study's policy",
    description=(
        "Sets who may read the study: `public`, `embargoed` (until a date, then public) or `restricted` "
        "(its owner, stewards and grants only). It does **not** set the study's consent terms (DUO codes): "
        "those are set with `PUT /api/studies/{study_id}/data-use`, and a body that carries them here is "
        "refused with 422."
    ),
)
def set_policy(study_id: str, body: PolicyIn, repository: RepositoryDep, principal: PrincipalDep) -> PolicyIn:
    kind = policies.set_policy(repository, principal, study_id, body.policy.value, body.until)
    return PolicyIn(policy=kind, until=body.until)


@router.put("/api/studies/{study_id}/owner", response_model=OwnerIn, summary="Give a study an owner")
def set_owner(study_id: str, body: OwnerIn, repository: RepositoryDep, principal: PrincipalDep) -> OwnerIn:
    policies.set_owner(repository, principal, study_id, body.owner)
    return body

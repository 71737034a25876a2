"""People and permissions over HTTP: users and tokens (admins; anyone for their own tokens), groups and
grants (admins and data stewards), study policies and owners (owners, stewards, admins). The same services
as the command line, so the same rules and the same audit entries."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from fairimage.api.deps import PrincipalDep, RepositoryDep
from fairimage.model.errors import InvalidInputError
from fairimage.model.policy import PolicyKind, Role, Scope
from fairimage.services import accounts, governance

router = APIRouter(tags=["administration"])
NAME = Field(min_length=1, max_length=255)


class UserOut(BaseModel):
    id: str
    name: str
    email: str
    role: Role
    created_at: datetime
    has_password: bool
    disabled: bool


class UserIn(BaseModel):
    name: str = NAME
    role: Role = Role.VIEWER
    email: str = Field(default="", max_length=255)
    password: str | None = Field(default=None, min_length=12, max_length=1024, description="never stored")


class UserChange(BaseModel):
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=12, max_length=1024)


class TokenOut(BaseModel):
    id: str
    user: str
    scope: Scope
    note: str
    created_at: datetime
    expires_at: datetime | None
    revoked: bool


class NewTokenOut(TokenOut):
    secret: str = Field(description="shown once: only its sha256 is kept")


class TokenIn(BaseModel):
    user: str = NAME
    scope: Scope = Scope.READ
    expires_days: int | None = Field(default=90, ge=1, le=3650, description="null: never expires")
    note: str = Field(default="", max_length=255)


class GroupOut(BaseModel):
    id: str
    name: str
    description: str
    members: list[str]


class GroupIn(BaseModel):
    name: str = NAME
    description: str = Field(default="", max_length=2000)


class GrantOut(BaseModel):
    id: str
    study: str
    user: str | None
    group: str | None
    granted_by: str
    reason: str
    created_at: datetime
    expires_at: datetime | None
    revoked: bool


class GrantIn(BaseModel):
    study: str = Field(min_length=1, max_length=255, description="study id or name")
    user: str | None = Field(default=None, max_length=255)
    group: str | None = Field(default=None, max_length=255)
    until: datetime | None = None
    reason: str = Field(default="", max_length=2000)


class PolicyIn(BaseModel):
    policy: PolicyKind
    until: datetime | None = Field(default=None, description="the end of an embargo")


class OwnerIn(BaseModel):
    owner: str = NAME


@router.get("/api/users", response_model=list[UserOut], summary="Users (admins and data stewards)")
def list_users(repository: RepositoryDep, principal: PrincipalDep) -> list[UserOut]:
    return [UserOut(**user.__dict__) for user in accounts.list_users(repository, principal)]


@router.post("/api/users", response_model=UserOut, status_code=201, summary="Add a user (admins)")
def add_user(body: UserIn, repository: RepositoryDep, principal: PrincipalDep) -> UserOut:
    user = accounts.add_user(repository, principal, body.name, body.role, body.email, body.password)
    return UserOut(**user.__dict__)


@router.patch(
    "/api/users/{user_name}",
    response_model=UserOut,
    summary="Disable or enable a user (admins), or set a password (admins; anyone their own)",
)
def change_user(
    user_name: str, body: UserChange, repository: RepositoryDep, principal: PrincipalDep
) -> UserOut:
    if body.password is None and body.disabled is None:
        raise InvalidInputError("give 'disabled' or 'password' (or both)")
    if body.password is not None:
        user = accounts.set_password(repository, principal, user_name, body.password)
    if body.disabled is not None:
        user = accounts.set_disabled(repository, principal, user_name, body.disabled)
    return UserOut(**user.__dict__)


@router.get("/api/tokens", response_model=list[TokenOut], summary="Tokens (an admin's: all; yours)")
def list_tokens(
    repository: RepositoryDep,
    principal: PrincipalDep,
    user: Annotated[str | None, Query(description="only this user's (admins)")] = None,
) -> list[TokenOut]:
    return [TokenOut(**token.__dict__) for token in accounts.list_tokens(repository, principal, user)]


@router.post("/api/tokens", response_model=NewTokenOut, status_code=201, summary="Create a token")
def create_token(body: TokenIn, repository: RepositoryDep, principal: PrincipalDep) -> NewTokenOut:
    expires = timedelta(days=body.expires_days) if body.expires_days else None
    made = accounts.create_token(repository, principal, body.user, body.scope, expires, body.note)
    return NewTokenOut(**made.token.__dict__, secret=made.secret)


@router.delete("/api/tokens/{token_id}", status_code=204, response_class=Response, summary="Revoke a token")
def revoke_token(token_id: str, repository: RepositoryDep, principal: PrincipalDep) -> Response:
    accounts.revoke_token(repository, principal, token_id)
    return Response(status_code=204)


@router.get("/api/groups", response_model=list[GroupOut], summary="Groups and their members")
def list_groups(repository: RepositoryDep, principal: PrincipalDep) -> list[GroupOut]:
    return [GroupOut(**group.__dict__) for group in accounts.list_groups(repository, principal)]


@router.post("/api/groups", response_model=GroupOut, status_code=201, summary="Add a group")
def add_group(body: GroupIn, repository: RepositoryDep, principal: PrincipalDep) -> GroupOut:
    return GroupOut(**accounts.add_group(repository, principal, body.name, body.description).__dict__)


@router.put("/api/groups/{group_name}/members/{user_name}", response_model=GroupOut, summary="Add a member")
def add_member(
    group_name: str, user_name: str, repository: RepositoryDep, principal: PrincipalDep
) -> GroupOut:
    found = accounts.set_membership(repository, principal, group_name, user_name, True)
    return GroupOut(**found.__dict__)


@router.delete(
    "/api/groups/{group_name}/members/{user_name}", response_model=GroupOut, summary="Remove a member"
)
def remove_member(
    group_name: str, user_name: str, repository: RepositoryDep, principal: PrincipalDep
) -> GroupOut:
    found = accounts.set_membership(repository, principal, group_name, user_name, False)
    return GroupOut(**found.__dict__)


@router.get("/api/grants", response_model=list[GrantOut], summary="Grants (admins and data stewards)")
def list_grants(
    repository: RepositoryDep,
    principal: PrincipalDep,
    study: Annotated[str | None, Query(description="only this study (id or name)")] = None,
) -> list[GrantOut]:
    return [GrantOut(**grant.__dict__) for grant in governance.list_grants(repository, principal, study)]


@router.post("/api/grants", response_model=GrantOut, status_code=201, summary="Grant a user or a group")
def add_grant(body: GrantIn, repository: RepositoryDep, principal: PrincipalDep) -> GrantOut:
    grant = governance.add_grant(
        repository, principal, body.study, body.user, body.until, body.reason, group=body.group
    )
    return GrantOut(**grant.__dict__)


@router.delete("/api/grants/{grant_id}", status_code=204, response_class=Response, summary="Revoke a grant")
def revoke_grant(grant_id: str, repository: RepositoryDep, principal: PrincipalDep) -> Response:
    governance.revoke_grant(repository, principal, grant_id)
    return Response(status_code=204)


@router.put("/api/studies/{study_id}/policy", response_model=PolicyIn, summary="Set a study's policy")
def set_policy(study_id: str, body: PolicyIn, repository: RepositoryDep, principal: PrincipalDep) -> PolicyIn:
    kind = governance.set_policy(repository, principal, study_id, body.policy.value, body.until)
    return PolicyIn(policy=kind, until=body.until)


@router.put("/api/studies/{study_id}/owner", response_model=OwnerIn, summary="Give a study an owner")
def set_owner(study_id: str, body: OwnerIn, repository: RepositoryDep, principal: PrincipalDep) -> OwnerIn:
    governance.set_owner(repository, principal, study_id, body.owner)
    return body

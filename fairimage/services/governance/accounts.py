"""Users, groups, passwords and API tokens.

Passwords are hashed with Argon2id; a token's secret is shown once, when it is created, and only its sha256
is stored. Every change is recorded in the audit log, never with a secret in it. Admins manage users;
admins and data stewards manage groups; anyone signed in manages their own tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fairimage.catalog.queries import aware
from fairimage.catalog.tables import GrantRow, GroupMemberRow, GroupRow, TokenRow, UserRow
from fairimage.model.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from fairimage.model.governance.policy import Principal, Role, Scope
from fairimage.model.study import new_id
from fairimage.services.governance import access, audit
from fairimage.services.repository import Repository

TOKEN_PREFIX = "fi_"
_hasher = PasswordHasher()


@dataclass(frozen=True)
class User:
    id: str
    name: str
    email: str
    role: Role
    created_at: datetime
    has_password: bool
    disabled: bool
    orcid: str | None = None  # from their identity provider (OpenID Connect sign-in)


@dataclass(frozen=True)
class Token:
    id: str
    user: str
    scope: Scope
    note: str
    created_at: datetime
    expires_at: datetime | None
    revoked: bool


@dataclass(frozen=True)
class NewToken:
    """A token just created: ``secret`` exists only here and is never stored or logged."""

    token: Token
    secret: str


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    description: str
    members: tuple[str, ...]


ADMINS = (Role.ADMIN,)
GOVERNORS = (Role.ADMIN, Role.STEWARD)


def add_user(
    repository: Repository,
    principal: Principal,
    name: str,
    role: Role,
    email: str = "",
    password: str | None = None,
) -> User:
    access.require(principal, Scope.ADMIN, ADMINS)
    _check_name("user", name)
    if password is not None:
        check_password(password)
    with repository.transaction() as session:
        if session.scalar(select(UserRow).where(UserRow.name == name)) is not None:
            raise ConflictError(f"user {name!r} exists already")
        row = UserRow(
            id=new_id("user"),
            name=name,
            email=email,
            role=role.value,
            password_hash=_hasher.hash(password) if password is not None else None,
        )
        session.add(row)
        session.flush()
        _audit(session, principal, "user.add", f"user:{name}", role=role.value, email=email)
        return _user(row)


def list_users(repository: Repository, principal: Principal) -> list[User]:
    """Every user; admins and data stewards (who grant access to users) may list them."""
    access.require(principal, Scope.READ, GOVERNORS)
    with repository.reading() as session:
        return [_user(row) for row in session.scalars(select(UserRow).order_by(UserRow.name))]


def set_password(repository: Repository, principal: Principal, name: str, password: str) -> User:
    """An admin sets anyone's password; a signed-in user their own."""
    _require_self_or_admin(principal, name)
    check_password(password)
    with repository.transaction() as session:
        row = user_row(session, name)
        row.password_hash = _hasher.hash(password)
        _audit(session, principal, "user.password", f"user:{name}")
        return _user(row)


def set_disabled(repository: Repository, principal: Principal, name: str, disabled: bool) -> User:
    """Disable a user (their tokens and sessions stop working at the next request) or enable them again."""
    access.require(principal, Scope.ADMIN, ADMINS)
    with repository.transaction() as session:
        row = user_row(session, name)
        if (row.disabled_at is not None) != disabled:
            row.disabled_at = datetime.now(UTC) if disabled else None
            _audit(session, principal, "user.disable" if disabled else "user.enable", f"user:{name}")
        return _user(row)


def check_password(password: str) -> None:
    if len(password) < 12:
        raise InvalidInputError("password: use at least 12 characters (a passphrase is easiest to remember)")


def authenticate(repository: Repository, name: str, password: str) -> Principal:
    """The user if the password is right; the same ForbiddenError whether the user or the password is
    wrong, so the answer does not tell which names exist."""
    with repository.reading() as session:
        row = session.scalar(select(UserRow).where(UserRow.name == name))
        if row is None or row.password_hash is None or row.disabled_at is not None:
            _hasher.hash(password)  # the same work either way: timing does not reveal the name
            raise ForbiddenError("wrong user name or password")
        try:
            _hasher.verify(row.password_hash, password)
        except (VerificationError, InvalidHashError):
            raise ForbiddenError("wrong user name or password") from None
        return principal_of(session, row)


def create_token(
    repository: Repository,
    principal: Principal,
    user: str,
    scope: Scope,
    expires_in: timedelta | None = None,
    note: str = "",
) -> NewToken:
    """A token for ``user`` (an admin's for anyone, anyone's for themselves), printed once."""
    _require_self_or_admin(principal, user)
    if scope is Scope.ADMIN and principal.role is not Role.ADMIN:
        raise ForbiddenError("scope admin: only an admin may create admin tokens")
    if expires_in is not None and expires_in <= timedelta(0):
        raise InvalidInputError("token expiry: give a positive number of days")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with repository.transaction() as session:
        owner = user_row(session, user)
        if scope is Scope.ADMIN and owner.role != Role.ADMIN:
            raise InvalidInputError(f"scope admin: {user} is a {owner.role}; only admins hold admin tokens")
        row = TokenRow(
            id=new_id("tok"),
            user_id=owner.id,
            secret_sha256=_digest(secret),
            scope=scope.value,
            note=note,
            created_at=datetime.now(UTC),
            expires_at=datetime.now(UTC) + expires_in if expires_in else None,
        )
        session.add(row)
        session.flush()
        _audit(session, principal, "token.create", f"token:{row.id}", user=user, scope=scope.value, note=note)
        return NewToken(_token(row, user), secret)


def list_tokens(repository: Repository, principal: Principal, user: str | None = None) -> list[Token]:
    """Tokens (never their secrets): an admin sees everyone's, others their own."""
    access.require(principal, Scope.READ)
    if principal.role is not Role.ADMIN:
        user = principal.name
    with repository.reading() as session:
        query = select(TokenRow, UserRow.name).join(UserRow).order_by(TokenRow.created_at)
        if user is not None:
            query = query.where(UserRow.name == user)
        return [_token(row, name) for row, name in session.execute(query)]


def revoke_token(repository: Repository, principal: Principal, token_id: str) -> None:
    """Revoke a token (an admin any, a user their own); it stops working at its next request."""
    access.require(principal, Scope.WRITE)
    with repository.transaction() as session:
        row = session.get(TokenRow, token_id)
        if row is None or (principal.role is not Role.ADMIN and row.user_id != principal.user_id):
            raise NotFoundError(f"token {token_id!r} not found; 'fairimage token list' shows them")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
            _audit(session, principal, "token.revoke", f"token:{token_id}")


def add_group(repository: Repository, principal: Principal, name: str, description: str = "") -> Group:
    """A new, empty group; admins and data stewards manage groups."""
    access.require(principal, Scope.WRITE, GOVERNORS)
    _check_name("group", name)
    with repository.transaction() as session:
        if session.scalar(select(GroupRow).where(GroupRow.name == name)) is not None:
            raise ConflictError(f"group {name!r} exists already")
        row = GroupRow(id=new_id("group"), name=name, description=description)
        session.add(row)
        session.flush()
        _audit(session, principal, "group.add", f"group:{name}", description=description)
        return Group(row.id, name, description, ())


def list_groups(repository: Repository, principal: Principal) -> list[Group]:
    access.require(principal, Scope.READ, GOVERNORS)
    with repository.reading() as session:
        return [_group(session, row) for row in session.scalars(select(GroupRow).order_by(GroupRow.name))]


def set_membership(
    repository: Repository, principal: Principal, group: str, user: str, member: bool
) -> Group:
    """Add ``user`` to ``group`` (or remove them): they read what the group was granted at once."""
    access.require(principal, Scope.WRITE, GOVERNORS)
    with repository.transaction() as session:
        group_row = group_by_name(session, group)
        user_id = user_row(session, user).id
        present = session.get(GroupMemberRow, (group_row.id, user_id))
        if member and present is None:
            session.add(GroupMemberRow(group_id=group_row.id, user_id=user_id))
            _audit(session, principal, "group.member.add", f"group:{group}", user=user)
        elif not member and present is not None:
            session.delete(present)
            _audit(session, principal, "group.member.remove", f"group:{group}", user=user)
        session.flush()
        return _group(session, group_row)


def group_by_name(session: Session, name: str) -> GroupRow:
    row = session.scalar(select(GroupRow).where(GroupRow.name == name))
    if row is None:
        raise NotFoundError(f"group {name!r} not found; 'fairimage group list' shows them")
    return row


def principal_for_token(repository: Repository, secret: str) -> Principal:
    """The user and scope behind a bearer token; ForbiddenError for an unknown, expired or revoked one.
    Every chunk a client with a token reads asks, so the lookup is a recent one (``repository.recent``:
    a revocation or a disabled user counts at once in this process, within a second in the others)."""
    if not secret.startswith(TOKEN_PREFIX):
        raise ForbiddenError("the bearer token is not a fairimage token")
    digest = _digest(secret)
    found = repository.recent.get(("token", digest), lambda: _token_holder(repository, digest))
    if isinstance(found, str):
        raise ForbiddenError(found)
    principal, expires = found
    if expires is not None and expires <= datetime.now(UTC):
        raise ForbiddenError("the bearer token has expired; create a new one")
    return principal


def token_is_recent(repository: Repository, secret: str) -> bool:
    """Whether ``principal_for_token`` answers from memory (so an event loop may call it inline)."""
    return secret.startswith(TOKEN_PREFIX) and repository.recent.knows(("token", _digest(secret)))


def _token_holder(repository: Repository, digest: str) -> tuple[Principal, datetime | None] | str:
    """The principal behind a token and when the token expires, or why it does not work."""
    with repository.reading() as session:
        row = session.scalar(select(TokenRow).where(TokenRow.secret_sha256 == digest))
        if row is None or row.revoked_at is not None:
            return "the bearer token is unknown or revoked"
        if row.user.disabled_at is not None:
            return "the token's user is disabled"
        return _principal(session, row.user, Scope(row.scope)), aware(row.expires_at)


def principal_for_user(repository: Repository, name: str) -> Principal:
    """A user acting from the command line on this machine (as its operator), with their own role."""
    with repository.reading() as session:
        return principal_of(session, user_row(session, name), origin="cli")


def principal_of(session: Session, row: UserRow, origin: str = "") -> Principal:
    """A user acting with their role's full scope: a signed-in person, or someone at the command line."""
    return _principal(session, row, Scope.ADMIN if row.role == Role.ADMIN else Scope.WRITE, origin)


def _principal(session: Session, row: UserRow, scope: Scope, origin: str = "") -> Principal:
    """The user with the studies granted to them or to a group they belong to (one query)."""
    now = datetime.now(UTC)
    groups = select(GroupMemberRow.group_id).where(GroupMemberRow.user_id == row.id)
    granted = frozenset(
        study_id
        for study_id, expires in session.execute(
            select(GrantRow.study_id, GrantRow.expires_at).where(
                or_(GrantRow.user_id == row.id, GrantRow.group_id.in_(groups)),
                GrantRow.revoked_at.is_(None),
            )
        )
        if (moment := aware(expires)) is None or moment > now
    )
    return Principal(
        name=row.name,
        user_id=row.id,
        role=Role(row.role),
        scope=scope,
        granted_studies=granted,
        origin=origin,
    )


def _require_self_or_admin(principal: Principal, name: str) -> None:
    if principal.role is Role.ADMIN:
        access.require(principal, Scope.ADMIN, ADMINS)
    elif principal.name == name and not principal.is_anonymous:
        access.require(principal, Scope.WRITE)
    else:
        access.require(principal, Scope.ADMIN, ADMINS)


def _check_name(what: str, name: str) -> None:
    if not name.strip() or len(name) > 255 or name != name.strip():
        raise InvalidInputError(f"{what} name {name!r}: give 1 to 255 characters, without spaces at the ends")


def _audit(session: Session, principal: Principal, action: str, target: str, **details: Any) -> None:
    audit.record(session, principal.name, action, target, origin=principal.origin, **details)


def _group(session: Session, row: GroupRow) -> Group:
    members = session.scalars(
        select(UserRow.name)
        .join(GroupMemberRow)
        .where(GroupMemberRow.group_id == row.id)
        .order_by(UserRow.name)
    )
    return Group(row.id, row.name, row.description, tuple(members))


def user_row(session: Session, name: str) -> UserRow:
    row = session.scalar(select(UserRow).where(UserRow.name == name))
    if row is None:
        raise NotFoundError(f"user {name!r} not found; 'fairimage user list' shows them")
    return row


def _user(row: UserRow) -> User:
    return User(
        id=row.id,
        name=row.name,
        email=row.email,
        role=Role(row.role),
        created_at=aware(row.created_at) or row.created_at,
        has_password=row.password_hash is not None,
        disabled=row.disabled_at is not None,
        orcid=row.orcid,
    )


def _token(row: TokenRow, user: str) -> Token:
    return Token(
        id=row.id,
        user=user,
        scope=Scope(row.scope),
        note=row.note,
        created_at=aware(row.created_at) or row.created_at,
        expires_at=row.expires_at,
        revoked=row.revoked_at is not None,
    )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()

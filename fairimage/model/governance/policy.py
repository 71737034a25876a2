"""Who may see what: roles, token scopes, study policies and the one rule that decides reads.

Pure rules on plain data; ``services/governance/access.py`` loads the facts (the caller, the study's policy,
the caller's grants) and asks here.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from fairimage.model.errors import InvalidInputError


class Role(StrEnum):
    """What a user is trusted with: admins manage users and everything else; data stewards see and govern
    all studies; submitters ingest into studies they own; viewers read what policies allow."""

    ADMIN = "admin"
    STEWARD = "steward"
    SUBMITTER = "submitter"
    VIEWER = "viewer"


class Scope(StrEnum):
    """What an API token may do; each scope includes the ones below it (admin > write > read)."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    def includes(self, other: Scope) -> bool:
        order = [Scope.READ, Scope.WRITE, Scope.ADMIN]
        return order.index(self) >= order.index(other)


class PolicyKind(StrEnum):
    PUBLIC = "public"  # anyone, signed in or not
    EMBARGOED = "embargoed"  # like private until the embargo date, then public by itself
    RESTRICTED = "restricted"  # controlled access: users granted access after a request
    PRIVATE = "private"  # the owner and users the owner granted


@dataclass(frozen=True)
class StudyPolicy:
    kind: PolicyKind
    owner_id: str | None = None
    embargo_until: datetime | None = None
    # The study holds images that may show identifying text burned into their pixels (DICOM), not yet
    # cleared by a steward: until then only its owner and stewards read it, whatever its policy says.
    quarantined: bool = False

    def is_public(self, now: datetime) -> bool:
        if self.quarantined:
            return False
        if self.kind is PolicyKind.PUBLIC:
            return True
        return (
            self.kind is PolicyKind.EMBARGOED and self.embargo_until is not None and now >= self.embargo_until
        )


@dataclass(frozen=True)
class VersionScope:
    """What a share link for one version of a study opens: that version's images and plates (none the study
    gained later), and the study as the version recorded it."""

    study_id: str
    number: int
    images: frozenset[str]
    plates: frozenset[str]


@dataclass(frozen=True)
class Principal:
    """Who is asking: anonymous, or a user with a role, acting with a token's scope (or a full session)."""

    name: str = "anonymous"
    user_id: str | None = None
    role: Role | None = None
    scope: Scope = Scope.READ
    granted_studies: frozenset[str] = field(default_factory=frozenset)
    origin: str = ""  # where the request came from (a client address, "cli"), for the audit log
    blind: bool = False  # a double-blind reviewer (a share link made for one): people's names are hidden
    version: VersionScope | None = None  # a share link for one version of a study: only what it holds

    def shown_version(self, study_id: str) -> int | None:
        """The one version of ``study_id`` this caller sees (a share link for it), or None: all of them."""
        return self.version.number if self.version and self.version.study_id == study_id else None

    def may_see_image(self, study_id: str, image_id: str) -> bool:
        """Whether an image of a study the caller may read is theirs to see: all are, except the images a
        study gained after the version a share link opens."""
        return self.version is None or study_id != self.version.study_id or image_id in self.version.images

    def may_see_plate(self, study_id: str, plate_id: str) -> bool:
        return self.version is None or study_id != self.version.study_id or plate_id in self.version.plates

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None and self.role is None

    @property
    def sees_everything(self) -> bool:
        """Admins and data stewards govern every study, so they read every study."""
        return self.role in (Role.ADMIN, Role.STEWARD)


ANONYMOUS = Principal()


def operator(name: str) -> Principal:
    """Whoever runs the command line on the repository's machine: they hold its files and its catalog
    already, so they act as an admin (and are recorded in the audit log by their login name)."""
    return Principal(name=f"operator:{name}", role=Role.ADMIN, scope=Scope.ADMIN, origin="cli")


def operator_here() -> Principal:
    """The operator at this machine, named by their login."""
    try:
        name = getpass.getuser()
    except Exception:  # no login name (some containers): still an operator
        name = "unknown"
    return operator(name)


def may_read(principal: Principal, study_id: str, policy: StudyPolicy, now: datetime) -> bool:
    """The rule behind every byte that leaves the server."""
    if policy.is_public(now) or principal.sees_everything:
        return True
    if principal.user_id is None:
        return False
    if policy.quarantined:
        return policy.owner_id == principal.user_id
    return policy.owner_id == principal.user_id or study_id in principal.granted_studies


def may_discover(principal: Principal, study_id: str, policy: StudyPolicy, now: datetime) -> bool:
    """Whether a study's record (name, description, consent terms) may be shown. Controlled access means
    restricted studies can be found and requested by anyone; their images stay behind ``may_read``."""
    return policy.kind is PolicyKind.RESTRICTED or may_read(principal, study_id, policy, now)


class RequestState(StrEnum):
    """Where an access request stands (as in REMS: submitted, then approved or rejected; an approval can
    be revoked later, and the applicant can withdraw while it waits)."""

    SUBMITTED = "submitted"
    APPROVED = "approved"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"
    REVOKED = "revoked"


def parse_policy(kind: str, embargo_until: datetime | None = None) -> PolicyKind:
    """A policy named by a user; an embargo needs its date, and only an embargo has one."""
    parsed = _parse(PolicyKind, kind, "policy")
    if parsed is PolicyKind.EMBARGOED and embargo_until is None:
        raise InvalidInputError("policy embargoed: give the date it ends, e.g. --until 2027-06-30")
    if parsed is not PolicyKind.EMBARGOED and embargo_until is not None:
        raise InvalidInputError(f"policy {kind}: only an embargo has an end date; leave out --until")
    return parsed


def parse_role(text: str) -> Role:
    return _parse(Role, text, "role")


def parse_scope(text: str) -> Scope:
    return _parse(Scope, text, "scope")


def parse_request_state(text: str) -> RequestState:
    return _parse(RequestState, text, "state")


_Choice = TypeVar("_Choice", bound=StrEnum)


def _parse(kind: type[_Choice], text: str, what: str) -> _Choice:
    try:
        return kind(text)
    except ValueError:
        names = ", ".join(member.value for member in kind)
        raise InvalidInputError(f"{what} {text!r}: use one of {names}") from None
